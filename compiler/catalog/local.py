"""A model described by a local directory's Hugging Face `config.json`, or inline in the spec.

Only the architecture is read; the parameter count is computed from it (config files do not
carry one), the same way the catalog's counts were cross-checked.
"""

from __future__ import annotations

import json
import re
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
    moe_layers = min(moe.moe_layers, layers) if moe else 0
    expert_mlp = ((moe.experts + moe.shared) * 3 * hidden * moe.expert_intermediate_size + hidden * moe.experts) if moe else 0
    total = vocab * hidden * (1 if tie else 2) + layers * (attn + 2 * hidden)
    total += moe_layers * expert_mlp + (layers - moe_layers) * dense_mlp
    return total / 1e9


def _get(cfg: dict, *names: str, default: Any = None) -> Any:
    for name in names:
        if name in cfg and cfg[name] is not None:
            return cfg[name]
    return default


# Upper bounds far above any real model, so absurd values are reported, not computed with
LIMITS = {"num_hidden_layers": 10_000, "hidden_size": 1_000_000, "num_attention_heads": 10_000,
          "vocab_size": 10_000_000, "intermediate_size": 10_000_000, "max_position_embeddings": 100_000_000,
          "num_local_experts": 100_000, "moe_intermediate_size": 10_000_000, "kv_lora_rank": 1_000_000}
DEFAULT_LIMIT = 10_000_000


def _int(cfg: dict, *names: str, default: Any = None, minimum: int = 1) -> Any:
    """An integer field of config.json; a value of another type or size is a ConfigError."""
    value = _get(cfg, *names, default=default)
    if value is None:
        return None
    limit = LIMITS.get(names[0], DEFAULT_LIMIT)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= limit:
        shown = json.dumps(value)[:40] if isinstance(value, (int, float, str, bool, type(None))) else type(value).__name__
        raise ConfigError(f"`config.json` has `{names[0]}: {shown}`, expected a whole number from {minimum} to {limit:,}")
    return value


def from_config(text: str, model_id: str) -> ModelInfo:
    """Read the architecture from a Hugging Face config.json; every field is checked, because
    the file is input like the spec itself."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"`config.json` is not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except ValueError:  # an integer longer than Python reads (4,300 digits): no config field is one
        long = re.search(r"\d{4000,}", text)
        offset = long.start() if long else 0
        line = text.count("\n", 0, offset) + 1
        raise ConfigError("`config.json` has a number too long to read (thousands of digits)",
                          line, offset - text.rfind("\n", 0, offset)) from None
    if not isinstance(raw, dict):
        raise ConfigError("`config.json` is not a JSON object")
    cfg = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw
    merged = {**raw, **cfg}
    layers = _int(merged, "num_hidden_layers")
    hidden = _int(merged, "hidden_size")
    heads = _int(merged, "num_attention_heads")
    vocab = _int(merged, "vocab_size")
    for key, value in (("num_hidden_layers", layers), ("hidden_size", hidden), ("num_attention_heads", heads),
                       ("vocab_size", vocab)):
        if value is None:
            raise ConfigError(f"`config.json` has no `{key}`")
    kv_heads = _int(cfg, "num_key_value_heads", default=heads)
    head_dim = _int(cfg, "head_dim", default=max(1, hidden // heads))
    intermediate = _int(cfg, "intermediate_size", default=4 * hidden)
    max_context = _int(cfg, "max_position_embeddings", "n_positions", "max_seq_len", default=4096)
    if kv_heads > heads:
        raise ConfigError("`config.json` has more KV heads than attention heads")
    tie = _get(raw, "tie_word_embeddings", default=_get(cfg, "tie_word_embeddings", default=False)) is True
    dtype = _get(raw, "torch_dtype", "dtype", default=_get(cfg, "torch_dtype", "dtype", default="bfloat16"))
    dtype = dtype if isinstance(dtype, str) else "bfloat16"
    quant = raw.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method") == "fp8":
        dtype = "fp8"

    experts = _int(cfg, "num_local_experts", "num_experts", "n_routed_experts", minimum=0)
    moe = None
    if experts and experts > 1:
        first_dense = _int(cfg, "first_k_dense_replace", default=0, minimum=0)
        step = _int(cfg, "interleave_moe_layer_step", default=1)
        moe = Moe(
            experts=experts,
            active=min(_int(cfg, "num_experts_per_tok", default=2), experts),
            shared=_int(cfg, "n_shared_experts", default=0, minimum=0),
            expert_intermediate_size=_int(cfg, "moe_intermediate_size", default=intermediate),
            moe_layers=max(0, (layers - min(first_dense, layers)) // step),
        )

    kv_lora = _int(cfg, "kv_lora_rank", minimum=0)
    layer_types = cfg.get("layer_types") if isinstance(cfg.get("layer_types"), list) else None
    window = _int(cfg, "sliding_window", default=0, minimum=0) or 0
    if kv_lora:
        attention = Attention(full_layers=layers, mla_kv_lora_rank=kv_lora,
                              mla_rope_dim=_int(cfg, "qk_rope_head_dim", default=64, minimum=0))
    elif layer_types:
        sliding = sum(1 for t in layer_types if "sliding" in str(t))
        attention = Attention(full_layers=len(layer_types) - sliding, sliding_layers=sliding, window=window if sliding else 0)
    elif window and cfg.get("use_sliding_window") is True:
        attention = Attention(full_layers=0, sliding_layers=layers, window=window)
    else:
        attention = Attention(full_layers=layers)

    architectures = raw.get("architectures") if isinstance(raw.get("architectures"), list) else []
    is_encoder = str(raw.get("model_type", "")) in ("bert", "xlm-roberta", "roberta", "nomic_bert", "modernbert") \
        and not any("Causal" in str(a) for a in architectures)
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
    kv_heads = min(arch.kv_heads or arch.heads, arch.heads)
    head_dim = arch.head_dim or max(1, arch.hidden_size // arch.heads)
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
