"""The stack as a whole on its GPUs: whether every replica has a place (SC405), and small
models packed onto shared GPUs with memory shares that add up.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

from ..diagnostics import Diagnostic
from ..engines.base import GIB
from ..placement import demands_of, place_plan
from ..plan import ModelPlan, Plan
from .settings import evaluate

def check_packing(p: Plan) -> list[Diagnostic]:
    stack = p.stack
    where = stack.where
    capacity = stack.gpus_per_node * stack.nodes
    if place_plan(p) is not None:
        return []
    need_nodes = next((n for n in range(stack.nodes + 1, stack.nodes + 65) if place_plan(p, n) is not None), None)
    per_model = ", ".join(f"`{n}` {g} x {r}" for n, g, r in demands_of(p))
    return [Diagnostic.error(
        "SC405", f"the models need {p.gpus_needed} GPUs ({per_model}); the hardware has {capacity}",
        where("hardware", key=True), label=f"{stack.nodes} x {stack.gpus_per_node} {stack.gpu.id}",
        help=f"set `hardware.nodes: {need_nodes}`" if need_nodes else "use fewer replicas or smaller models")]


# Small models share a GPU with split memory shares. Each engine process also holds a CUDA
# context (about 0.5 GiB) outside its share, so the shares of one GPU leave room for those.
SHARE_LIMIT = 0.45  # a model taking more than this share of a GPU gets GPUs of its own
SHARED_GPU_BUDGET = 0.90  # the shares on one GPU add up to at most this
CUDA_CONTEXT_BYTES = 0.5 * GIB


def share_gpus(p: Plan) -> list[Diagnostic]:
    """Put small single-GPU models (embedders, rerankers, small chat models) on shared GPUs,
    each with a memory share sized to what it needs, when that saves GPUs. vLLM and SGLang
    take a fixed share of a GPU, so two of them can split one; the shares are checked to add
    up with each process's CUDA context."""
    gpu = p.stack.gpu
    total = gpu.cuda_total_gib * GIB
    small: list[tuple[ModelPlan, float]] = []
    for mp in p.models:
        m, e = mp.model.spec, mp.evaluation
        if (m.gpus != "auto" or m.parallel is not None or m.gpu_memory_utilization is not None or mp.replicas_max != 1
                or mp.gpus_per_replica != 1 or not mp.model.engine.has_memory_share or e.budget.estimate_only
                or not mp.model.engine.shares_gpu):
            continue
        share = needed_share(mp, total)
        if share is not None and share <= SHARE_LIMIT:
            small.append((mp, share))
    if len(small) < 2:
        return []
    # first fit, largest share first; `shares[b]` is the sum of bin b's shares (added in order)
    ordered = sorted(small, key=lambda x: (-x[1], x[0].model.name))
    smallest = ordered[-1][1]
    bins: list[list[tuple[ModelPlan, float]]] = []
    shares: list[float] = []

    def fits(b: int, share: float) -> bool:
        return shares[b] + share + (len(bins[b]) + 1) * CUDA_CONTEXT_BYTES / total <= SHARED_GPU_BUDGET

    first_open = 0  # bins before this one cannot take even the smallest share (bins only fill up)
    for mp, share in ordered:
        for b in range(first_open, len(bins)):
            if fits(b, share):
                bins[b].append((mp, share))
                shares[b] += share
                break
        else:
            bins.append([(mp, share)])
            shares.append(share)
        while first_open < len(bins) and not fits(first_open, smallest):
            first_open += 1
    for group in bins:
        if len(group) < 2:
            continue
        names = tuple(sorted(mp.model.name for mp, _ in group))
        p.shared_groups.append(names)
        for mp, share in group:
            settings = replace(mp.settings, util=share)
            mp.settings = settings
            mp.evaluation = evaluate(mp.model, gpu, settings, 1, 1)
            mp.shares_gpu_with = tuple(n for n in names if n != mp.model.name)
    return []


def needed_share(mp: ModelPlan, total: float) -> Optional[float]:
    """The memory share a model needs on its own GPU: weights, activations, buffers and the KV
    cache for `concurrency` sequences at `max_context`, with 20% and 1 GiB of headroom (the
    profiling run of a small model varies more than its size), in hundredths."""
    e = mp.evaluation
    b = e.budget
    if not e.fits or b.kv <= 0:
        return None
    kv = 0.0
    if e.max_concurrency:  # the KV the asked sequences pin, from the KV cache / capacity ratio
        kv = b.kv * max(1, mp.settings.concurrency) / e.max_concurrency
    need = (b.weights + b.activation + b.non_torch + b.cudagraph + kv) * 1.2 + GIB
    return math.ceil(need / total * 100) / 100
