"""SC401/SC402 with help that holds: every fix offered (more GPUs, a cheaper format, fewer or
shorter sequences, a larger GPU) was re-planned and found to fit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .. import compat
from ..catalog import Catalog, GpuInfo, ModelInfo
from ..diagnostics import Diagnostic
from ..engines.base import GIB
from ..plan import Evaluation, Settings
from ..resolve import ResolvedModel, ResolvedStack
from .settings import evaluate, layouts

def does_not_fit(rm: ResolvedModel, stack: ResolvedStack, s: Settings, ev: Evaluation, auto: bool,
                  catalog: Catalog) -> Diagnostic:
    where = stack.where
    m, gpu, i = rm.spec, stack.gpu, rm.index
    n = ev.tp * ev.pp
    layout = f"{n} x {gpu.id}"
    if ev.reason == "weights":
        message = (f"`{m.name}` does not fit on {layout}: {_short(rm.info)} at {_qname(s)} needs "
                   f"{ev.weights_per_gpu / GIB:.1f} GiB of weights per GPU, the GPU gives "
                   f"{(ev.budget.requested - ev.budget.activation - ev.budget.non_torch - ev.budget.cudagraph) / GIB:.1f} GiB")
        code = "SC401"
    elif ev.kv_cache_tokens < s.max_context:
        message = (f"`{m.name}` cannot hold one sequence of {s.max_context} tokens on {layout}: "
                   f"its KV cache holds {ev.kv_cache_tokens} tokens ({max(ev.budget.kv, 0) / GIB:.1f} GiB)")
        code = "SC402"
    else:
        message = (f"`{m.name}` holds {ev.max_concurrency:.1f} sequences of {s.max_context} tokens on {layout}, "
                   f"{s.concurrency} asked")
        code = "SC402"
    span_path = ("models", i, "gpus") if (m.gpus != "auto" or m.parallel is None) else ("models", i, "parallel")
    if m.gpus == "auto" and m.parallel is None:
        span_path = ("models", i, "concurrency") if code == "SC402" and m.concurrency > 1 else ("models", i, "model")
    label = "one GPU per replica here" if n == 1 and m.gpus != "auto" else (
        "the largest layout tried" if auto else f"{n} GPUs per replica here")
    return Diagnostic.error(code, message, where(*span_path), label=label,
                            help=_alternatives(rm, stack, s, ev, auto, catalog))


def _short(info: ModelInfo) -> str:
    return info.hf_repo.rsplit("/", 1)[-1]


def _qname(s: Settings) -> str:
    return {"none": "bf16" if s.dtype in ("auto", "bfloat16") else s.dtype}.get(s.quantization, s.quantization)


def _alternatives(rm: ResolvedModel, stack: ResolvedStack, s: Settings, ev: Evaluation, auto: bool,
                  catalog: Catalog) -> Optional[str]:
    """Fixes that were re-planned and hold: more GPUs, cheaper formats (with the fewest GPUs
    they need), fewer or shorter sequences, a larger GPU. Best first, none redundant."""
    gpu, current = stack.gpu, ev.tp * ev.pp
    options = [c for c in layouts(rm, stack) if c[0] * c[1] >= current]

    def smallest(settings: Settings, on: GpuInfo = gpu, only_current: bool = False):
        for tp, pp in ([(ev.tp, ev.pp)] if only_current else options):
            cand = evaluate(rm, on, settings, tp, pp)
            if cand.fits:
                return (tp, pp), cand
        return None

    def layout_text(tp: int, pp: int) -> str:
        return f"`gpus: {tp}`" if pp == 1 else f"`parallel: {{tensor: {tp}, pipeline: {pp}}}`"

    found: list[tuple[str, Evaluation]] = []
    more = smallest(s)
    limit = more[0][0] * more[0][1] if more else 10**9
    if more and more[0] != (ev.tp, ev.pp):
        found.append((layout_text(*more[0]), more[1]))
    online = "fp8" in rm.engine.online_quantization and s.quantization == "none" \
        and compat.check_quantization(rm.engine, rm.version, "fp8", gpu) is None
    kv_ok = s.kv_cache_dtype != "fp8" and rm.engine.kv_fp8
    changes = []
    if online:
        changes.append(({"quantization": "fp8"}, "`quantization: fp8`"))
    if kv_ok:
        changes.append(({"kv_cache_dtype": "fp8"}, "`kv_cache_dtype: fp8`"))
    if online and kv_ok:
        changes.append(({"quantization": "fp8", "kv_cache_dtype": "fp8"}, "`quantization: fp8` and `kv_cache_dtype: fp8`"))
    for change, text in changes:
        hit = smallest(replace(s, **change))
        if hit is None:
            continue
        (tp, pp), cand = hit
        if tp * pp >= limit:
            continue
        limit = min(limit, tp * pp) if text.count("`") > 2 else limit
        extra = "" if (tp, pp) == (ev.tp, ev.pp) else f" with {layout_text(tp, pp)}"
        found.append((text + extra, cand))
        if (tp, pp) == (ev.tp, ev.pp):
            break  # a change that fits as laid out needs no combination with others
    if ev.reason == "kv" and s.concurrency > 1 and ev.max_concurrency and ev.max_concurrency >= 1:
        found.append((f"`concurrency: {int(ev.max_concurrency)}`", ev))
    if ev.reason == "kv" and ev.budget.kv > 0:
        best = _longest_context(rm, gpu, s, ev.tp, ev.pp)
        if best:
            found.append((f"`max_context: {best}`", ev))
    for other in sorted(catalog.gpus, key=lambda g: g.cuda_total_gib):
        if other.vendor != gpu.vendor or other.cuda_total_gib <= gpu.cuda_total_gib:
            continue
        if compat.check_quantization(rm.engine, rm.version, s.quantization, other) is not None:
            continue
        hit = smallest(s, other, only_current=True)
        if hit:
            found.append((f"`hardware.gpu: {other.id}`", hit[1]))
            break
    if not found:
        return "no single change found that fits; reduce `max_context` or `concurrency`, or use a larger GPU"
    first_text, first = found[0]
    holds = (f" holds {first.max_concurrency:.0f} sequences of {s.max_context} tokens ({s.concurrency} asked)"
             if first.max_concurrency is not None and not first_text.startswith(("`max_context", "`concurrency")) else " fits")
    rest = [t for t, _ in found[1:]]
    return f"{first_text}{holds}" + (f"; so do {', '.join(rest)}" if rest else "")


def _longest_context(rm: ResolvedModel, gpu: GpuInfo, s: Settings, tp: int, pp: int) -> Optional[int]:
    lo, hi = 1, s.max_context
    if not evaluate(rm, gpu, replace(s, max_context=1024), tp, pp).fits:
        return None
    lo = 1024
    while hi - lo > 256:
        mid = (lo + hi) // 2
        if evaluate(rm, gpu, replace(s, max_context=mid), tp, pp).fits:
            lo = mid
        else:
            hi = mid
    return lo // 256 * 256
