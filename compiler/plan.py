"""The capacity plan's data: what the planner decided for each model and for the stack.

Every later stage reads these (the lowering, the plan report, the host-memory and start-up
accounting); only the planner (`stackc.planner`) builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .catalog import GpuInfo, InstanceInfo
from .engines.base import GIB, Budget
from .ir_engine import KvOffload
from .resolve import ResolvedModel, ResolvedStack
from .storage import Storage

MARGIN = 0.03  # a plan within 3% of a limit is `marginal`: a warning, not a verdict
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class NodeNeeds:
    """What the replicas placed on one node need of its host memory and disk."""

    node: int
    memory_bytes: int  # host RAM the replicas placed here need
    disk_bytes: int  # disk-tier space under the tiers' paths
    memory_available: Optional[int]  # usable RAM (after the system reserve), when known
    cpu_tiers: float = 0  # replicas with a CPU tier here (a replica spanning nodes counts in part)


@dataclass(frozen=True)
class Settings:
    """The engine settings the planner chose for one model."""

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
    """One layout (tensor x pipeline parallel) of a model, and how its memory divides on each GPU."""

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
    """One model's plan: its settings, its chosen layout, replicas and start-up budget."""

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
    """The whole stack's plan: every model's, the instance, the nodes' needs, and where the cache lives."""

    stack: ResolvedStack
    models: list[ModelPlan] = field(default_factory=list)
    instance: Optional[InstanceInfo] = None
    gpus_needed: int = 0
    shared_groups: list[tuple[str, ...]] = field(default_factory=list)  # small models sharing one GPU
    nodes: list[NodeNeeds] = field(default_factory=list)  # host RAM and disk per node
    storage: Optional[Storage] = None  # where the model cache lives, and the read rate budgets assume

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
