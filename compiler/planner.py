"""The capacity plan: how many GPUs each replica needs, what its KV cache holds, what it costs.

For every model the planner resolves the engine's settings (its own defaults for what the
spec leaves unset), sizes the weights and the KV cache per GPU the way the engine budgets
memory, picks the fewest GPUs that hold `concurrency` sequences at `max_context` (`gpus:
auto`), checks compatibility (SC5xx) and capacity (SC4xx), and checks the whole stack fits the
hardware. Every `help:` it offers was re-planned and found to hold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Optional

from . import compat, host, memory, storage
from .catalog import Catalog, GpuInfo, InstanceInfo, ModelInfo
from .diagnostics import Diagnostic
from .engines.base import GIB, Budget, BudgetInputs
from .ir import KvOffload
from .resolve import ResolvedModel, ResolvedStack

MARGIN = 0.03  # a plan within 3% of a limit is `marginal`: a warning, not a verdict
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Settings:
    util: Optional[float]  # the engine's memory share (resolved), None where it has none
    max_context: int
    max_num_seqs: int
    max_batched_tokens: int
    kv_cache_dtype: str
    dtype: str
    enforce_eager: bool
    quantization: str
    concurrency: int


@dataclass(frozen=True)
class Evaluation:
    tp: int
    pp: int
    share: Optional[float]  # the engine's memory share for this layout (spec or engine default)
    budget: Budget
    weights_per_gpu: float
    kv_bytes_per_token: float
    kv_cache_tokens: int
    max_concurrency: Optional[float]
    fits: bool
    marginal: bool
    reason: str  # why it does not fit: weights | kv | "" when it fits
    gpu_layers: Optional[int] = None  # llama.cpp / Ollama: layers on the GPU when not all fit
    slowdown: float = 1.0  # expected decode slowdown of a partial offload


@dataclass
class ModelPlan:
    model: ResolvedModel
    settings: Settings
    evaluation: Evaluation
    replicas_min: int
    replicas_max: int
    download_bytes: float
    startup_budget_s: int
    instance: Optional[InstanceInfo] = None
    usd_per_hour: Optional[float] = None
    shares_gpu_with: tuple[str, ...] = ()  # other small models on the same GPU (split memory shares)
    kv_tiers: tuple[KvOffload, ...] = ()  # KV-cache tiers below GPU memory, per replica
    host_memory_bytes: int = 0  # host RAM one replica needs (engine processes, CPU tier, offloaded layers)
    load_s: int = 0  # reading the weights from the model cache at start-up (every model of its node at once)

    @property
    def max_in_flight(self) -> int:
        """Requests the gateway lets through to this model before `saturated` overflow applies:
        the spec's, else what the replicas run at once."""
        return self.model.spec.max_in_flight or self.settings.max_num_seqs * self.replicas_max

    @property
    def gpus_per_replica(self) -> int:
        return self.evaluation.tp * self.evaluation.pp

    @property
    def gpus_used(self) -> float:
        """GPUs this model's replicas take (a shared GPU counts once, split between its models)."""
        if self.shares_gpu_with:
            return 1 / (len(self.shares_gpu_with) + 1)
        return self.gpus_per_replica * self.replicas_max

    def as_json(self, gpu: GpuInfo) -> dict:
        e, s, m = self.evaluation, self.settings, self.model
        return {
            "name": m.name,
            "engine": m.engine.name,
            "engine_version": m.engine_version,
            "image": m.image,
            "quantization": s.quantization,
            "kv_cache_dtype": s.kv_cache_dtype,
            "gpu": gpu.id,
            "gpus_per_replica": self.gpus_per_replica,
            "tensor_parallel": e.tp,
            "pipeline_parallel": e.pp,
            "replicas": self.replicas_max if self.replicas_min == self.replicas_max
            else {"min": self.replicas_min, "max": self.replicas_max},
            "gpu_memory_utilization": e.share,
            "max_context": s.max_context,
            "concurrency": s.concurrency,
            "max_num_seqs": s.max_num_seqs,
            "max_batched_tokens": s.max_batched_tokens,
            "weights_gib": _r(e.weights_per_gpu / GIB),
            "kv_cache_gib": _r(max(e.budget.kv, 0) / GIB) if e.kv_bytes_per_token else 0.0,
            "kv_cache_tokens": e.kv_cache_tokens,
            "max_concurrency": None if e.max_concurrency is None else _r(e.max_concurrency),
            "fits": e.fits,
            "marginal": e.marginal,
            "gpu_layers": e.gpu_layers,
            "shares_gpu_with": list(self.shares_gpu_with),
            "estimate_only": e.budget.estimate_only,
            "download_gib": _r(self.download_bytes / GIB),
            "kv_tiers": [{"tier": t.tier, "size_gib": _r(t.size_bytes / GIB) if t.size_bytes else None}
                         for t in self.kv_tiers],
            "host_memory_gib": _r(self.host_memory_bytes / GIB),
            "load_s": self.load_s,
            "startup_budget_s": self.startup_budget_s,
            "instance_type": self.instance.name if self.instance else None,
            **self.cost(),
        }

    def cost(self) -> dict:
        """Hourly and monthly cost of the GPUs this model's replicas take; with `tokens_per_day`,
        the cost per million tokens; with a hosted price, the daily traffic above which running
        the model here is cheaper."""
        spec, hourly = self.model.spec, self.usd_per_hour
        daily = None if hourly is None else hourly * 24
        per_mtok = (daily / (spec.tokens_per_day / 1e6)) if daily is not None and spec.tokens_per_day else None
        hosted = spec.hosted_usd_per_million_tokens
        break_even = (daily / hosted * 1e6) if daily is not None and hosted else None
        return {
            "usd_per_hour": None if hourly is None else round(hourly, 4),
            "usd_per_month": None if hourly is None else round(hourly * HOURS_PER_MONTH, 2),
            "price_verified": self.instance.price_verified if self.instance and hourly is not None else None,
            "tokens_per_day": spec.tokens_per_day,
            "usd_per_million_tokens": None if per_mtok is None else round(per_mtok, 4),
            "hosted_usd_per_million_tokens": hosted,
            "break_even_tokens_per_day": None if break_even is None else int(break_even),
            "cheaper_than_hosted": None if per_mtok is None or hosted is None else per_mtok < hosted,
        }


