"""Human-readable tables: `stackc plan` and `stackc catalog`."""

from __future__ import annotations

from .units import GIB


def _table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]) + "\n"


def table(plan) -> str:
    s = plan.stack
    head = (f"stack `{s.spec.name}`" + (f", environment `{s.environment}`" if s.environment else "")
            + f": {s.nodes} x {s.gpus_per_node} {s.gpu.id} ({s.gpu.cuda_total_gib:.2f} GiB each as CUDA reports it)\n\n")
    rows = []
    for mp in plan.models:
        e, st = mp.evaluation, mp.settings
        replicas = str(mp.replicas_max) if mp.replicas_min == mp.replicas_max else f"{mp.replicas_min}-{mp.replicas_max}"
        layout = f"tp{e.tp}" + (f" pp{e.pp}" if e.pp > 1 else "")
        conc = "-" if e.max_concurrency is None else f"{e.max_concurrency:.2f}x"
        verdict = ("fits" if e.fits else "DOES NOT FIT") + (" (marginal)" if e.marginal and e.fits else "") \
            + (f" ({e.gpu_layers}/{mp.model.info.layers} layers on GPU)" if e.gpu_layers is not None else "") \
            + (f" (shares a GPU with {', '.join(mp.shares_gpu_with)}: {e.share:.0%} of it)" if mp.shares_gpu_with else "") \
            + (" (estimate)" if e.budget.estimate_only else "")
        rows.append([
            mp.model.name, f"{mp.model.engine.name} {mp.model.engine_version}", st.quantization, st.kv_cache_dtype,
            f"{mp.gpus_per_replica} ({layout})", replicas, f"{e.weights_per_gpu / GIB:.1f}",
            f"{max(e.budget.kv, 0) / GIB:.1f}" if e.kv_bytes_per_token else "-",
            f"{e.kv_cache_tokens:,}" if e.kv_bytes_per_token else "-", str(st.max_context), conc,
            str(st.concurrency), verdict,
        ])
    body = _table(["model", "engine", "quant", "kv", "gpus/replica", "replicas", "weights GiB/gpu",
                   "kv GiB/gpu", "kv tokens", "max_context", "max concurrency", "asked", "verdict"],
                  rows, right={6, 7, 8, 9, 10, 11})
    foot = f"\nGPUs used: {plan.gpus_needed} of {s.gpus_per_node * s.nodes}\n"
    for mp in plan.models:
        if mp.kv_tiers:
            tiers = ", ".join(t.tier + (f" {t.size_bytes / GIB:g} GiB" if t.size_bytes else "") for t in mp.kv_tiers)
            foot += f"`{mp.model.name}` KV-cache tiers per replica: {tiers}\n"
    if plan.storage is not None and plan.models:
        rate = plan.storage.read_bytes_per_s / 2**20
        loads = ", ".join(f"`{mp.model.name}` {mp.load_s} s (budget {mp.startup_budget_s} s)" for mp in plan.models)
        foot += (f"model cache: {plan.storage.text} at {'an assumed ' if plan.storage.assumed else ''}{rate:,.0f} MiB/s; "
                 f"weights load in {loads}\n")
    for n in plan.nodes:
        usable = f" of {n.memory_available / GIB:,.0f} usable" if n.memory_available is not None else ""
        disk = f", {n.disk_bytes / GIB:,.0f} GiB of KV-cache disk" if n.disk_bytes else ""
        foot += f"node-{n.node}: host memory {n.memory_bytes / GIB:,.0f} GiB{usable}{disk}\n"
    for mp in plan.models:
        c = mp.cost()
        if c["usd_per_million_tokens"] is not None or c["break_even_tokens_per_day"] is not None:
            parts = [f"`{mp.model.name}`: ${c['usd_per_hour']:,.2f}/hour for its GPUs"]
            if c["usd_per_million_tokens"] is not None:
                parts.append(f"${c['usd_per_million_tokens']:,.3f} per million tokens at {c['tokens_per_day']:,} tokens/day")
            if c["break_even_tokens_per_day"] is not None:
                parts.append(f"cheaper than the hosted ${c['hosted_usd_per_million_tokens']:g}/M above "
                             f"{c['break_even_tokens_per_day']:,} tokens/day")
            foot += "; ".join(parts) + "\n"
    if plan.instance is not None:
        price = plan.usd_per_hour
        verified = "" if plan.instance.price_verified else " (price unverified)"
        foot += (f"instance: {s.nodes} x {plan.instance.name} in {plan.instance.price_region or s.region}: "
                 + (f"${price:,.2f}/hour, ${price * 730:,.0f}/month on demand{verified}\n" if price is not None
                    else "no on-demand price in the catalog\n"))
    return head + body + foot


def catalog_table(kind: str) -> str:
    from .catalog import load

    cat = load()
    if kind == "models":
        rows = [[m.hf_repo, m.id, f"{m.params_b:g}B", m.kind, str(m.layers), f"{m.heads}/{m.kv_heads}",
                 str(m.max_context), m.native_dtype, m.license or "-", ", ".join(m.aliases) or "-"]
                for m in sorted(cat.models, key=lambda m: m.hf_repo.lower())]
        return _table(["model (HF repo id)", "id", "params", "kind", "layers", "heads/kv", "max context", "dtype", "license",
                       "also (same architecture)"], rows)
    if kind == "gpus":
        rows = [[g.id, g.name, g.vendor, f"{g.memory_gb:g} GB", f"{g.cuda_total_gib:.2f}" + (" (est.)" if g.cuda_total_estimated else ""),
                 g.compute_capability or "-", "yes" if g.fp8 else "no", "yes" if g.fp4 else "no"] for g in cat.gpus]
        return _table(["id", "name", "vendor", "memory", "CUDA total GiB", "cc", "fp8", "fp4"], rows)
    rows = []
    for i in sorted(cat.instances, key=lambda i: (i.cloud, i.gpu, i.gpu_count, i.name)):
        price = "-" if i.price_usd_per_hour is None else f"{i.price_usd_per_hour:.4g}" + ("*" if i.note.startswith("VM part") else "")
        rows.append([i.cloud, i.name, f"{i.gpu_count} x {i.gpu}", str(i.vcpu), f"{i.ram_gib:g}", price,
                     "yes" if i.price_verified else "no", i.price_region or "-", ", ".join(i.sources) or "-"])
    note = ("\nPrices: on-demand USD/hour, SkyPilot catalog v8 read 2026-11-22; 'verified: no' marks prices nobody "
            "here confirmed; * is GCP's VM part plus its GPU part (billed apart). Override with STACKC_CATALOG.\n")
    return _table(["cloud", "instance", "gpus", "vcpu", "ram GiB", "$/hour", "verified", "region", "sources"], rows) + note
