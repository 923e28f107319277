"""Which node and which GPU indices each engine replica gets: decided once, used everywhere.

First fit in spec order: a replica takes whole GPUs on one node; a replica with pipeline
stages over nodes takes whole nodes; small models the planner put in a shared group take one GPU
between them. Deterministic, so the same spec places the same way.
"""

from __future__ import annotations

from typing import Optional

Slot = tuple[int, tuple[int, ...]]  # (node, GPU indices on that node)
Demand = tuple[str, int, int]  # (model or shared group, GPUs per replica, replicas)


def demands_of(plan) -> list[Demand]:
    """The plan's placement demands: models with GPUs of their own, then one GPU per shared group."""
    shared = {name for group in plan.shared_groups for name in group}
    out: list[Demand] = [(mp.model.name, mp.gpus_per_replica, mp.replicas_max)
                         for mp in plan.models if mp.model.name not in shared]
    out += [(group_key(group), 1, 1) for group in plan.shared_groups]
    return out


def group_key(group: tuple[str, ...]) -> str:
    return "shared:" + "+".join(group)


def place_plan(plan, nodes: Optional[int] = None) -> Optional[dict[str, list[list[Slot]]]]:
    """Per model, per replica, the (node, indices) pieces it occupies; None if it does not fit."""
    stack = plan.stack
    placed = place(demands_of(plan), stack.gpus_per_node, nodes or stack.nodes)
    if placed is None:
        return None
    for group in plan.shared_groups:
        slot = placed.pop(group_key(group))
        for name in group:
            placed[name] = slot
    return placed


def place(demands: list[Demand], gpus_per_node: int, nodes: int) -> Optional[dict[str, list[list[Slot]]]]:
    free = [list(range(gpus_per_node)) for _ in range(nodes)]
    # first_fit[count]: no node before this index has `count` GPUs free. Nodes only lose GPUs, so a
    # search for `count` GPUs resumes there instead of at node 0 (linear in replicas, not quadratic).
    first_fit = [0] * (gpus_per_node + 1)
    result: dict[str, list[list[Slot]]] = {}
    for name, per_replica, replicas in demands:
        result[name] = []
        for _ in range(replicas):
            pieces = _take(free, per_replica, gpus_per_node, first_fit)
            if pieces is None:
                return None
            result[name].append(pieces)
    return result


def _take(free: list[list[int]], count: int, per_node: int, first_fit: list[int]) -> Optional[list[Slot]]:
    if count <= per_node:
        for node in range(first_fit[count], len(free)):
            gpus = free[node]
            if len(gpus) >= count:
                first_fit[count] = node
                taken = tuple(gpus[:count])
                del gpus[:count]
                return [(node, taken)]
        first_fit[count] = len(free)
        return None
    whole = -(-count // per_node)
    empty = [n for n, gpus in enumerate(free) if len(gpus) == per_node]
    if len(empty) < whole:
        return None
    pieces = []
    for node in empty[:whole]:
        pieces.append((node, tuple(free[node])))
        free[node].clear()
    return pieces