def _r(x: float) -> float:
    return round(x, 2)


@dataclass
class Plan:
    stack: ResolvedStack
    models: list[ModelPlan] = field(default_factory=list)
    instance: Optional[InstanceInfo] = None
    gpus_needed: int = 0
    shared_groups: list[tuple[str, ...]] = field(default_factory=list)  # small models sharing one GPU
    nodes: list[host.NodeNeeds] = field(default_factory=list)  # host RAM and disk per node
    storage: Optional[storage.Storage] = None  # where the model cache lives, and the read rate budgets assume

    @property
    def usd_per_hour(self) -> Optional[float]:
        if self.instance is None or self.instance.price_usd_per_hour is None:
            return None
        return self.instance.price_usd_per_hour * self.stack.nodes

    def as_json(self) -> dict:
        s = self.stack
        return {
            "stack": s.spec.name,
            "environment": s.environment,
            "hardware": {
                "gpu": s.gpu.id, "gpu_memory_gib": s.gpu.cuda_total_gib, "gpus_per_node": s.gpus_per_node,
                "nodes": s.nodes, "provider": s.provider, "region": s.region,
                "gpus_used": self.gpus_needed, "gpus_total": s.gpus_per_node * s.nodes,
            },
            "instance_type": self.instance.name if self.instance else None,
            "usd_per_hour": None if self.usd_per_hour is None else round(self.usd_per_hour, 4),
            "usd_per_month": None if self.usd_per_hour is None else round(self.usd_per_hour * HOURS_PER_MONTH, 2),
            "price_verified": self.instance.price_verified if self.instance else None,
            "model_cache": None if self.storage is None else {
                "storage": self.storage.kind, "read_mib_per_s": _r(self.storage.read_bytes_per_s / 2**20),
                "assumed": self.storage.assumed, "what": self.storage.text},
            "nodes": [{"name": f"node-{n.node}", "host_memory_gib_needed": _r(n.memory_bytes / GIB),
                       "host_memory_gib_usable": None if n.memory_available is None else _r(n.memory_available / GIB),
                       "kv_disk_gib": _r(n.disk_bytes / GIB)} for n in self.nodes],
            "models": [m.as_json(s.gpu) for m in self.models],
        }


# ---------------------------------------------------------------------------------------------
# settings and evaluation


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
    layer_split = rm.engine.name in ("llama.cpp", "ollama")  # layers over GPUs, no head split
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
    if not getattr(rm.engine, "offloads_layers", False) or ev.fits or ev.kv_bytes_per_token == 0:
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
    if rm.engine.name in ("llama.cpp", "ollama"):
        valid = sizes
    else:
        valid = [n for n in sizes if memory.tp_valid(rm.info, n)]
    out = [(tp, 1) for tp in valid]
    if valid and stack.nodes > 1 and rm.engine.name in ("vllm", "sglang", "tensorrt-llm"):
        out += [(valid[-1], pp) for pp in range(2, stack.nodes + 1)]
    return out


