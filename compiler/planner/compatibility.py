"""Whether an engine can run a model as the spec asks (SC5xx): the GPU vendor, the task, the
quantization on this GPU, the weights' format, speculative decoding, adapters, and
`engine_args` that would fight stackc's own flags or carry a secret.
"""

from __future__ import annotations

import re

from .. import compat, engines
from ..catalog import GpuInfo
from ..diagnostics import Diagnostic
from ..engine_config import engine_config
from ..resolve import ResolvedModel
from .settings import resolve_settings

def compatibility(rm: ResolvedModel, gpu: GpuInfo, where, tiering=None) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    m, i, e = rm.spec, rm.index, rm.engine
    support = e.support
    if gpu.vendor not in support.vendors:
        names = ", ".join(n for n, x in engines.REGISTRY.items() if gpu.vendor in x.support.vendors)
        diags.append(Diagnostic.error(
            "SC505", f"{e.title} does not run on {gpu.name} ({gpu.vendor})", where("models", i, "engine"),
            label=f"{e.title} here", help=f"engines for this GPU: {names}"))
        return diags
    if m.task not in support.tasks:
        names = ", ".join(f"`{n}`" for n, x in engines.REGISTRY.items() if m.task in x.support.tasks)
        diags.append(Diagnostic.error(
            "SC504", f"{e.title} does not serve `task: {m.task}`", where("models", i, "task"),
            label=f"{m.task} here", help=f"engines that do: {names}"))
    if m.task == "generate" and rm.info.task == "embed":
        diags.append(Diagnostic.error(
            "SC504", f"`{rm.info.hf_repo}` is an embedding model; it cannot `generate`", where("models", i, "model"),
            label="an encoder", help="set `task: embed`"))
    rule = compat.check_quantization(e, rm.version, rm.quantization, gpu)
    span = where("models", i, "quantization") if m.quantization else where("models", i, "engine")
    if rule is not None:
        values = dict(version=f"v{rm.engine_version}", gpu=gpu.id, cc=gpu.compute_capability or "n/a",
                      quantization=rm.quantization)
        make = Diagnostic.error if rule.verdict == "error" else Diagnostic.warning
        diags.append(make(rule.code, compat.fill(rule.message, **values), span,
                          label=f"{rm.quantization} here" if m.quantization else f"{e.title} here",
                          help=compat.fill(rule.help, **values)))
    diags += _format_check(rm, where)
    if m.speculative and not support.speculative:
        diags.append(Diagnostic.error(
            "SC507", f"{e.title} does not run speculative decoding with a draft model",
            where("models", i, "speculative", key=True), label="a draft model here",
            help="remove `speculative:`, or use vllm, sglang or tensorrt-llm"))
    if m.adapters and not support.adapters:
        diags.append(Diagnostic.error(
            "SC507", f"{e.title} does not serve LoRA adapters", where("models", i, "adapters", key=True),
            label="adapters here", help="remove `adapters:`, or use vllm or sglang"))
    if m.prefix_caching is False and not e.supports_prefix_caching:
        diags.append(Diagnostic.warning(
            "SC510", f"{e.title} has no switch for prefix caching: `prefix_caching: false` has no effect",
            where("models", i, "prefix_caching"), label="ignored", help="remove `prefix_caching`"))
    if tiering is not None and tiering.routing == "prefix-aware" and m.prefix_caching is False and m.task == "generate" \
            and e.supports_prefix_caching:
        diags.append(Diagnostic.warning(
            "SC513", f"`routing: prefix-aware` sends `{m.name}`'s repeated prefixes to one replica, but its prefix "
            "caching is off", where("models", i, "prefix_caching"), label="nothing to reuse",
            help="remove `prefix_caching: false`, or route with `round-robin`"))
    if m.gpu_memory_utilization is not None and not e.has_memory_share:
        diags.append(Diagnostic.warning(
            "SC510", f"{e.title} takes no memory share: `gpu_memory_utilization` has no effect",
            where("models", i, "gpu_memory_utilization"), label="ignored",
            help=f"{e.title} offloads every layer to the GPU; size the model with `max_context` and `concurrency`"))
    if m.kv_cache_dtype == "fp8" and not e.kv_fp8:
        diags.append(Diagnostic.warning(
            "SC503", f"{e.title} has no fp8 KV cache: stackc uses its 8-bit `q8_0` cache instead",
            where("models", i, "kv_cache_dtype"), label="runs as q8_0", help="set `kv_cache_dtype: auto` to keep f16"))
    diags += _engine_args_check(rm, gpu, where)
    return diags


