"""One model's plan: its settings, the layout that holds `concurrency` sequences at
`max_context` (or the one the spec sets), the capacity diagnostics (SC4xx), what its download
and start-up take.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .. import memory, storage
from ..catalog import Catalog
from ..diagnostics import Diagnostic
from ..plan import ModelPlan, Plan
from ..resolve import ResolvedModel, ResolvedStack
from .compatibility import compatibility
from .help import does_not_fit
from .settings import evaluate, layouts, partial_offload, resolve_settings

def plan_model(rm: ResolvedModel, stack: ResolvedStack, catalog: Catalog) -> tuple[Optional[ModelPlan], list[Diagnostic]]:
    where = stack.where
    assert where is not None
    m, gpu, i = rm.spec, stack.gpu, rm.index
    diags = compatibility(rm, gpu, where, stack.spec.tiering)
    s = resolve_settings(rm, gpu)

    if m.max_context and m.max_context > rm.info.max_context:
        diags.append(Diagnostic.error(
            "SC403", f"`max_context: {m.max_context}` is above `{rm.info.hf_repo}`'s maximum of {rm.info.max_context} tokens",
            where("models", i, "max_context"), label="longer than the model was trained for",
            help=f"`max_context: {rm.info.max_context}`"))
        s = replace(s, max_context=rm.info.max_context)

    explicit = _explicit_layout(rm, stack, where, diags)
    if any(d.is_error and d.code in ("SC404", "SC406") for d in diags):
        return None, diags
    if explicit is not None:
        ev = evaluate(rm, gpu, s, *explicit)
    else:
        candidates = layouts(rm, stack)
        if not candidates:
            diags.append(Diagnostic.error(
                "SC404", f"no tensor-parallel size up to {stack.gpus_per_node} splits `{rm.info.hf_repo}` "
                f"({rm.info.heads} heads, {rm.info.kv_heads} KV heads)", where("models", i, "gpus"),
                label="no valid split", help="set `gpus:` to a size that divides the attention heads"))
            return None, diags
        ev = None
        for tp, pp in candidates:
            ev = evaluate(rm, gpu, s, tp, pp)
            if ev.fits:
                break
        assert ev is not None
        if ev.pp > 1 and ev.fits:
            diags.append(Diagnostic.warning(
                "SC410", f"`{m.name}` needs {ev.tp * ev.pp} GPUs per replica: tensor parallel {ev.tp} within each node, "
                f"pipeline parallel {ev.pp} across nodes", where("models", i, "model"),
                label="spans nodes", help="pipeline stages talk over the network between nodes; a larger GPU or "
                "`quantization: fp8` may keep the model on one node"))
    ev = partial_offload(rm, gpu, s, ev)
    if ev.gpu_layers is not None:
        diags.append(Diagnostic.warning(
            "SC411", f"`{m.name}` does not fit on the GPU: {ev.gpu_layers} of {rm.info.layers} layers run there, the "
            f"rest from host memory; expect decoding about {ev.slowdown:.0f}x slower", where("models", i, "model"),
            label="partial offload", help="a smaller quantization (`gguf-q4_k_m`), a shorter `max_context` or a larger GPU "
            "keeps every layer on the GPU"))
    if not ev.fits:
        diags.append(does_not_fit(rm, stack, s, ev, explicit is None, catalog))
    elif ev.marginal:
        diags.append(Diagnostic.warning(
            "SC407", f"`{m.name}` only just fits: {ev.max_concurrency:.2f} sequences of {s.max_context} tokens "
            f"for {s.concurrency} asked", where("models", i, "concurrency"),
            label="within 3% of the limit", help="leave headroom: fewer sequences, fp8 KV cache or one more GPU"))
    if ev.budget.estimate_only and ev.fits:
        diags.append(Diagnostic.warning(
            "SC408", f"{rm.engine.title} publishes no memory accounting stackc can follow closely: "
            f"`{m.name}`'s KV-cache figures are estimates", where("models", i, "engine"),
            label=f"{rm.engine.title} here", help="check the engine's start-up log before relying on the numbers"))
    if s.max_num_seqs < s.concurrency and m.task == "generate":
        diags.append(Diagnostic.warning(
            "SC409", f"`max_num_seqs: {s.max_num_seqs}` runs fewer sequences than `concurrency: {s.concurrency}`",
            where("models", i, "max_num_seqs") if m.max_num_seqs else where("models", i, "concurrency"),
            label="the engine will queue the rest", help=f"`max_num_seqs: {s.concurrency}`"))

    replicas = m.replicas
    rmin, rmax = (replicas, replicas) if isinstance(replicas, int) else (replicas.min, replicas.max)
    if not isinstance(replicas, int) and replicas.min > replicas.max:
        diags.append(Diagnostic.error(
            "SC206", f"`replicas.min` ({replicas.min}) is above `replicas.max` ({replicas.max})",
            where("models", i, "replicas"), label="empty range", help=f"`replicas: {{min: {replicas.max}, max: {replicas.min}}}`"))
    download = download_bytes(rm)
    return ModelPlan(rm, s, ev, rmin, rmax, download, 0), diags


def read_bytes(mp: ModelPlan) -> float:
    """What one replica reads from the model cache at start: the stored artifact (or, for a local
    one, the weights it loads)."""
    ev = mp.evaluation
    return mp.download_bytes or ev.weights_per_gpu * ev.tp * ev.pp


def engine_overhead_s(mp: ModelPlan) -> int:
    e = mp.model.engine
    return e.startup_overhead_s if not mp.settings.enforce_eager else e.startup_overhead_s // 3


def start_up(p: Plan, placement: Optional[dict]) -> None:
    """Each model's load time and start-up budget from the model cache's read rate. Models that
    share a node start together and share its disk fairly: a model of b bytes is read once every
    model sharing it has had min(b, its own size) read (replicas of one model read the same files)."""
    stack = p.stack
    cache = sum(int(mp.download_bytes * 1.1) for mp in p.models)
    # a cloud's root disk, which holds the cache where the machine has no local NVMe: the terraform
    # target's setting (`terraform.root_volume_gib`), read through the spec's section accessor
    root = stack.spec.section("terraform").root_volume_gib
    p.storage = storage.model_cache(stack.provider, p.instance, stack.disk_read, cache, root)
    on_node: dict[int, set[str]] = {}
    for name, replicas in (placement or {}).items():
        for replica in replicas:
            for node, _ in replica:
                on_node.setdefault(node, set()).add(name)
    nodes_of: dict[str, list[set[str]]] = {}  # model -> the sets of models on each node it is on
    for names in on_node.values():
        for name in names:
            nodes_of.setdefault(name, []).append(names)
    by_name = {mp.model.name: mp for mp in p.models}
    for mp in p.models:
        nodes = nodes_of.get(mp.model.name) or [{mp.model.name}]
        own = read_bytes(mp)
        together = max(sum(min(read_bytes(by_name[n]), own) for n in names) for names in nodes)
        mp.load_s = p.storage.seconds(together)
        mp.startup_budget_s = storage.startup_budget(mp.load_s, engine_overhead_s(mp))


def download_bytes(rm: ResolvedModel) -> float:
    """What the download job fetches: the artifact as stored (an unquantized checkpoint that the
    engine quantizes at load time is downloaded at its stored size)."""
    stored = rm.loaded_format if rm.loaded_format else "none"
    if rm.artifact.kind == "local":
        return 0.0
    total = memory.weight_bytes_total(rm.info, stored if stored != "none" else "none", "auto")
    if rm.info.native_dtype == "float32" and stored == "none":
        total *= 2
    return total


def _explicit_layout(rm: ResolvedModel, stack: ResolvedStack, where, diags: list[Diagnostic]) -> Optional[tuple[int, int]]:
    m, i = rm.spec, rm.index
    if m.parallel is not None and m.gpus != "auto":
        diags.append(Diagnostic.error(
            "SC209", "`gpus` and `parallel` are both set", where("models", i, "parallel", key=True),
            label="choose one", help="keep `parallel:` for an explicit split, or `gpus: N` for tensor parallel N"))
        return None
    if m.parallel is not None:
        tp, pp = m.parallel.tensor, m.parallel.pipeline
        path = ("models", i, "parallel", "tensor")
    elif m.gpus != "auto":
        tp, pp = int(m.gpus), 1
        path = ("models", i, "gpus")
    else:
        return None
    layer_split = rm.engine.splits_layers
    if not layer_split and not memory.tp_valid(rm.info, tp):
        valid = [n for n in range(1, stack.gpus_per_node + 1) if memory.tp_valid(rm.info, n)]
        diags.append(Diagnostic.error(
            "SC404", f"tensor parallel {tp} does not divide `{rm.info.hf_repo}`: {rm.info.heads} attention heads, "
            f"{rm.info.kv_heads} KV heads", where(*path), label=f"{tp} GPUs per replica",
            help=f"valid sizes on this node: {', '.join(f'`{n}`' for n in valid)}" if valid else None))
    if tp > stack.gpus_per_node:
        diags.append(Diagnostic.error(
            "SC406", f"{tp} GPUs per replica is more than the {stack.gpus_per_node} of one node", where(*path),
            label="tensor parallel stays within a node",
            help=(f"`parallel: {{tensor: {stack.gpus_per_node}, pipeline: {-(-tp // stack.gpus_per_node)}}}` "
                  f"spreads it over {-(-tp // stack.gpus_per_node)} nodes") if stack.nodes >= -(-tp // stack.gpus_per_node)
            else f"set `hardware.gpus_per_node` to at least {tp}"))
    if pp > stack.nodes and tp * pp > stack.gpus_per_node * stack.nodes:
        diags.append(Diagnostic.error(
            "SC406", f"{tp * pp} GPUs per replica is more than the {stack.gpus_per_node * stack.nodes} the hardware has",
            where("models", i, "parallel", key=True), label="too many stages",
            help=f"set `hardware.nodes: {-(-tp * pp // stack.gpus_per_node)}`"))
    return tp, pp
