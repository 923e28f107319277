"""Host memory and disk: what each node needs beside its GPUs, and whether it has it (SC412).

A KV-cache CPU tier is host RAM the engine pins at start-up; a model that runs part of its
layers on the CPU keeps their weights there; every engine process keeps its own (torch, the
CUDA context's host side, the tokenizer). A disk tier is space under its path on the node.
Sizes in the spec are per replica, so a node's need is the sum over the replicas placed on it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Optional

from .ir_engine import KvOffload
from .plan import ModelPlan, NodeNeeds, Plan
from .units import GIB

if TYPE_CHECKING:
    from .resolve import ResolvedModel, ResolvedStack

# The share of a node's RAM left to the operating system, the page cache that weight loading
# streams through, and the services around the engines (gateway, router, Prometheus).
SYSTEM_RESERVE = 0.10


def kv_tiers(stack: "ResolvedStack", rm: "ResolvedModel") -> tuple[KvOffload, ...]:
    """The spec's KV-cache tiers as one replica of `rm` runs them: generative models only."""
    tiering = stack.spec.tiering
    if tiering is None or rm.spec.task != "generate":
        return ()
    out = []
    for t in tiering.kv_cache:
        url = getattr(t, "url", None)
        out.append(KvOffload(t.tier, getattr(t, "size", 0) or 0, getattr(t, "path", "") or "",
                        url.secret if url is not None else ""))
    return tuple(out)


def replica_memory(mp: "ModelPlan", tiers: tuple[KvOffload, ...]) -> int:
    """Host RAM one replica needs: the engine's processes, its CPU tier, and the weights of
    layers a partial offload keeps on the CPU."""
    rm, ev = mp.model, mp.evaluation
    gpus = ev.tp * ev.pp
    need = rm.engine.host_memory_bytes(gpus)
    need += rm.engine.tier_host_bytes(rm.version, rm.kv_mechanism, tiers, gpus)
    if ev.gpu_layers is not None and rm.info.layers:
        need += int(ev.weights_per_gpu * gpus * (1 - ev.gpu_layers / rm.info.layers))
    return need


def replica_disk(tiers: tuple[KvOffload, ...]) -> int:
    return sum(t.size_bytes for t in tiers if t.tier == "disk")


def usable(ram_bytes: int) -> int:
    return int(ram_bytes * (1 - SYSTEM_RESERVE))


def with_cpu_size(tiers: tuple[KvOffload, ...], size: int) -> tuple[KvOffload, ...]:
    return tuple(replace(t, size_bytes=size) if t.tier == "cpu" else t for t in tiers)


def node_needs(plan: "Plan", placement: dict, ram_bytes: Optional[int], cpu_size: Optional[int] = None) -> list[NodeNeeds]:
    """Per node, the RAM and disk the replicas placed there need; a replica spanning nodes
    (pipeline stages) counts on each node in proportion to the GPUs it has there. With
    `cpu_size`, as if every CPU tier had that size (to re-plan a fix)."""
    nodes = plan.stack.nodes
    memory = [0] * nodes
    disk = [0] * nodes
    cpu = [0.0] * nodes
    for mp in plan.models:
        per_replica_mem = (mp.host_memory_bytes if cpu_size is None
                           else replica_memory(mp, with_cpu_size(mp.kv_tiers, cpu_size)))
        per_replica_disk = replica_disk(mp.kv_tiers)
        has_cpu = any(t.tier == "cpu" for t in mp.kv_tiers)
        for pieces in placement.get(mp.model.name, []):
            gpus = sum(len(indices) for _, indices in pieces) or 1
            for node, indices in pieces:
                share = len(indices) / gpus
                memory[node] += int(per_replica_mem * share)
                disk[node] += int(per_replica_disk * share)
                cpu[node] += share if has_cpu else 0
    available = usable(ram_bytes) if ram_bytes else None
    return [NodeNeeds(n, memory[n], disk[n], available, cpu[n]) for n in range(nodes)]


def gib(n: float) -> str:
    return f"{n / GIB:.0f} GiB" if n >= 10 * GIB else f"{n / GIB:.1f} GiB"
