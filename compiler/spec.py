"""The stack spec, v1, as pydantic models: the one source of truth for the schema and its docs.

`StackFile` is what a user writes (with `defaults:` and `environments:`); `Stack` is one
deployable stack after an environment has been merged and defaults filled in. The JSON Schema
in `schemas/stack.schema.json` is generated from `StackFile`, so every field's `description`
is what editors show.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from .engines import NAMES as ENGINE_NAMES
from .units import SIZE_PATTERN, parse_size

# ---------------------------------------------------------------------------------------------
# value types with their own error messages (translated to diagnostics in check.py)

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SECRET_NAME = r"^[A-Z][A-Z0-9_]*$"
# Identifiers that end up in argv, configs and unit files: no whitespace, quotes or shell syntax.
SAFE_REF = r"^[A-Za-z0-9._~+=@:/-]+$"
_dns = re.compile(DNS_LABEL)
_safe = re.compile(SAFE_REF)


def _label(max_len: int, what: str):
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("stackc_type", "expected text, found {found}", {"found": _kind(value)})
        if len(value) > max_len or not _dns.match(value):
            raise PydanticCustomError(
                "stackc_dns_label",
                "`{value}` is not a valid {what}: use lowercase letters, digits and `-`, start with a "
                "letter, end with a letter or digit, at most {max} characters",
                {"value": value, "what": what, "max": max_len},
            )
        return value

    return Annotated[
        str,
        BeforeValidator(check),
        WithJsonSchema({"type": "string", "pattern": DNS_LABEL, "maxLength": max_len}),
    ]


def _safe_text(what: str, max_len: int = 300):
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("stackc_type", "expected text, found {found}", {"found": _kind(value)})
        if not value or len(value) > max_len or not _safe.match(value):
            raise PydanticCustomError(
                "stackc_unsafe_text",
                "`{value}` is not a valid {what}: only letters, digits and `._~+=@:/-` are allowed",
                {"value": value[:80], "what": what},
            )
        return value

    return Annotated[
        str, BeforeValidator(check), WithJsonSchema({"type": "string", "pattern": SAFE_REF, "maxLength": max_len})
    ]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"the number `{value}`"
    if isinstance(value, str):
        return f"the text `{value[:60]}`"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise PydanticCustomError("stackc_size", "expected a size like `64GiB`, found {found}", {"found": _kind(value)})
    try:
        return parse_size(value)
    except ValueError:
        raise PydanticCustomError(
            "stackc_size", "`{value}` is not a size: write a number and a unit, like `64GiB` or `500GB`",
            {"value": value},
        ) from None


Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema({"type": "string", "pattern": SIZE_PATTERN, "examples": ["64GiB", "500GB"]}),
]


def _rate(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str) or not value.strip().endswith("/s"):
        raise PydanticCustomError("stackc_rate", "expected a rate like `500MB/s` or `2GiB/s`, found {found}",
                                  {"found": _kind(value)})
    try:
        return parse_size(value.strip()[:-2])
    except ValueError:
        raise PydanticCustomError(
            "stackc_rate", "`{value}` is not a rate: write a size per second, like `500MB/s` or `2GiB/s`",
            {"value": value},
        ) from None


Rate = Annotated[
    int,
    BeforeValidator(_rate),
    WithJsonSchema({"type": "string", "pattern": SIZE_PATTERN[:-1] + "/s$", "examples": ["500MB/s", "2GiB/s"]}),
]

StackName = _label(30, "stack name")
ModelName = _label(20, "model name")
EnvName = _label(30, "environment name")
OverflowName = _label(30, "overflow name")
ServedName = _safe_text("served model name", 200)
ModelRef = _safe_text("model reference", 300)
ImageRef = _safe_text("image reference", 300)
Revision = _safe_text("revision", 100)

SecretName = Annotated[str, Field(pattern=SECRET_NAME, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, str_strip_whitespace=False, defer_build=True)


class _Deferred(_Strict):
    """A model whose validator pydantic builds on first use, not at import: the overlay models
    (`defaults:`, `environments:`), which a spec without those keys never needs."""

    model_config = ConfigDict(defer_build=True)


class SecretRef(_Strict):
    """A reference to a declared secret; the value is never in the spec or in any output."""

    secret: SecretName = Field(description="The name of a secret declared under `secrets:`.")


def _secret_ref(value: Any) -> Any:
    if isinstance(value, str):
        raise PydanticCustomError(
            "stackc_secret_literal",
            "a secret value is written inline; secrets must be references like `{secret: NAME}`",
        )
    return value


SecretField = Annotated[SecretRef, BeforeValidator(_secret_ref)]


# ---------------------------------------------------------------------------------------------
# hardware

Provider = Literal["on-prem", "aws", "gcp", "azure"]
Tier = Literal["workstation", "single-node-prod", "multi-node"]


class Hardware(_Strict):
    """Where the stack runs: one GPU model, a number of GPUs per node and a number of nodes."""

    tier: Optional[Tier] = Field(
        None,
        description="A preset that fills the hardware fields left unset: `workstation` (1 x rtx-4090), "
        "`single-node-prod` (8 x h100-sxm, 1 node) or `multi-node` (8 x h100-sxm, 2 nodes).",
    )
    gpu: Optional[str] = Field(None, description="A GPU id from the catalog (`stackc catalog gpus`), e.g. `h100-sxm`.")
    gpus_per_node: Optional[int] = Field(None, ge=1, le=64, description="GPUs in each node.")
    nodes: Optional[int] = Field(None, ge=1, le=256, description="Number of nodes; default 1.")
    provider: Optional[Provider] = Field(None, description="Where the nodes are: `on-prem` (default), `aws`, `gcp` or `azure`.")
    region: Optional[str] = Field(None, description="The cloud region; required for a cloud provider.")
    spot: Optional[bool] = Field(None, description="Use spot or preemptible instances (cloud providers); default false.")
    memory_per_node: Optional[Size] = Field(
        None, description="Host RAM of each node, e.g. `512GiB` (on-prem; a cloud instance type's RAM comes from the "
        "catalog). With it, the planner checks that KV-cache CPU tiers and the engines fit in host memory.",
    )
    disk_read: Optional[Rate] = Field(
        None, gt=0, description="How fast the model cache's disk reads, e.g. `2GiB/s` for local NVMe: the start-up "
        "budgets (health-check grace, TimeoutStartSec) allow for reading the weights at this rate. Default: 200 MiB/s "
        "on your own servers; on a cloud, the planned instance's local NVMe or the provisioned disk's published rate.",
    )


# ---------------------------------------------------------------------------------------------
# models

Engine = Literal[ENGINE_NAMES]  # the engine registry's names
Task = Literal["generate", "embed", "rerank"]
Quantization = Literal[
    "none", "fp8", "awq", "gptq", "int8-w8a8", "bnb-nf4", "mxfp4", "nvfp4",
    "gguf-q4_k_m", "gguf-q5_k_m", "gguf-q8_0",
]
KvCacheDtype = Literal["auto", "fp8"]
Dtype = Literal["auto", "bfloat16", "float16", "float32"]
AutoscaleMetric = Literal["queue_depth", "kv_cache_usage", "requests_per_second"]


def _gpus(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise PydanticCustomError(
        "stackc_gpus", "expected `auto` or a number of GPUs, found {found}", {"found": _kind(value)}
    )


Gpus = Annotated[  # one member per kind of value, so `gpus: 0` is one error (a count out of range), not two
    Union[Annotated[Literal["auto"], Tag("auto")], Annotated[int, Field(ge=1, le=64), Tag("count")]],
    Discriminator(lambda v: "auto" if isinstance(v, str) else "count"),
    BeforeValidator(_gpus),
]


class ReplicaRange(_Strict):
    """A replica range for targets that autoscale (helm)."""

    min: int = Field(ge=0, le=1000, description="Fewest replicas.")
    max: int = Field(ge=1, le=1000, description="Most replicas.")


def _replicas(value: Any) -> Any:
    if isinstance(value, dict) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise PydanticCustomError(
        "stackc_replicas", "expected a number of replicas or `{{min: N, max: M}}`, found {found}",
        {"found": _kind(value)},
    )


# A fixed count is at least 1: a model with no replica is one the stack would route to and never serve
# (`enabled: false` leaves a model out; a range's `min: 0` is scaling to zero, SC611 on helm).
Replicas = Annotated[
    Union[Annotated[int, Field(ge=1, le=1000), Tag("fixed")], Annotated[ReplicaRange, Tag("range")]],
    Discriminator(lambda v: "range" if isinstance(v, dict) else "fixed"),
    BeforeValidator(_replicas),
]


class Parallel(_Strict):
    """An explicit split of one replica over GPUs, instead of `gpus`."""

    tensor: int = Field(1, ge=1, le=64, description="Tensor-parallel size: GPUs one layer is split over (within a node).")
    pipeline: int = Field(1, ge=1, le=64, description="Pipeline-parallel size: groups of layers, one per stage (may span nodes).")
    expert: bool = Field(False, description="Spread MoE experts over the tensor-parallel GPUs (expert parallel).")


class Autoscale(_Strict):
    """The metric a replica range scales on (helm target)."""

    metric: AutoscaleMetric = Field(description="`queue_depth` (requests waiting), `kv_cache_usage` (0-1) or `requests_per_second`.")
    target: float = Field(gt=0, description="The per-replica value the autoscaler holds the metric at.")


class Speculative(_Strict):
    """Speculative decoding with a small draft model."""

    draft: ModelRef = Field(description="The draft model: a catalog id or Hugging Face repo id.")
    tokens: int = Field(4, ge=1, le=16, description="Tokens the draft proposes per step.")


class Adapter(_Strict):
    """A LoRA adapter served beside the base model under its own name."""

    name: ServedName = Field(description="The model name clients send to use this adapter.")
    source: ModelRef = Field(description="Where the adapter comes from: `hf://org/repo`, a Hugging Face repo id or a local path.")


class Architecture(_Strict):
    """The architecture of a model the catalog does not know, when no `config.json` is given."""

    layers: int = Field(ge=1, le=10_000, description="Transformer layers (`num_hidden_layers`).")
    hidden_size: int = Field(ge=1, le=1_000_000, description="Hidden size.")
    intermediate_size: Optional[int] = Field(None, ge=1, le=10_000_000, description="MLP intermediate size (per expert for MoE).")
    heads: int = Field(ge=1, le=10_000, description="Attention heads (`num_attention_heads`).")
    kv_heads: Optional[int] = Field(None, ge=1, le=10_000, description="KV heads (`num_key_value_heads`); default: `heads`.")
    head_dim: Optional[int] = Field(None, ge=1, le=100_000, description="Head dimension; default: `hidden_size / heads`.")
    vocab_size: int = Field(ge=1, le=10_000_000, description="Vocabulary size.")
    params: float = Field(gt=0, le=100_000, allow_inf_nan=False, description="Total parameters, in billions.")
    max_context: int = Field(ge=1, le=100_000_000, description="The model's maximum context (`max_position_embeddings`).")
    experts: Optional[int] = Field(None, ge=1, le=100_000, description="Routed experts per MoE layer, for MoE models.")
    tie_embeddings: bool = Field(False, description="The LM head shares the embedding matrix.")


EngineArgValue = Union[str, int, float, bool, None, list, dict]


class Model(_Strict):
    """One model the stack serves, under one OpenAI model name."""

    name: ModelName = Field(description="DNS-1035 label, at most 20 characters; the OpenAI `model` name clients send.")
    enabled: bool = Field(True, description="`false` removes the model (useful in environments).")
    served_names: list[ServedName] = Field(default_factory=list, description="Extra model names clients may send.")
    model: ModelRef = Field(
        description="WHAT model: a catalog id, a Hugging Face repo id, or `./dir` holding a `config.json`."
    )
    weights: Optional[ModelRef] = Field(
        None,
        description="WHERE the loaded artifact comes from, when it differs from `model`: a quantized repo, "
        "`hf.co/org/repo-GGUF:Q4_K_M`, an Ollama tag, `s3://bucket/path` or a local path.",
    )
    revision: Optional[Revision] = Field(None, description="Pin of the weights: a commit hash, not a branch.")
    architecture: Optional[Architecture] = Field(
        None, description="The architecture, for a model neither the catalog nor a `config.json` describes."
    )
    task: Task = Field("generate", description="`generate` (default), `embed` or `rerank`.")
    engine: Engine = Field("vllm", description="The inference engine: vllm (default), sglang, llama.cpp, ollama, tgi or tensorrt-llm.")
    image: Optional[ImageRef] = Field(
        None, description="The engine image; the engine version is read from its tag. Default: the pinned release."
    )
    quantization: Optional[Quantization] = Field(
        None,
        description="The format the engine runs the weights in; default: the format of the loaded artifact "
        "(a GGUF tag in `weights`, else the model's native dtype).",
    )
    kv_cache_dtype: KvCacheDtype = Field("auto", description="`auto` (the model dtype) or `fp8`.")
    max_context: Optional[int] = Field(
        None, ge=1, le=10_485_760, description="Tokens per sequence (vLLM `max_model_len`); default: the model's maximum."
    )
    concurrency: int = Field(
        1, ge=1, le=100_000, description="Sequences at `max_context` that one replica's KV cache must hold at once."
    )
    gpu_memory_utilization: Optional[float] = Field(
        None, gt=0, le=1, description="Share of each GPU the engine may take; default: the pinned engine's own default."
    )
    dtype: Dtype = Field("auto", description="The compute dtype of unquantized weights.")
    max_num_seqs: Optional[int] = Field(None, ge=1, le=65_536, description="Sequences the engine runs at once; default: the engine's own.")
    max_batched_tokens: Optional[int] = Field(
        None, ge=1, le=10_485_760, description="Tokens per scheduler step (prefill chunk); default: the engine's own."
    )
    enforce_eager: Optional[bool] = Field(None, description="No CUDA graphs: less memory, slower decode.")
    gpus: Gpus = Field("auto", description="GPUs per replica: `auto` (the fewest that fit) or N for tensor parallel N.")
    parallel: Optional[Parallel] = Field(None, description="An explicit tensor/pipeline split instead of `gpus`.")
    replicas: Replicas = Field(1, description="A fixed number of replicas, or `{min, max}` where the target can autoscale.")
    autoscale: Optional[Autoscale] = Field(None, description="The metric and target a replica range scales on.")
    max_in_flight: Optional[int] = Field(
        None, ge=1, le=1_000_000,
        description="Requests the gateway lets through to this model at once before `saturated` overflow applies.",
    )
    prefix_caching: Optional[bool] = Field(None, description="Reuse the KV cache of shared prefixes; default: on where the engine supports it.")
    tokens_per_day: Optional[int] = Field(
        None, ge=1, le=10**15,
        description="Expected tokens per day (prompt and generated) over all replicas: gives the cost per million tokens.",
    )
    hosted_usd_per_million_tokens: Optional[float] = Field(
        None, gt=0, le=10_000, allow_inf_nan=False,
        description="A hosted API's price per million tokens, to compare with: gives the break-even traffic.",
    )
    speculative: Optional[Speculative] = Field(None, description="Speculative decoding with a draft model.")
    adapters: list[Adapter] = Field(default_factory=list, description="LoRA adapters served beside the base model.")
    engine_args: dict[str, EngineArgValue] = Field(
        default_factory=dict,
        description="Escape hatch: extra engine flags. A flag stackc itself sets is an error.",
    )


# ---------------------------------------------------------------------------------------------
# tiering, gateway, observability, secrets


class CpuTier(_Strict):
    """Host memory below GPU memory for the KV cache."""

    tier: Literal["cpu"] = Field(description="`cpu`: host RAM.")
    size: Size = Field(gt=0, description="Per replica, e.g. `64GiB`.")


class DiskTier(_Strict):
    """Local disk below host memory for the KV cache; each replica gets its own subdirectory."""

    tier: Literal["disk"] = Field(description="`disk`: a local directory.")
    size: Size = Field(gt=0, description="Per replica, e.g. `500GiB`.")
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$", max_length=200)] = Field(
        description="An absolute directory on the host."
    )


class RedisTier(_Strict):
    """An existing Redis shared by all replicas; stackc does not deploy it."""

    tier: Literal["redis"] = Field(description="`redis`: a shared Redis.")
    url: SecretField = Field(description="The Redis URL, as a secret reference (it usually carries a password).")


KvTier = Annotated[Union[CpuTier, DiskTier, RedisTier], Field(discriminator="tier")]
Routing = Literal["round-robin", "least-load", "session", "prefix-aware"]
OverflowWhen = Literal["saturated", "error", "context_too_long"]


class Overflow(_Strict):
    """A hosted OpenAI-compatible API that takes requests local capacity cannot."""

    name: OverflowName = Field(description="A name for this destination.")
    base_url: Annotated[str, Field(pattern=r"^https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+$", max_length=300)] = Field(
        description="The API's base URL, e.g. `https://api.example.com/v1`."
    )
    model: ModelRef = Field(description="The model name at the hosted API; clients keep sending the local name.")
    api_key: Optional[SecretField] = Field(None, description="The API key, as a secret reference.")
    when: list[OverflowWhen] = Field(
        default_factory=lambda: ["saturated", "error"],
        min_length=1,
        description="`saturated` (max_in_flight reached), `error` (5xx, timeout), `context_too_long`.",
    )


class Tiering(_Strict):
    """Memory below the GPU for the KV cache, request routing, and overflow to hosted APIs."""

    kv_cache: list[KvTier] = Field(default_factory=list, description="KV-cache tiers below GPU memory, hot to cold; sizes are per replica.")
    routing: Routing = Field("round-robin", description="How requests are spread over a model's replicas.")
    session_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$", max_length=100)] = Field(
        "x-session-id", description="The header `session` routing hashes on."
    )
    overflow: list[Overflow] = Field(default_factory=list, description="Ordered: where requests go when local capacity is saturated or failing.")


class Gateway(_Strict):
    """The one OpenAI-compatible endpoint clients use."""

    port: int = Field(8080, ge=1, le=65535, description="The port clients connect to.")
    api_key: Optional[SecretField] = Field(None, description="The key clients must send, as a secret reference.")
    ui: Literal["none", "open-webui"] = Field("none", description="An optional chat UI.")
    ui_port: int = Field(3000, ge=1, le=65535, description="The port of the chat UI.")


class Observability(_Strict):
    """Metrics, dashboards and GPU telemetry."""

    metrics: bool = Field(False, description="Prometheus scraping every engine and the gateway.")
    dashboards: bool = Field(False, description="Grafana with provisioned dashboards (implies `metrics`).")
    gpu_metrics: bool = Field(False, description="The NVIDIA DCGM exporter (implies `metrics`).")


K8sName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
LabelKey = Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
                                max_length=253)]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", max_length=63)]


class Kubernetes(_Strict):
    """Settings only the helm target reads: how the cluster names GPUs, stores models, scrapes metrics."""

    namespace: Optional[K8sName] = Field(None, description="The namespace the README's `helm install` uses; default: the stack's name.")
    gpu_label: LabelKey = Field(
        "nvidia.com/gpu.product",
        description="The node label that names the GPU model: `nvidia.com/gpu.product` (GPU feature discovery, the "
        "NVIDIA GPU Operator), `cloud.google.com/gke-accelerator` on GKE; its value comes from the catalog.")
    gpu_label_value: Optional[LabelValue] = Field(
        None, description="The label's value for this GPU, when the catalog has none for `gpu_label`.")
    runtime_class: Optional[K8sName] = Field(
        "nvidia", description="The RuntimeClass of GPU pods (the GPU Operator's `nvidia`); `null` where the cluster has none (GKE).")
    storage_class: Optional[K8sName] = Field(None, description="The StorageClass of the model-cache claims; default: the cluster's default.")
    model_cache_claim: Optional[K8sName] = Field(
        None, description="An existing PersistentVolumeClaim every model reads its weights from, instead of one claim per model.")
    storage_read: Optional[Rate] = Field(
        None, gt=0, description="How fast the model-cache claims read (network storage in most clusters), e.g. "
        "`500MB/s`: the startup probe allows for reading the weights at this rate. Default 125 MiB/s (gp3's, "
        "and about a balanced persistent disk's).",
    )
    model_cache_access: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        "ReadWriteOnce", description="The access mode of the model-cache claims (the existing one's, or the ones stackc asks "
        "for); a claim that replicas on several nodes share must be `ReadWriteMany`.")
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[A-Za-z0-9._~:/%-]+$", max_length=300)] = Field(
        "http://prometheus-operated.monitoring.svc:9090", description="The Prometheus KEDA queries for autoscaling.")
    service_monitor_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Labels your Prometheus selects ServiceMonitors by, e.g. `{release: kube-prometheus-stack}`.")
    secret_template: bool = Field(
        False, description="Also emit the Secret `<stack>-secrets` with every declared key and empty values, to fill in after install.")


HostPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/+-]*$", max_length=200)]
IPv4 = Annotated[str, Field(pattern=r"^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$")]


class Systemd(_Strict):
    """Settings only the systemd target reads: where engines are installed, which systemd the hosts
    run, and the nodes' private addresses."""

    systemd_version: Annotated[int, Field(ge=252, le=999)] = Field(
        252, description="The oldest systemd on the hosts; no newer directive is emitted (252: Debian 12).")
    user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,30}$")] = Field(
        "stackc", description="The system user every service runs as; it owns the model cache.")
    vllm_venv: HostPath = Field("/opt/stackc/vllm", description="The virtual environment vLLM is installed in.")
    sglang_venv: HostPath = Field("/opt/stackc/sglang", description="The virtual environment SGLang is installed in.")
    gateway_venv: HostPath = Field(
        "/opt/stackc/litellm", description="The virtual environment of the gateway (`litellm[proxy]`, the release the images pin).")
    llama_server: HostPath = Field("/usr/local/bin/llama-server", description="The `llama-server` binary.")
    ollama: HostPath = Field("/usr/local/bin/ollama", description="The `ollama` binary.")
    container_runtime: Literal["podman", "docker"] = Field(
        "podman", description="Runs what does not ship natively (TGI, TensorRT-LLM, download jobs, Grafana, the DCGM exporter, Open WebUI).")
    node_addresses: list[IPv4] = Field(
        default_factory=list, description="The nodes' private addresses, node-0 first: required for more than one node.")