# ---------------------------------------------------------------------------------------------
# the whole plan


def plan(stack: ResolvedStack, catalog: Catalog) -> tuple[Plan, list[Diagnostic]]:
    result = Plan(stack)
    diags: list[Diagnostic] = []
    for rm in stack.models:
        mp, model_diags = plan_model(rm, stack, catalog)
        diags += model_diags
        if mp is not None:
            result.models.append(mp)
    if not any(d.is_error for d in diags):
        diags += share_gpus(result)
    result.gpus_needed = round(sum(mp.gpus_used for mp in result.models))
    if not any(d.is_error for d in diags):
        diags += _check_packing(result)
    for mp in result.models:
        mp.kv_tiers = host.kv_tiers(stack, mp.model)
        mp.host_memory_bytes = host.replica_memory(mp, mp.kv_tiers)
    placement = None
    if not any(d.is_error for d in diags):
        from .placement import place_plan
        placement = place_plan(result)
    need = max((n.memory_bytes for n in host.node_needs(result, placement, None)), default=0) if placement else 0
    result.instance, cost_diags = _choose_instance(stack, catalog, need)
    diags += cost_diags
    if placement is not None:
        ram = int(result.instance.ram_gib * GIB) if result.instance else stack.memory_per_node
        result.nodes = host.node_needs(result, placement, ram)
        diags += _check_host_memory(result, placement, ram)
    start_up(result, placement)
    if result.instance and result.instance.price_usd_per_hour is not None:
        price_per_gpu = result.instance.price_usd_per_hour / result.instance.gpu_count
        for mp in result.models:
            mp.instance = result.instance
            mp.usd_per_hour = price_per_gpu * mp.gpus_used
    elif result.instance:
        for mp in result.models:
            mp.instance = result.instance
    return result, diags


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
        diags.append(_does_not_fit(rm, stack, s, ev, explicit is None, catalog))
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
    from .spec import Terraform

    root = (stack.spec.terraform or Terraform()).root_volume_gib
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
    layer_split = rm.engine.name in ("llama.cpp", "ollama")
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


# ---------------------------------------------------------------------------------------------
# diagnostics with re-planned help


def _does_not_fit(rm: ResolvedModel, stack: ResolvedStack, s: Settings, ev: Evaluation, auto: bool,
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
    online = "fp8" in compat.ONLINE_QUANTIZATION.get(rm.engine.name, ()) and s.quantization == "none" \
        and compat.check_quantization(rm.engine.name, rm.version, "fp8", gpu) is None
    kv_ok = s.kv_cache_dtype != "fp8" and rm.engine.name not in ("llama.cpp", "ollama")
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
        if compat.check_quantization(rm.engine.name, rm.version, s.quantization, other) is not None:
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


# ---------------------------------------------------------------------------------------------
# compatibility (SC5xx)


def compatibility(rm: ResolvedModel, gpu: GpuInfo, where, tiering=None) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    m, i, e = rm.spec, rm.index, rm.engine
    support = compat.ENGINE_SUPPORT[e.name]
    if gpu.vendor not in support.vendors:
        names = ", ".join(n for n, s in compat.ENGINE_SUPPORT.items() if gpu.vendor in s.vendors)
        diags.append(Diagnostic.error(
            "SC505", f"{e.title} does not run on {gpu.name} ({gpu.vendor})", where("models", i, "engine"),
            label=f"{e.title} here", help=f"engines for this GPU: {names}"))
        return diags
    if m.task not in support.tasks:
        names = ", ".join(f"`{n}`" for n, s in compat.ENGINE_SUPPORT.items() if m.task in s.tasks)
        diags.append(Diagnostic.error(
            "SC504", f"{e.title} does not serve `task: {m.task}`", where("models", i, "task"),
            label=f"{m.task} here", help=f"engines that do: {names}"))
    if m.task == "generate" and rm.info.task == "embed":
        diags.append(Diagnostic.error(
            "SC504", f"`{rm.info.hf_repo}` is an embedding model; it cannot `generate`", where("models", i, "model"),
            label="an encoder", help="set `task: embed`"))
    rule = compat.check_quantization(e.name, rm.version, rm.quantization, gpu)
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
    if m.kv_cache_dtype == "fp8" and e.name in ("llama.cpp", "ollama"):
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
    online = compat.ONLINE_QUANTIZATION.get(rm.engine.name, ())
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
    from .lower import engine_config  # the flags stackc sets depend on the lowered config

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


# ---------------------------------------------------------------------------------------------
# the stack as a whole


def _check_packing(p: Plan) -> list[Diagnostic]:
    from .placement import demands_of, place_plan

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
                or mp.model.engine.name not in ("vllm", "sglang")):
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


