"""The stack spec, v1, as pydantic models: the one source of truth for the schema and its docs.

`Stack` is one deployable stack after an environment has been merged and defaults filled in;
`spec_file.StackFile` is what a user writes (with `defaults:` and `environments:`). The JSON
Schema in `schemas/stack.schema.json` is generated from `StackFile`, so every field's
`description` is what editors show. The value types are in `spec_values`. The sections only
one target reads (`kubernetes:`, `systemd:`, `terraform:`) belong to their targets: each is a
target's `options.SECTION`, added to `Stack` from the target registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, create_model
from pydantic_core import PydanticCustomError

from .engines import names as engine_names
from .spec_values import (HostName, HostPath, ImageRef, ModelName, ModelRef, OverflowName, Rate, Revision, SecretName, ServedName, Size,
                          StackName, _kind, _Strict)

# ---------------------------------------------------------------------------------------------
# the models


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

Engine = Literal[engine_names()]  # the engine registry's names
_ENGINES_LISTED = f"{engine_names()[0]} (default), " + ", ".join(engine_names()[1:-1]) + f" or {engine_names()[-1]}"
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
    engine: Engine = Field("vllm", description=f"The inference engine: {_ENGINES_LISTED}.")
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


class GatewayTls(_Strict):
    """TLS at the edge: a certificate and its key, named by path and never read or written by stackc."""

    cert: HostPath = Field("tls/gateway.crt", description=(
        "The certificate chain (PEM), a file on the host the operator places: a relative path is "
        "beside the generated compose.yaml."))
    key: HostPath = Field("tls/gateway.key", description=(
        "The certificate's private key (PEM), a file on the host the operator places, readable by "
        "the stack only."))
    host: Optional[HostName] = Field(None, description=(
        "The name clients connect to, which the certificate is for: on helm the Ingress's host (and "
        "the name cert-manager issues for). The edge of compose, systemd and terraform answers for "
        "whatever names the certificate holds and does not read it."))


class Gateway(_Strict):
    """The one OpenAI-compatible endpoint clients use."""

    port: int = Field(8080, ge=1, le=65535, description="The port clients connect to.")
    api_key: Optional[SecretField] = Field(None, description="The key clients must send, as a secret reference.")
    ui: Literal["none", "open-webui"] = Field("none", description="An optional chat UI.")
    ui_port: int = Field(3000, ge=1, le=65535, description="The port of the chat UI.")
    tls: Optional[GatewayTls] = Field(None, description=(
        "Terminate TLS in front of the gateway and the UI: clients connect with HTTPS on `port` and "
        "`ui_port`, and nothing answers plain HTTP there. `{}` takes the default file names."))


class Observability(_Strict):
    """Metrics, dashboards and GPU telemetry."""

    metrics: bool = Field(False, description="Prometheus scraping every engine and the gateway.")
    dashboards: bool = Field(False, description="Grafana with provisioned dashboards (implies `metrics`).")
    gpu_metrics: bool = Field(False, description="The NVIDIA DCGM exporter (implies `metrics`).")


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


class StackCore(_Strict):
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

    def section(self, key: str) -> Any:
        """A target's section as the spec gives it, or its defaults where the spec leaves it out."""
        given = getattr(self, key, None)
        if given is not None:
            return given
        from stackc.targets.registry import section

        found = section(key)
        return found.model() if found is not None else None


RESERVED = ("secrets", "defaults", "environments")  # keys of the stack and of the file beyond `StackCore`'s


def target_sections(core: type, wrap=lambda model: model) -> dict[str, Any]:
    """The fields the registered targets add to `core`, in the order of their keys: each target's
    section model (through `wrap`: the overlay builds partial ones), optional."""
    from stackc.targets.registry import sections

    fields: dict[str, Any] = {}
    for section in sections():
        if section.name in core.model_fields or section.name in RESERVED:
            raise RuntimeError(f"a target's section `{section.name}:` would replace the spec's own field of that name")
        fields[section.name] = (Optional[wrap(section.model)], Field(None, description=section.description))
    return fields


Stack = create_model(
    "Stack", __base__=StackCore, __module__=__name__, __doc__=StackCore.__doc__, **target_sections(StackCore),
    secrets=(dict[SecretName, Optional[SecretDecl]], Field(
        default_factory=dict, description="Declared secret names; values never appear in a spec or in any output.")))


FILE_ONLY = ("defaults", "environments")  # the keys a spec file has beyond one stack (spec_file.py)