class Terraform(_Strict):
    """Settings only the terraform target reads."""

    subnet_cidr: Annotated[str, Field(pattern=r"^10\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.0/(1[6-9]|2[0-4])$")] = Field(
        "10.42.0.0/24", description="The nodes' subnet (created by the module, or the existing one its variables name); "
        "node i gets the address .10+i in it.")
    root_volume_gib: Annotated[int, Field(ge=50, le=16384)] = Field(
        100, description="Disk for the system, engines and their caches, before the model cache and the KV-cache disk tier are added.")
    boot: Literal["systemd", "compose"] = Field(
        "systemd", description="What each machine runs: the systemd target's units (engines installed natively), or "
        "the compose target's stack (one machine only; engines in their pinned images).")


class K8sSecret(_Strict):
    """Where a secret lives in Kubernetes, when not in `<stack>-secrets`."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)] = Field(description="The Secret's name.")
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = Field(description="The key in the Secret.")


class SecretDecl(_Strict):
    """A declared secret: the name is the environment variable its consumers read."""

    description: Optional[Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]] = Field(
        None, max_length=500, description="What the secret is for (one line).")
    k8s: Optional[K8sSecret] = Field(None, description="Kubernetes Secret name and key, if not `<stack>-secrets`/NAME.")


# ---------------------------------------------------------------------------------------------
# the document


MAX_MODELS = 16_384  # models in one stack (one environment): see bench/scale.py and docs/planner.md


class Stack(_Strict):
    """One deployable stack: the base document, or an environment merged onto it."""

    stack: Literal["v1"] = Field(description="Format version; `v1`.")
    name: StackName = Field(description="DNS-1035 label, at most 30 characters.")
    hardware: Hardware = Field(description="The GPUs the stack runs on.")
    models: list[Model] = Field(
        min_length=1, max_length=MAX_MODELS,
        description=f"The models the stack serves; at most {MAX_MODELS:,}, as many as 256 nodes of 64 GPUs hold at "
        "one GPU each.")
    tiering: Optional[Tiering] = Field(None, description="KV-cache tiers, routing and overflow.")
    gateway: Optional[Gateway] = Field(None, description="The OpenAI-compatible gateway; default port 8080, no key, no UI.")
    observability: Optional[Observability] = Field(None, description="Metrics, dashboards and GPU metrics.")
    kubernetes: Optional[Kubernetes] = Field(None, description="Cluster settings for the helm target.")
    systemd: Optional[Systemd] = Field(None, description="Host settings for the systemd target.")
    terraform: Optional[Terraform] = Field(None, description="Cloud settings for the terraform target.")
    secrets: dict[SecretName, Optional[SecretDecl]] = Field(
        default_factory=dict, description="Declared secret names; values never appear in a spec or in any output."
    )


# Partial models for `defaults:` and `environments:` are generated, so they never drift from
# the full ones: every field optional, nested mappings partial too (they merge key by key).
_partials: dict[type, type] = {}


def _partial(cls: type[BaseModel], *, keep_required: tuple[str, ...] = (), drop: tuple[str, ...] = (),
             name: str | None = None, extra: dict | None = None) -> type[BaseModel]:
    key = (cls, keep_required, drop, name)
    if key in _partials:
        return _partials[key]
    fields: dict[str, Any] = {}
    for field_name, info in cls.model_fields.items():
        if field_name in drop:
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in (SecretRef, ReplicaRange):
            annotation = _partial(annotation)
        elif _optional_model(annotation):
            annotation = _partial(_optional_model(annotation))
        meta = [m for m in info.metadata]
        ann = Annotated[tuple([annotation] + meta)] if meta else annotation  # type: ignore[misc]
        if field_name in keep_required:
            fields[field_name] = (ann, Field(description=info.description))
        else:
            fields[field_name] = (Optional[ann], Field(None, description=info.description))
    for field_name, spec in (extra or {}).items():
        fields[field_name] = spec
    model = create_model(name or f"{cls.__name__}Overlay", __base__=_Deferred, __doc__=cls.__doc__, **fields)
    _partials[key] = model
    return model


def _optional_model(annotation: Any) -> type[BaseModel] | None:
    args = getattr(annotation, "__args__", None)
    if not args or type(None) not in args:
        return None
    others = [a for a in args if a is not type(None)]
    if len(others) == 1 and isinstance(others[0], type) and issubclass(others[0], BaseModel):
        if others[0] in (SecretRef, Tiering, ReplicaRange):
            return None
        return others[0]
    return None


# The file-level models (`defaults:`, `environments:` and the file itself) are made the first
# time one is asked for (`spec.StackFile`): a spec without those keys is checked against
# `Stack` alone and never pays for them.
_FILE_MODELS = ("ModelDefaults", "ModelOverlay", "HardwareOverlay", "GatewayOverlay", "ObservabilityOverlay",
                "TieringOverlay", "KubernetesOverlay", "SystemdOverlay", "TerraformOverlay", "EnvironmentOverlay",
                "StackFile")


def _file_models() -> dict[str, type[BaseModel]]:
    if "StackFile" in globals():
        return {name: globals()[name] for name in _FILE_MODELS}
    ModelDefaults = _partial(Model, drop=("name", "model", "served_names", "enabled"), name="ModelDefaults")
    ModelDefaults.__doc__ = "Values for every model field a model leaves unset."
    ModelOverlay = _partial(Model, keep_required=("name",), name="ModelOverlay")
    ModelOverlay.__doc__ = (
        "An environment's change to one model, matched by `name`: fields merge into the base entry; "
        "changing `engine` or `model` replaces the entry; `enabled: false` removes it."
    )
    HardwareOverlay = _partial(Hardware, name="HardwareOverlay")
    GatewayOverlay = _partial(Gateway, name="GatewayOverlay")
    ObservabilityOverlay = _partial(Observability, name="ObservabilityOverlay")
    TieringOverlay = _partial(Tiering, name="TieringOverlay")
    KubernetesOverlay = _partial(Kubernetes, name="KubernetesOverlay")
    SystemdOverlay = _partial(Systemd, name="SystemdOverlay")
    TerraformOverlay = _partial(Terraform, name="TerraformOverlay")

    class EnvironmentOverlay(_Deferred):
        """Changes merged onto the base document for one environment (see Overlays in the docs)."""

        defaults: Optional[ModelDefaults] = Field(None, description="Changes to `defaults:`.")  # type: ignore[valid-type]
        hardware: Optional[HardwareOverlay] = Field(None, description="Changes to `hardware:`.")  # type: ignore[valid-type]
        models: Optional[list[ModelOverlay]] = Field(None, description="Changes to models, matched by `name`.")  # type: ignore[valid-type]
        tiering: Optional[TieringOverlay] = Field(None, description="Changes to `tiering:`; `null` removes it.")  # type: ignore[valid-type]
        gateway: Optional[GatewayOverlay] = Field(None, description="Changes to `gateway:`.")  # type: ignore[valid-type]
        observability: Optional[ObservabilityOverlay] = Field(None, description="Changes to `observability:`.")  # type: ignore[valid-type]
        kubernetes: Optional[KubernetesOverlay] = Field(None, description="Changes to `kubernetes:`.")  # type: ignore[valid-type]
        systemd: Optional[SystemdOverlay] = Field(None, description="Changes to `systemd:`.")  # type: ignore[valid-type]
        terraform: Optional[TerraformOverlay] = Field(None, description="Changes to `terraform:`.")  # type: ignore[valid-type]
        secrets: Optional[dict[SecretName, Optional[SecretDecl]]] = Field(None, description="More declared secrets.")

    class StackFile(Stack):
        """A stack spec file: the base stack, `defaults:` for its models, and environment overlays."""

        model_config = ConfigDict(defer_build=True)

        defaults: Optional[ModelDefaults] = Field(  # type: ignore[valid-type]
            None, description="Values for every model field a model (after overlays) leaves unset."
        )
        environments: dict[EnvName, EnvironmentOverlay] = Field(
            default_factory=dict, description="Overlays merged onto the base document, one per environment."
        )

    made = {name: value for name, value in locals().items() if name in _FILE_MODELS}
    globals().update(made)
    return made


def __getattr__(name: str):
    if name in _FILE_MODELS:
        return _file_models()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FILE_ONLY = ("defaults", "environments")  # the keys a spec file has beyond one stack


def file_model(keys) -> type[Stack]:
    """The model a spec file with these top-level keys is checked against: `Stack` when it has
    neither `defaults:` nor `environments:` (the same answer, without building the overlay
    models), else `StackFile`. Diagnostics always come from `StackFile`."""
    return _file_models()["StackFile"] if any(k in keys for k in FILE_ONLY) else Stack


def json_schema() -> dict:
    schema = _file_models()["StackFile"].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://stackc.dev/schemas/stack.schema.json"
    schema["title"] = "stackc stack spec v1"
    return schema