def _choose_instance(stack: ResolvedStack, catalog: Catalog, memory_needed: int = 0) -> tuple[Optional[InstanceInfo], list[Diagnostic]]:
    """The cheapest instance type with the node's GPUs and enough RAM for what runs on it
    (the largest when none has enough: SC412 then says so)."""
    if stack.provider == "on-prem":
        return None, []
    where = stack.where
    options = catalog.instances_for(stack.provider, stack.gpu.id)
    exact = [o for o in options if o.gpu_count == stack.gpus_per_node]
    if not exact:
        counts = sorted({o.gpu_count for o in options})
        return None, [Diagnostic.error(
            "SC313", f"no {stack.provider} instance type has {stack.gpus_per_node} x {stack.gpu.id}",
            where("hardware", "gpus_per_node") if stack.spec.hardware.gpus_per_node else where("hardware", key=True),
            label="no such instance shape",
            help=(f"{stack.provider} offers {stack.gpu.id} in sizes of {', '.join(map(str, counts))} GPUs: set "
                  f"`gpus_per_node` to one of them") if counts else
            f"the catalog has no {stack.gpu.id} on {stack.provider}; add your own with `STACKC_CATALOG`")]
    roomy = [o for o in exact if host.usable(int(o.ram_gib * GIB)) >= memory_needed]
    if not roomy:
        return max(exact, key=lambda o: (o.ram_gib, o.name)), []
    priced = [o for o in roomy if o.price_usd_per_hour is not None]
    chosen = min(priced, key=lambda o: (o.price_usd_per_hour, o.name)) if priced else sorted(roomy, key=lambda o: o.name)[0]
    return chosen, []


def _check_host_memory(p: Plan, placement: dict, ram: Optional[int]) -> list[Diagnostic]:
    """SC412: a node without the RAM for its replicas' CPU tiers, offloaded layers and engine
    processes. The help offers the largest CPU tier that fits, re-planned."""

    def fits(size: int) -> bool:
        return all(n.memory_available is None or n.memory_bytes <= n.memory_available
                   for n in host.node_needs(p, placement, ram, cpu_size=size))

    stack, where = p.stack, p.stack.where
    tiering = stack.spec.tiering
    cpu_index = next((j for j, t in enumerate(tiering.kv_cache) if t.tier == "cpu"), None) if tiering else None
    out = []
    for n in p.nodes:
        if n.memory_available is None or n.memory_bytes <= n.memory_available:
            continue
        where_ram = (f"`{p.instance.name}` has {p.instance.ram_gib:.0f} GiB" if p.instance
                     else f"`memory_per_node` is {host.gib(stack.memory_per_node or 0)}")
        message = (f"node-{n.node} needs {host.gib(n.memory_bytes)} of host memory for its engines and KV-cache tiers; "
                   f"{where_ram}, {host.gib(n.memory_available)} after {host.SYSTEM_RESERVE:.0%} for the system")
        excess = n.memory_bytes - n.memory_available
        size = tiering.kv_cache[cpu_index].size if cpu_index is not None else 0  # type: ignore[union-attr]
        cpu_total = n.cpu_tiers * size  # the CPU tiers of the replicas on this node
        help_text = f"the engines alone need {host.gib(n.memory_bytes - cpu_total)}: run fewer replicas on this node"
        if cpu_index is not None and n.cpu_tiers:
            # the linear estimate, then down until the re-plan holds (engines round pinned memory)
            fit = int((size - excess / n.cpu_tiers) // GIB)
            while fit >= 1 and not fits(fit * GIB):
                fit -= 1
            if fit >= 1:
                help_text = f"`size: {fit}GiB` for the cpu tier fits"
            elif excess <= cpu_total:
                help_text = "remove the cpu tier"
        if p.instance:
            help_text += " (no instance type with these GPUs and more RAM is in the catalog)"
        if cpu_index is not None and n.cpu_tiers:
            span = where("tiering", "kv_cache", cpu_index, "size")
        elif stack.spec.hardware.memory_per_node is not None:
            span = where("hardware", "memory_per_node")
        else:
            span = where("hardware", "gpu")
        out.append(Diagnostic.error("SC412", message, span, label="more than the node's RAM", help=help_text))
    return out
