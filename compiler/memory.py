"""Model memory arithmetic shared by every engine: weight bytes and KV bytes per token.

Engines differ in how they budget a GPU (vLLM's `gpu_memory_utilization`, SGLang's
`mem_fraction_static`, llama.cpp's full offload); they agree on how big a model's weights and
KV cache are. Those sizes live here. Sources: facts-catalog.md sections 1.3 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .catalog import ModelInfo

# Bytes per parameter of quantized linear weights, scales included.
#   fp8: 1 byte + block scales; int8: 1 byte + per-channel scales;
#   awq/gptq: 4 bits + one fp16 scale and a 4-bit zero per group of 128;
#   bnb-nf4: 4 bits + per-64 absmax (double-quantized); mxfp4: 4 bits + an 8-bit scale per 32;
#   nvfp4: 4 bits + an fp8 scale per 16; GGUF: the average bits per weight of llama.cpp's
#   files (Q4_K_M 4.89, Q5_K_M 5.70, Q8_0 8.5), embeddings and output included.
QUANT_BYTES = {
    "fp8": 1.0 + 4 / (128 * 128),
    "int8-w8a8": 1.0 + 4 / 4096,
    "awq": 0.5 + 2.5 / 128,
    "gptq": 0.5 + 2.5 / 128,
    "bnb-nf4": 0.5 + 1.25 / 64,
    "mxfp4": 4.25 / 8,
    "nvfp4": 4.5 / 8,
    "gguf-q4_k_m": 4.89 / 8,
    "gguf-q5_k_m": 5.70 / 8,
    "gguf-q8_0": 8.5 / 8,
}
GGUF = ("gguf-q4_k_m", "gguf-q5_k_m", "gguf-q8_0")
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "fp8": 1}


def compute_dtype_bytes(model: ModelInfo, dtype: str) -> int:
    """vLLM's `auto`: fp16 for fp32 checkpoints, the checkpoint dtype otherwise."""
    if dtype != "auto":
        return DTYPE_BYTES[dtype]
    return 2


@dataclass(frozen=True)
class ParamSplit:
    """A model's parameters by where they sit: embeddings, head, experts, vision, the rest."""

    embedding: float  # input embedding matrix
    head: float  # LM head (0 when tied)
    experts: float  # routed + shared MoE expert weights
    vision: float
    rest: float  # attention, dense MLPs, norms

    @property
    def total(self) -> float:
        return self.embedding + self.head + self.experts + self.vision + self.rest


def split_params(model: ModelInfo) -> ParamSplit:
    embedding = model.vocab_size * model.hidden_size
    head = 0 if model.tie_embeddings else embedding
    experts = 0.0
    if model.moe:
        m = model.moe
        experts = m.moe_layers * (m.experts + m.shared) * 3 * model.hidden_size * m.expert_intermediate_size
    total = model.params_b * 1e9
    rest = max(total - embedding - head - experts, 0.0)
    return ParamSplit(embedding, head, experts, model.vision_params_b * 1e9, rest)


def weight_bytes_total(model: ModelInfo, quantization: str, dtype: str) -> float:
    """The whole model as loaded (all ranks together)."""
    return weight_bytes_per_gpu(model, quantization, dtype, 1, 1)


def weight_bytes_per_gpu(model: ModelInfo, quantization: str, dtype: str, tp: int, pp: int) -> float:
    """Weights one GPU holds: linear layers split over TP x PP, embeddings and head over TP."""
    p = split_params(model)
    base = compute_dtype_bytes(model, dtype)
    if quantization in GGUF:
        return p.total * QUANT_BYTES[quantization] / (tp * pp)
    linear = QUANT_BYTES.get(quantization, base)
    if quantization == "mxfp4":
        # gpt-oss style: only the MoE experts are MXFP4; attention and the rest stay bf16. The
        # MXFP4 MoE kernels (Marlin, Triton) want the hidden dimension in multiples of 256 and
        # each rank's slice of the expert dimension in multiples of 128, so vLLM pads the expert
        # matrices (gpt-oss: 2880 -> 3072 and 2880 -> 2944; at TP 4, 720 -> 768)
        pad = _round_up(model.hidden_size, 256) / model.hidden_size
        if model.moe:
            inter = model.moe.expert_intermediate_size / tp
            pad *= _round_up(inter, 128) / inter
        layers = (p.experts * linear * pad + p.rest * base) / (tp * pp)
    else:
        layers = (p.experts + p.rest) * linear / (tp * pp)
    vocab = (p.embedding + p.head) * base / tp / (2 if pp > 1 and p.head else 1)
    vision = p.vision * base / tp
    return layers + vocab + vision


