"""The built-in catalog: model architectures, GPUs and cloud instances, each with its sources.

The data lives in JSON next to this file (`data/*.json`, loaded once per process: parsing it
takes about a millisecond). Users extend or override entries without forking by pointing
`STACKC_CATALOG` at their own JSON file with any of the keys `models`, `gpus`, `instances`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Attention:
    """How a model's layers keep KV: full layers, sliding-window, chunked-local, or MLA latents."""

    full_layers: int
    sliding_layers: int = 0
    window: int = 0
    chunked_layers: int = 0
    chunk: int = 0
    mla_kv_lora_rank: int = 0
    mla_rope_dim: int = 0

    @property
    def is_mla(self) -> bool:
        return self.mla_kv_lora_rank > 0


@dataclass(frozen=True)
class Moe:
    """A mixture-of-experts layout: how many experts there are, how many run per token, and where."""

    experts: int
    active: int
    shared: int
    expert_intermediate_size: int
    moe_layers: int


@dataclass(frozen=True)
class ModelInfo:
    """What the planner knows of one model: its size, attention layout and limits, from the catalog or a config."""

    id: str
    hf_repo: str
    family: str
    kind: str  # dense | moe | encoder
    task: str  # generate | embed
    params_b: float
    layers: int
    hidden_size: int
    intermediate_size: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    tie_embeddings: bool
    native_dtype: str
    attention: Attention
    moe: Optional[Moe] = None
    aliases: tuple[str, ...] = ()
    vision_params_b: float = 0.0
    active_params_b: Optional[float] = None
    license: str = ""
    sources: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    origin: str = "catalog"  # catalog | config.json | architecture
    weight_files: str = "safetensors"  # what the repo's weights are stored as: safetensors | bin

    @property
    def has_kv_cache(self) -> bool:
        return self.kind != "encoder" and self.attention.full_layers + self.attention.sliding_layers + self.attention.chunked_layers > 0


@dataclass(frozen=True)
class GpuInfo:
    """One GPU type: its memory as CUDA reports it, what it computes in (FP8, FP4), its links and labels."""

    id: str
    name: str
    vendor: str  # nvidia | amd | apple
    architecture: str
    memory_gb: float
    cuda_total_gib: float
    compute_capability: Optional[str]
    fp8: bool
    fp4: bool
    nvlink: bool
    driver_total_mib: Optional[int] = None
    cuda_total_estimated: bool = False
    bf16_tflops: Optional[float] = None
    bandwidth_gbps: Optional[float] = None
    interconnect: str = ""
    gfx_target: Optional[str] = None
    sources: tuple[str, ...] = ()
    node_labels: tuple[tuple[str, str], ...] = ()  # Kubernetes node labels that name this GPU (key, value)

    @property
    def cc(self) -> float:
        """Compute capability as a number (0 for non-CUDA devices)."""
        return float(self.compute_capability) if self.compute_capability else 0.0


@dataclass(frozen=True)
class InstanceInfo:
    """One cloud instance type: its GPUs, CPUs, memory, local NVMe disks and hourly price."""

    cloud: str
    name: str
    gpu: str
    gpu_count: int
    vcpu: int
    ram_gib: float
    price_usd_per_hour: Optional[float]
    price_region: Optional[str]
    price_verified: bool
    vm_part_usd_per_hour: Optional[float] = None
    note: str = ""
    sources: tuple[str, ...] = ()
    local_nvme_disks: int = 0  # instance store / Local SSD / NVMe disks that come with the machine
    local_nvme_bytes: int = 0  # their total size


@dataclass(frozen=True)
class Catalog:
    """The offline facts: models, GPUs and instances, each with its published source."""

    models: tuple[ModelInfo, ...]
    gpus: tuple[GpuInfo, ...]
    instances: tuple[InstanceInfo, ...]
    sources: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def _model_index(self) -> dict[str, ModelInfo]:
        return _index_models(self)

    def model(self, ref: str) -> ModelInfo | None:
        """Find a model by catalog id or Hugging Face repo id (case-insensitive)."""
        return self._model_index.get(ref.lower())

    def gpu(self, gpu_id: str) -> GpuInfo | None:
        for g in self.gpus:
            if g.id == gpu_id:
                return g
        return None

    def model_ids(self) -> list[str]:
        out = []
        for m in self.models:
            out += [m.hf_repo, m.id, *m.aliases]
        return out

    def instances_for(self, cloud: str, gpu_id: str) -> list[InstanceInfo]:
        return [i for i in self.instances if i.cloud == cloud and i.gpu == gpu_id]


_INDEXES: dict[int, dict[str, ModelInfo]] = {}


def _index_models(cat: Catalog) -> dict[str, ModelInfo]:
    key = id(cat)
    if key not in _INDEXES:
        index: dict[str, ModelInfo] = {}
        for m in cat.models:
            for name in (m.id, m.hf_repo, *m.aliases):
                index[name.lower()] = m
        _INDEXES[key] = index
    return _INDEXES[key]


