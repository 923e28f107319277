"""The engine settings of one model and what they hold on a layout: weights and KV cache per
GPU the way the engine budgets memory, sequences that fit, and the layouts `gpus: auto` tries.
"""

from __future__ import annotations

from dataclasses import replace

from .. import memory
from ..catalog import GpuInfo, ModelInfo
from ..engines.base import GIB, BudgetInputs
from ..plan import MARGIN, Evaluation, Settings
from ..resolve import ResolvedModel, ResolvedStack

def resolve_settings(rm: ResolvedModel, gpu: GpuInfo) -> Settings:
    m, e = rm.spec, rm.engine
    util = m.gpu_memory_utilization  # None: the engine's own share, resolved per layout in evaluate()
    max_context = m.max_context or rm.info.max_context
    max_num_seqs = m.max_num_seqs or e.default_max_num_seqs(rm.version, gpu, m.task)
    batched = m.max_batched_tokens or e.default_max_batched_tokens(rm.version, gpu, m.task)
    if m.task != "generate" and m.max_batched_tokens is None:
        batched = max(batched, max_context)  # pooling runs whole prompts: no chunked prefill
    return Settings(util, max_context, max_num_seqs, batched, m.kv_cache_dtype, m.dtype, bool(m.enforce_eager),
                    rm.quantization, m.concurrency)


def evaluate(rm: ResolvedModel, gpu: GpuInfo, s: Settings, tp: int, pp: int) -> Evaluation:
    info = rm.info
    weights = memory.weight_bytes_per_gpu(info, s.quantization, s.dtype, tp, pp)
    layer_split = rm.engine.splits_layers  # layers over GPUs, no head split
    shape = memory.kv_per_token(info, s.kv_cache_dtype, s.dtype, 1 if layer_split else tp,
                                tp * pp if layer_split else pp)
    if rm.draft is not None:
        weights += memory.weight_bytes_per_gpu(rm.draft, "none", s.dtype, tp, 1)
        shape = memory.with_draft(shape, memory.kv_per_token(rm.draft, s.kv_cache_dtype, s.dtype, tp, 1))
    weights += len(rm.spec.adapters) * lora_bytes(info, tp)
    inputs = BudgetInputs(info, gpu, tp, pp, rm.version, s.max_batched_tokens, s.max_num_seqs, s.max_context,
                          s.enforce_eager, rm.draft is not None, rm.spec.task)
    total = gpu.cuda_total_gib * GIB
    share = s.util if s.util is not None else rm.engine.default_memory_share(rm.version, gpu, inputs)
    budget = rm.engine.budget(total, share if share is not None else 1.0, weights, inputs)

    if budget.kv <= 0:
        return Evaluation(tp, pp, share, budget, weights, shape.per_token, 0, 0.0 if shape.per_token else None,
                          False, _near(budget.kv, budget.requested), "weights")
    capacity = rm.engine.capacity(budget.kv, shape, inputs)
    if capacity.concurrency is None:  # encoders keep no KV cache between requests
        return Evaluation(tp, pp, share, budget, weights, 0, 0, None, True, budget.kv < MARGIN * budget.requested, "")
    concurrency = capacity.concurrency
    fits = concurrency >= max(1, s.concurrency)
    marginal = abs(concurrency - max(1, s.concurrency)) <= MARGIN * max(1, s.concurrency)
    return Evaluation(tp, pp, share, budget, weights, shape.per_token, capacity.tokens, concurrency, fits, marginal,
                      "" if fits else "kv")


# llama.cpp keeps the layers it cannot place on the GPU in host memory and runs them on the CPU;
# decode reads every weight once per token, so it slows with the share of bytes read from DDR
HOST_MEMORY_BYTES_PER_S = 60e9  # dual-channel DDR5 on a workstation; servers have more


def partial_offload(rm: ResolvedModel, gpu: GpuInfo, s: Settings, ev: Evaluation) -> Evaluation:
    """For engines that split layers between GPU and CPU: how many layers (with their share of
    the KV cache) fit on the GPUs, and how much slower decoding gets."""
    if not rm.engine.offloads_layers or ev.fits or ev.kv_bytes_per_token == 0:
        return ev
    layers = rm.info.layers
    kv_needed = ev.kv_bytes_per_token * s.max_context * max(1, s.concurrency)
    per_layer = (ev.weights_per_gpu + kv_needed) / layers
    room = ev.budget.requested - ev.budget.activation
    on_gpu = int(room // per_layer)
    if on_gpu < 1:
        return ev
    gpu_share = on_gpu / layers
    bandwidth = (gpu.bandwidth_gbps or 500) * 1e9
    seconds_full = ev.weights_per_gpu / bandwidth
    seconds_split = ev.weights_per_gpu * gpu_share / bandwidth + ev.weights_per_gpu * (1 - gpu_share) / HOST_MEMORY_BYTES_PER_S
    return replace(ev, fits=True, reason="", gpu_layers=on_gpu, slowdown=seconds_split / seconds_full,
                   max_concurrency=max(1, s.concurrency), marginal=False)


def lora_bytes(info: ModelInfo, tp: int) -> float:
    """One LoRA slot of rank 16 (vLLM's default max_lora_rank) on every linear layer: A and B
    matrices for the attention and MLP projections, in 16-bit."""
    rank = 16
    per_layer = rank * (4 * info.hidden_size + 3 * (info.hidden_size + info.intermediate_size / tp))
    return info.layers * per_layer * 2 * 2


def _near(value: float, limit: float) -> bool:
    return abs(value) <= MARGIN * limit


def layouts(rm: ResolvedModel, stack: ResolvedStack) -> list[tuple[int, int]]:
    """Candidate (tp, pp) for `gpus: auto`, fewest GPUs first: tensor parallel within a node
    (powers of two, and the node size), then pipeline stages over nodes."""
    per_node = stack.gpus_per_node
    sizes = sorted({n for n in (1, 2, 4, 8, 16, 32, 64) if n <= per_node} | {per_node})
    if rm.engine.splits_layers:
        valid = sizes
    else:
        valid = [n for n in sizes if memory.tp_valid(rm.info, n)]
    out = [(tp, 1) for tp in valid]
    if valid and stack.nodes > 1 and rm.engine.pipeline_parallel:
        out += [(valid[-1], pp) for pp in range(2, stack.nodes + 1)]
    return out
