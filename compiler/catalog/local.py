"""A model described by a local directory's Hugging Face `config.json`, or inline in the spec.

Only the architecture is read; the parameter count is computed from it (config files do not
carry one), the same way the catalog's counts were cross-checked.
"""

from __future__ import annotations

import json
from typing import Any

from . import Attention, ModelInfo, Moe


class ConfigError(Exception):
    def __init__(self, message: str, line: int = 1, col: int = 1):
        super().__init__(message)
        self.line, self.col = line, col


def estimate_params(layers: int, hidden: int, intermediate: int, heads: int, kv_heads: int, head_dim: int,
                    vocab: int, tie: bool, moe: Moe | None = None, dense_intermediate: int | None = None) -> float:
    """Parameters in billions: embeddings, attention, MLP (or experts) and the LM head."""
    attn = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    dense_mlp = 3 * hidden * (dense_intermediate or intermediate)
    total = vocab * hidden * (1 if tie else 2)
    for layer in range(layers):
        total += attn + 2 * hidden
        if moe and layer >= layers - moe.moe_layers:
            total += (moe.experts + moe.shared) * 3 * hidden * moe.expert_intermediate_size + hidden * moe.experts
        else:
            total += dense_mlp
    return total / 1e9


def _get(cfg: dict, *names: str, default: Any = None) -> Any:
    for name in names:
        if name in cfg and cfg[name] is not None:
            return cfg[name]
    return default


def from_config(text: str, model_id: str) -> ModelInfo:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"`config.json` is not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    if not isinstance(raw, dict):
        raise ConfigError("`config.json` is not a JSON object")
    cfg = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw
    required = {"num_hidden_layers": None, "hidden_size": None, "num_attention_heads": None, "vocab_size": None}
    for key in required:
        value = _get(cfg, key, default=_get(raw, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"`config.json` has no usable `{key}`")
        required[key] = value
    layers, hidden = required["num_hidden_layers"], required["hidden_size"]
    heads, vocab = required["num_attention_heads"], required["vocab_size"]
    kv_heads = _get(cfg, "num_key_value_heads", default=heads)
    head_dim = _get(cfg, "head_dim", default=hidden // heads)
    intermediate = _get(cfg, "intermediate_size", default=4 * hidden)
    max_context = _get(cfg, "max_position_embeddings", "n_positions", "max_seq_len", default=4096)
    tie = bool(_get(raw, "tie_word_embeddings", default=_get(cfg, "tie_word_embeddings", default=False)))
    dtype = str(_get(raw, "torch_dtype", "dtype", default=_get(cfg, "torch_dtype", "dtype", default="bfloat16")))
    quant = raw.get("quantization_config") or {}
    if isinstance(quant, dict) and quant.get("quant_method") == "fp8":
        dtype = "fp8"

    experts = _get(cfg, "num_local_experts", "num_experts", "n_routed_experts")
    moe = None
    if isinstance(experts, int) and experts > 1:
        first_dense = _get(cfg, "first_k_dense_replace", default=0)
        step = _get(cfg, "interleave_moe_layer_step", default=1) or 1
        moe = Moe(
            experts=experts,
            active=_get(cfg, "num_experts_per_tok", default=2),
            shared=_get(cfg, "n_shared_experts", default=0) or 0,
            expert_intermediate_size=_get(cfg, "moe_intermediate_size", default=intermediate),
            moe_layers=(layers - first_dense) // step,
        )

    kv_lora = _get(cfg, "kv_lora_rank")
    layer_types = cfg.get("layer_types") if isinstance(cfg.get("layer_types"), list) else None
    window = _get(cfg, "sliding_window", default=0) or 0
    if kv_lora:
        attention = Attention(full_layers=layers, mla_kv_lora_rank=kv_lora, mla_rope_dim=_get(cfg, "qk_rope_head_dim", default=64))
    elif layer_types:
        sliding = sum(1 for t in layer_types if "sliding" in str(t))
        attention = Attention(full_layers=len(layer_types) - sliding, sliding_layers=sliding, window=window if sliding else 0)
    elif window and cfg.get("use_sliding_window") is True:
        attention = Attention(full_layers=0, sliding_layers=layers, window=window)
    else:
        attention = Attention(full_layers=layers)

    is_encoder = any(str(a).endswith(("ForMaskedLM", "Model")) and "Causal" not in str(a)
                     for a in raw.get("architectures", [])) and raw.get("is_decoder") is not True \
        and str(raw.get("model_type", "")) in ("bert", "xlm-roberta", "roberta", "nomic_bert", "modernbert")
    if is_encoder:
        attention = Attention(full_layers=0)

    params = estimate_params(layers, hidden, intermediate, heads, kv_heads, head_dim, vocab, tie, moe)
    return ModelInfo(
        id=model_id,
        hf_repo=model_id,
        family=str(raw.get("model_type", "")),
        kind="encoder" if is_encoder else ("moe" if moe else "dense"),
        task="embed" if is_encoder else "generate",
        params_b=round(params, 3),
        layers=layers,
        hidden_size=hidden,
        intermediate_size=intermediate,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        max_context=max_context,
        tie_embeddings=tie,
        native_dtype=dtype,
        attention=attention,
        moe=moe,
        origin="config.json",
    )


def from_architecture(arch: Any, model_id: str) -> ModelInfo:
    """A model described inline with `architecture:` in the spec."""
    kv_heads = arch.kv_heads or arch.heads
    head_dim = arch.head_dim or arch.hidden_size // arch.heads
    moe = None
    if arch.experts:
        moe = Moe(experts=arch.experts, active=2, shared=0,
                  expert_intermediate_size=arch.intermediate_size or 4 * arch.hidden_size, moe_layers=arch.layers)
    return ModelInfo(
        id=model_id, hf_repo=model_id, family="", kind="moe" if moe else "dense", task="generate",
        params_b=arch.params, layers=arch.layers, hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size or 4 * arch.hidden_size, heads=arch.heads, kv_heads=kv_heads,
        head_dim=head_dim, vocab_size=arch.vocab_size, max_context=arch.max_context,
        tie_embeddings=arch.tie_embeddings, native_dtype="bfloat16", attention=Attention(full_layers=arch.layers),
        moe=moe, origin="architecture",
    )