def _attention(raw: dict) -> Attention:
    mla = raw.get("mla") or {}
    return Attention(
        full_layers=raw.get("full_layers", 0),
        sliding_layers=raw.get("sliding_layers", 0),
        window=raw.get("window", 0),
        chunked_layers=raw.get("chunked_layers", 0),
        chunk=raw.get("chunk", 0),
        mla_kv_lora_rank=mla.get("kv_lora_rank", 0),
        mla_rope_dim=mla.get("qk_rope_head_dim", 0),
    )


def model_from_dict(raw: dict, origin: str = "catalog") -> ModelInfo:
    moe = raw.get("moe")
    return ModelInfo(
        id=raw["id"],
        hf_repo=raw.get("hf_repo", raw["id"]),
        family=raw.get("family", ""),
        kind=raw.get("kind", "dense"),
        task=raw.get("task", "generate"),
        params_b=float(raw["params_b"]),
        layers=raw["layers"],
        hidden_size=raw["hidden_size"],
        intermediate_size=raw.get("intermediate_size") or 4 * raw["hidden_size"],
        heads=raw["heads"],
        kv_heads=raw.get("kv_heads") or raw["heads"],
        head_dim=raw.get("head_dim") or raw["hidden_size"] // raw["heads"],
        vocab_size=raw["vocab_size"],
        max_context=raw["max_context"],
        tie_embeddings=bool(raw.get("tie_embeddings", False)),
        native_dtype=raw.get("native_dtype", "bfloat16"),
        attention=_attention(raw.get("attention") or {"full_layers": raw["layers"]}),
        moe=Moe(**moe) if moe else None,
        aliases=tuple(raw.get("aliases", ())),
        vision_params_b=float(raw.get("vision_params_b") or 0.0),
        active_params_b=raw.get("active_params_b"),
        license=raw.get("license", ""),
        sources=tuple(raw.get("sources", ())),
        unverified=tuple(raw.get("unverified", ())),
        origin=origin,
        weight_files=raw.get("weight_files", "safetensors"),
    )


def _gpu(raw: dict) -> GpuInfo:
    fields = set(GpuInfo.__dataclass_fields__)
    values = {k: v for k, v in raw.items() if k in fields}
    values["sources"] = tuple(values.get("sources", ()))
    values["node_labels"] = tuple(sorted((values.get("node_labels") or {}).items()))
    return GpuInfo(**values)


def _instance(raw: dict, gpu_parts: dict) -> InstanceInfo:
    fields = set(InstanceInfo.__dataclass_fields__)
    values = {k: v for k, v in raw.items() if k in fields}
    values["sources"] = tuple(values.get("sources", ()))
    nvme = raw.get("local_nvme")
    if nvme:
        from ..units import parse_size

        values["local_nvme_disks"] = nvme["disks"]
        values["local_nvme_bytes"] = nvme["disks"] * parse_size(nvme["disk_size"])
    part = gpu_parts.get(raw.get("cloud"), {}).get(raw.get("gpu"))
    if values.get("price_usd_per_hour") is None and values.get("vm_part_usd_per_hour") is not None and part:
        # GCP bills the VM part and the attached GPUs separately: the price is their sum
        values["price_usd_per_hour"] = round(values["vm_part_usd_per_hour"] + raw["gpu_count"] * part["usd_per_hour"], 4)
        values["price_verified"] = False
        values["note"] = (f"VM part {values['vm_part_usd_per_hour']} + {raw['gpu_count']} x GPU part "
                          f"{part['usd_per_hour']} ({part['derived']})")
    return InstanceInfo(**values)


def _read(name: str) -> dict:
    with open(DATA / name, encoding="utf-8") as handle:
        return json.load(handle)


def _merge(base: list[dict], extra: list[dict], key) -> list[dict]:
    by_key = {key(e): e for e in base}
    for e in extra:
        by_key[key(e)] = e
    return list(by_key.values())


@lru_cache(maxsize=None)
def load(extra_path: str | None = None) -> Catalog:
    """The built-in catalog, extended by the user's file (`STACKC_CATALOG`) if set."""
    models, gpus, instances = _read("models.json"), _read("gpus.json"), _read("instances.json")
    raw_models, raw_gpus, raw_instances = models["models"], gpus["gpus"], instances["instances"]
    extra_path = extra_path if extra_path is not None else os.environ.get("STACKC_CATALOG")
    if extra_path:
        with open(extra_path, encoding="utf-8") as handle:
            extra: dict[str, Any] = json.load(handle)
        raw_models = _merge(raw_models, extra.get("models", []), lambda m: m["id"])
        raw_gpus = _merge(raw_gpus, extra.get("gpus", []), lambda g: g["id"])
        raw_instances = _merge(raw_instances, extra.get("instances", []), lambda i: (i["cloud"], i["name"]))
    return Catalog(
        models=tuple(model_from_dict(m) for m in raw_models),
        gpus=tuple(_gpu(g) for g in raw_gpus),
        instances=tuple(_instance(i, instances.get("gpu_parts", {})) for i in raw_instances),
        sources={**models.get("sources", {}), **gpus.get("sources", {}), **instances.get("sources", {})},
    )
