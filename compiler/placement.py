"""Which node and which GPU indices each engine replica gets: decided once, used everywhere.

First fit in spec order: a replica takes whole GPUs on one node; a replica with pipeline
stages over nodes takes whole nodes. Deterministic, so the same spec places the same way.
"""

from __future__ import annotations

from typing import Optional

Slot = tuple[int, tuple[int, ...]]  # (first node, GPU indices on each node it spans)


def place(demands: list[tuple[str, int, int]], gpus_per_node: int, nodes: int) -> Optional[dict[str, list[list[Slot]]]]:
    """demands: (model, GPUs per replica, replicas). Returns, per model, per replica, the
    (node, indices) pieces it occupies; None if the hardware cannot hold them all."""
    free = [list(range(gpus_per_node)) for _ in range(nodes)]
    result: dict[str, list[list[Slot]]] = {}
    for model, per_replica, replicas in demands:
        result[model] = []
        for _ in range(replicas):
            pieces = _take(free, per_replica, gpus_per_node)
            if pieces is None:
                return None
            result[model].append(pieces)
    return result


def _take(free: list[list[int]], count: int, per_node: int) -> Optional[list[Slot]]:
    if count <= per_node:
        for node, gpus in enumerate(free):
            if len(gpus) >= count:
                taken = tuple(gpus[:count])
                del gpus[:count]
                return [(node, taken)]
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
