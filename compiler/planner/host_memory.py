"""SC412: a node without the host memory its replicas need (CPU KV tiers, offloaded layers,
engine processes), with the largest CPU tier that fits, re-planned.
"""

from __future__ import annotations

from typing import Optional

from .. import host
from ..diagnostics import Diagnostic
from ..engines.base import GIB
from ..plan import Plan

def check_host_memory(p: Plan, placement: dict, ram: Optional[int]) -> list[Diagnostic]:
    """SC412: a node without the RAM for its replicas' CPU tiers, offloaded layers and engine
    processes. The help offers the largest CPU tier that fits, re-planned."""

    def fits(size: int) -> bool:
        return all(n.memory_available is None or n.memory_bytes <= n.memory_available
                   for n in host.node_needs(p, placement, ram, cpu_size=size))

    stack, where = p.stack, p.stack.where
    tiering = stack.spec.tiering
    cpu_index = next((j for j, t in enumerate(tiering.kv_cache) if t.tier == "cpu"), None) if tiering else None
    out = []
    for n in p.nodes:
        if n.memory_available is None or n.memory_bytes <= n.memory_available:
            continue
        where_ram = (f"`{p.instance.name}` has {p.instance.ram_gib:.0f} GiB" if p.instance
                     else f"`memory_per_node` is {host.gib(stack.memory_per_node or 0)}")
        message = (f"node-{n.node} needs {host.gib(n.memory_bytes)} of host memory for its engines and KV-cache tiers; "
                   f"{where_ram}, {host.gib(n.memory_available)} after {host.SYSTEM_RESERVE:.0%} for the system")
        excess = n.memory_bytes - n.memory_available
        size = tiering.kv_cache[cpu_index].size if cpu_index is not None else 0  # type: ignore[union-attr]
        cpu_total = n.cpu_tiers * size  # the CPU tiers of the replicas on this node
        help_text = f"the engines alone need {host.gib(n.memory_bytes - cpu_total)}: run fewer replicas on this node"
        if cpu_index is not None and n.cpu_tiers:
            # the linear estimate, then down until the re-plan holds (engines round pinned memory)
            fit = int((size - excess / n.cpu_tiers) // GIB)
            while fit >= 1 and not fits(fit * GIB):
                fit -= 1
            if fit >= 1:
                help_text = f"`size: {fit}GiB` for the cpu tier fits"
            elif excess <= cpu_total:
                help_text = "remove the cpu tier"
        if p.instance:
            help_text += " (no instance type with these GPUs and more RAM is in the catalog)"
        if cpu_index is not None and n.cpu_tiers:
            span = where("tiering", "kv_cache", cpu_index, "size")
        elif stack.spec.hardware.memory_per_node is not None:
            span = where("hardware", "memory_per_node")
        else:
            span = where("hardware", "gpu")
        out.append(Diagnostic.error("SC412", message, span, label="more than the node's RAM", help=help_text))
    return out
