"""The instance type a cloud stack runs on: the cheapest with the node's GPUs and the RAM its
replicas need (SC313 when no shape has those GPUs).
"""

from __future__ import annotations

from typing import Optional

from .. import host
from ..catalog import Catalog, InstanceInfo
from ..diagnostics import Diagnostic
from ..engines.base import GIB
from ..resolve import ResolvedStack

def choose_instance(stack: ResolvedStack, catalog: Catalog, memory_needed: int = 0) -> tuple[Optional[InstanceInfo], list[Diagnostic]]:
    """The cheapest instance type with the node's GPUs and enough RAM for what runs on it
    (the largest when none has enough: SC412 then says so)."""
    if stack.provider == "on-prem":
        return None, []
    where = stack.where
    options = catalog.instances_for(stack.provider, stack.gpu.id)
    exact = [o for o in options if o.gpu_count == stack.gpus_per_node]
    if not exact:
        counts = sorted({o.gpu_count for o in options})
        return None, [Diagnostic.error(
            "SC313", f"no {stack.provider} instance type has {stack.gpus_per_node} x {stack.gpu.id}",
            where("hardware", "gpus_per_node") if stack.spec.hardware.gpus_per_node else where("hardware", key=True),
            label="no such instance shape",
            help=(f"{stack.provider} offers {stack.gpu.id} in sizes of {', '.join(map(str, counts))} GPUs: set "
                  f"`gpus_per_node` to one of them") if counts else
            f"the catalog has no {stack.gpu.id} on {stack.provider}; add your own with `STACKC_CATALOG`")]
    roomy = [o for o in exact if host.usable(int(o.ram_gib * GIB)) >= memory_needed]
    if not roomy:
        return max(exact, key=lambda o: (o.ram_gib, o.name)), []
    priced = [o for o in roomy if o.price_usd_per_hour is not None]
    chosen = min(priced, key=lambda o: (o.price_usd_per_hour, o.name)) if priced else sorted(roomy, key=lambda o: o.name)[0]
    return chosen, []