def _format_check(rm: ResolvedModel, where) -> list[Diagnostic]:
    m, i = rm.spec, rm.index
    loaded, quant = rm.loaded_format, rm.quantization
    if loaded is None or loaded == quant:
        return []
    online = rm.engine.online_quantization
    if loaded == "none" and quant in online:
        return []  # quantized while loading (vLLM's online FP8, for example)
    if loaded == "none" and quant == "none":
        return []
    source = m.weights or m.model
    if loaded == "none":
        return [Diagnostic.error(
            "SC508", f"`{source}` holds unquantized weights; {rm.engine.title} cannot turn them into {quant} while loading",
            where("models", i, "quantization"), label=f"{quant} asked",
            help=f"set `weights:` to a {quant} checkpoint of this model"
                 + (f", or `quantization: {online[0]}` to quantize at load time" if online else ""))]
    return [Diagnostic.error(
        "SC508", f"`{source}` is a {loaded} checkpoint, but `quantization` says {quant}",
        where("models", i, "quantization") if m.quantization else where("models", i, "weights"),
        label="does not match the weights", help=f"`quantization: {loaded}`, or `weights:` of a {quant} checkpoint")]


SECRET_WORDS = {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "credential", "credentials", "auth"}


def _names_a_secret(flag: str) -> bool:
    """`--hf-token`, `api_key`, `--hf-auth=...`: a flag whose name has a credential word, as a whole word
    (so `max-num-batched-tokens` and `tokenizer` are not), whatever the type of its value. A flag for a
    file that holds one (`--ssl-keyfile`) names a path, not a secret."""
    words = re.split(r"[-_.]+", flag.split("=", 1)[0].lower().strip("-"))
    return bool(SECRET_WORDS & set(words))


def _engine_args_check(rm: ResolvedModel, gpu: GpuInfo, where) -> list[Diagnostic]:
    m, i, e = rm.spec, rm.index, rm.engine
    if not m.engine_args:
        return []
    diags = []
    managed = e.managed_flags(engine_config(rm, resolve_settings(rm, gpu), 1, 1, gpu, None, with_extra=False))
    seen: dict[str, str] = {}
    for key, value in m.engine_args.items():
        flag = e.canonical_flag(key)
        span = where("models", i, "engine_args", key, key=True)
        if flag in managed:
            diags.append(Diagnostic.error(
                "SC511", f"`engine_args` sets `{key}`, which stackc already sets for {e.title}", span,
                label=f"same flag as `--{flag}`", help=_managed_help(flag)))
        elif flag in seen:
            diags.append(Diagnostic.error(
                "SC511", f"`engine_args` sets `{flag}` twice (`{seen[flag]}` and `{key}`)", span,
                label="written again here", help="keep one spelling"))
        seen.setdefault(flag, key)
        if _names_a_secret(flag) and (value not in (True, False, None) or "=" in key):
            diags.append(Diagnostic.error(
                "SC702", f"`engine_args.{key}` would write a secret into the generated files", span,
                label="a credential as a literal", help="declare the secret under `secrets:`; engines read their keys from the environment"))
        if isinstance(value, str) and any(c in value for c in "\n\r\x00"):
            diags.append(Diagnostic.error(
                "SC207", f"`engine_args.{key}` contains a control character", where("models", i, "engine_args", key),
                label="not allowed", help="write the value on one line"))
    return diags


_SPEC_FIELD_FOR_FLAG = {
    "max-model-len": "max_context", "ctx-size": "max_context", "context-length": "max_context",
    "tensor-parallel-size": "gpus", "tp-size": "gpus", "num-shard": "gpus",
    "gpu-memory-utilization": "gpu_memory_utilization", "mem-fraction-static": "gpu_memory_utilization",
    "max-num-seqs": "max_num_seqs", "max-running-requests": "max_num_seqs",
    "max-num-batched-tokens": "max_batched_tokens", "kv-cache-dtype": "kv_cache_dtype",
    "quantization": "quantization", "quantize": "quantization", "dtype": "dtype",
    "served-model-name": "served_names", "enforce-eager": "enforce_eager", "revision": "revision",
    "enable-prefix-caching": "prefix_caching", "pipeline-parallel-size": "parallel",
}


def _managed_help(flag: str) -> str:
    field_name = _SPEC_FIELD_FOR_FLAG.get(flag)
    if field_name:
        return f"remove it from `engine_args` and set `{field_name}:` on the model"
    return "remove it from `engine_args`: stackc derives it from the spec"