def _round_up(value: float, multiple: int) -> float:
    return -(-value // multiple) * multiple


def kv_dtype_bytes(model: ModelInfo, kv_cache_dtype: str, dtype: str) -> int:
    return 1 if kv_cache_dtype == "fp8" else compute_dtype_bytes(model, dtype)


@dataclass(frozen=True)
class KvShape:
    """KV bytes per token on one GPU, by kind of layer."""

    full: float
    sliding: float
    chunked: float
    window: int
    chunk: int
    per_layer: float = 0.0  # bytes per token of one layer on one GPU
    full_layers: int = 0  # layers on one GPU (one pipeline stage)
    sliding_layers: int = 0
    chunked_layers: int = 0

    @property
    def per_token(self) -> float:
        return self.full + self.sliding + self.chunked


def kv_layer_groups(shape: KvShape) -> list[tuple[str, int, int]]:
    """vLLM's KV-cache groups: (kind, layers per group, number of groups). Layers of one
    attention type are split into groups of equal size: the smallest type's layer count, or the
    largest when the types are within 1.5x of each other (kv_cache_planning.py)."""
    kinds = [(k, n) for k, n in (("full", shape.full_layers), ("sliding", shape.sliding_layers),
                                 ("chunked", shape.chunked_layers)) if n > 0]
    if not kinds:
        return []
    smallest, largest = min(n for _, n in kinds), max(n for _, n in kinds)
    size = largest if largest < smallest * 1.5 else smallest
    return [(kind, size, -(-n // size)) for kind, n in kinds]


def kv_per_token(model: ModelInfo, kv_cache_dtype: str, dtype: str, tp: int, pp: int,
                 replicate_kv_heads: bool = True) -> KvShape:
    """Per GPU. GQA heads are split over TP until TP exceeds them (then replicated: at least one
    head per rank); MLA keeps one latent per token per layer on every rank."""
    a = model.attention
    b = kv_dtype_bytes(model, kv_cache_dtype, dtype)
    if not model.has_kv_cache:
        return KvShape(0, 0, 0, 0, 0)

    def stage(layers: int) -> int:
        return -(-layers // pp)

    if a.is_mla:
        per_layer = (a.mla_kv_lora_rank + a.mla_rope_dim) * b
        return KvShape(stage(a.full_layers) * per_layer, 0, 0, 0, 0, per_layer, stage(a.full_layers))
    heads = max(1, model.kv_heads // tp) if replicate_kv_heads else model.kv_heads / tp
    per_layer = 2 * heads * model.head_dim * b
    return KvShape(
        full=stage(a.full_layers) * per_layer,
        sliding=stage(a.sliding_layers) * per_layer,
        chunked=stage(a.chunked_layers) * per_layer,
        window=a.window,
        chunk=a.chunk,
        per_layer=per_layer,
        full_layers=stage(a.full_layers),
        sliding_layers=stage(a.sliding_layers),
        chunked_layers=stage(a.chunked_layers),
    )


def with_draft(shape: KvShape, draft: KvShape) -> KvShape:
    """The draft model's KV cache pages from the same blocks: count it as full-attention layers
    of the target's page size (vLLM unifies page sizes across the layers it pages together)."""
    if draft.per_token == 0 or shape.per_layer <= 0:
        return shape
    extra = -(-int(draft.per_token) // int(shape.per_layer))
    return replace(shape, full=shape.full + extra * shape.per_layer, full_layers=shape.full_layers + extra)


def kv_bytes_for_request(shape: KvShape, context: int, batched_tokens: int, block: int = 16) -> float:
    """KV one sequence of `context` tokens pins, rounded up to whole blocks (vLLM's
    `max_memory_usage_bytes`: sliding layers hold window - 1 + batch, chunked ones chunk + batch)."""

    def blocks(tokens: int) -> int:
        return -(-tokens // block) * block

    total = shape.full * blocks(context)
    if shape.sliding:
        total += shape.sliding * (blocks(min(shape.window - 1 + batched_tokens, context)) + block)
    if shape.chunked:
        total += shape.chunked * blocks(min(shape.chunk + batched_tokens, context))
    return total


def tp_valid(model: ModelInfo, tp: int) -> bool:
    """Heads must split evenly; KV heads split evenly or replicate evenly (vLLM's rules)."""
    if model.heads % tp:
        return False
    if model.attention.is_mla or not model.has_kv_cache:
        return True
    if tp >= model.kv_heads:
        return tp % model.kv_heads == 0
    return model.kv_heads % tp == 0
