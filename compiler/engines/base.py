"""What every engine module provides, with defaults each engine overrides only where it differs.

An engine turns a planned model (`EngineConfig`) into a pinned image, argv, environment,
health and metrics endpoints and a download step, and says how it budgets GPU memory. Flags,
defaults and metric names move between releases, so everything version-dependent is looked
up in the engine's table of `Release` rows keyed by version range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..artifacts import Artifact
from ..catalog import GpuInfo
from ..compat import Rule, Support

if TYPE_CHECKING:
    from ..ir_engine import Endpoint
    from ..ir_engine import Install
    from stackc.targets.systemd.options import Systemd
    from ..catalog import ModelInfo
    from ..memory import KvShape
from ..images import Image
from ..ir_engine import EngineConfig, EnvValue, Health, KvOffload, Metrics, Resources
from .downloads import DownloadStep, artifact_dir, default_download
from .flags import normalise_flag

Version = tuple[int, ...]
GIB = 1024**3


def parse_version(tag: str) -> Optional[Version]:
    """`v0.33.0` -> (0, 33, 0); `server-cuda-b11459` -> (11459,); `1.3.0rc29` -> (1, 3, 0)."""
    build = re.search(r"(?:^|-)b(\d{3,6})(?:$|-)", tag)
    if build:
        return (int(build.group(1)),)
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", tag)
    if not match:
        return None
    return tuple(int(x) for x in match.groups() if x is not None)


def version_text(version: Version) -> str:
    return ".".join(str(v) for v in version)


@dataclass(frozen=True)
class Release:
    """Facts that hold for one range of an engine's versions (`since` inclusive)."""

    since: Version
    gpu_memory_utilization: Optional[float] = None
    notes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Budget:
    """How one GPU's memory divides for a replica, in bytes."""

    total: float
    requested: float  # what the engine may take (total x its memory share)
    weights: float
    activation: float
    non_torch: float
    cudagraph: float
    kv: float  # what is left for the KV cache
    estimate_only: bool = False  # the engine publishes no accounting we can model closely


def python_http_probe(port: int, path: str) -> tuple[str, ...]:
    """A health check for images that ship Python but maybe not curl."""
    code = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)"
    return ("python3", "-c", code)


def curl_probe(port: int, path: str) -> tuple[str, ...]:
    return ("curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}")


class Engine:
    """Defaults for an OpenAI-compatible engine in a container; subclasses state differences."""

    name: str = ""
    title: str = ""
    port: int = 8000
    images: dict[str, Image] = {}
    releases: tuple[Release, ...] = (Release(since=(0,)),)
    # spec quantization -> the engine's own name for it (None: nothing to pass, read from the checkpoint)
    quantization_names: dict[str, Optional[str]] = {}
    # short flags and aliases -> the normalised long name
    flag_aliases: dict[str, str] = {}
    metrics_path: Optional[str] = "/metrics"
    # Prometheus names of the signals dashboards and autoscalers read (version-independent here;
    # engines whose names moved override `metric_names`)
    metrics: dict[str, str] = {}
    metric_model_label: str = "model_name"  # the label that names the served model on each metric
    health_path: str = "/health"
    # does stackc keep one replica's KV in GPU memory it can size (vLLM, SGLang) or estimate only?
    estimate_only: bool = False
    # does the engine take a share of each GPU (vLLM, SGLang, TGI, TensorRT-LLM), or offload
    # everything and size its cache from the context (llama.cpp, Ollama)?
    has_memory_share: bool = True
    # write the planned defaults (memory share, sequences, batched tokens) into the engine's
    # flags, so the engine runs exactly what was planned; engines whose own defaults depend on
    # things only known at start-up (SGLang, TGI) get only what the spec sets
    pins_defaults: bool = True
    supports_prefix_caching: bool = True
    container_model_dir: str = "/models"
    options_path: str = ""  # where the engine reads an options file, for engines that take one
    offloads_layers: bool = False  # can keep layers that do not fit in host memory (llama.cpp, Ollama)
    splits_layers: bool = False  # spreads layers over GPUs (no head split: any GPU count divides it)
    pipeline_parallel: bool = False  # runs one replica's pipeline stages across nodes
    shares_gpu: bool = False  # takes a fixed memory share, so two small models can split one GPU
    kv_fp8: bool = True  # has an fp8 KV cache (llama.cpp and Ollama: q8_0 instead)
    support: Support = Support(("nvidia",), ("generate",), False, False, True)  # vendors, tasks, features
    quantization_rules: tuple[Rule, ...] = ()  # which quantization runs on which GPU (compat.Rule)
    online_quantization: tuple[str, ...] = ()  # formats it makes from unquantized weights while loading
    runs_natively: bool = False  # on a host without an orchestrator: its own install, not its image
    pip_package: str = ""  # the PyPI requirement its venv is made from, for engines installed that way
    registry_tags: bool = False  # `model:`/`weights:` may name a tag of the engine's own registry (Ollama)
    weights_required: Optional[tuple[str, str]] = None  # (what `weights:` must name, the help) when `model:` cannot do
    loads_from_directory: bool = False  # loads the download's directory, not a repo id from the HF cache
    # the program its image runs when the service names none (the drain wrapper runs it itself)
    image_entrypoint: tuple[str, ...] = ()
    # Python in the image and the host install: the drain wrapper can run around the engine
    drainable: bool = False
    startup_overhead_s: int = 60  # engine start, compile, warm-up beyond reading the weights
    # host RAM of the engine's own processes: the API server and scheduler, and per GPU a worker
    # holding torch and the host side of its CUDA context. An estimate (resident sizes of
    # running engines vary with the model's tokenizer and the CUDA version); KV-cache CPU tiers
    # and offloaded layers come on top.
    host_base_bytes: int = 4 * GIB
    host_per_gpu_bytes: int = 4 * GIB

    def host_memory_bytes(self, gpus: int) -> int:
        return self.host_base_bytes + gpus * self.host_per_gpu_bytes

    def cpu_cores(self, gpus: int) -> int:
        """CPU cores to reserve for a replica: the API server and scheduler, and per GPU a
        worker process and its tokenizer/detokenizer threads (an estimate)."""
        return 2 + 2 * gpus

    # ---- KV-cache tiers below GPU memory

    def kv_tier_mechanism(self, version: Version, tiers: tuple[str, ...], vendor: str) -> tuple[Optional[str], str]:
        """How this engine (at this version, on this vendor's GPUs) runs these tiers, hot to
        cold: (mechanism, "") or (None, why it cannot). Engines with tiers override this."""
        return None, f"{self.title} keeps its KV cache in GPU memory only"

    def kv_tier_help(self, version: Version, tiers: tuple[str, ...], vendor: str) -> str:
        return "serve this model with `engine: vllm` or `engine: sglang`, or remove the tiers it cannot run"

    def tier_host_bytes(self, version: Version, mechanism: Optional[str], tiers: tuple["KvOffload", ...],
                        ranks: int) -> int:
        """Host RAM the tiers of one replica take (default: the CPU tier's size)."""
        return sum(t.size_bytes for t in tiers if t.tier == "cpu")

    # ---- versions and images

    def default_image(self, vendor: str) -> Optional[Image]:
        return self.images.get(vendor)

    def release(self, version: Version) -> Release:
        chosen = self.releases[0]
        for r in self.releases:
            if version >= r.since:
                chosen = r
        return chosen

    def version_label(self, version: Version) -> str:
        return version_text(version)

    # ---- planning defaults

    def default_memory_share(self, version: Version, gpu: GpuInfo, plan: "BudgetInputs") -> Optional[float]:
        """The engine's own memory share when the spec sets none (None: it takes no share)."""
        return self.release(version).gpu_memory_utilization if self.has_memory_share else None

    def default_max_num_seqs(self, version: Version, gpu: GpuInfo, task: str) -> int:
        return 256

    def default_max_batched_tokens(self, version: Version, gpu: GpuInfo, task: str) -> int:
        return 8192

    def activation(self, plan: "BudgetInputs") -> float:
        """Peak activation memory while the engine warms up (default: one forward pass over a
        full batch, plus fp32 logits for every running sequence)."""
        m = plan.model
        logits = min(plan.max_num_seqs, plan.batched_tokens) * m.vocab_size * 4
        return forward_activation_bytes(m, plan.batched_tokens, plan.tp) + logits

    def budget(self, total: float, util: float, weights: float, plan: "BudgetInputs") -> Budget:
        """Default: a fixed share of the GPU, minus weights, activations and communication buffers."""
        requested = total * util
        activation = self.activation(plan)
        non_torch = 0.5 * GIB if plan.tp > 1 else 0.25 * GIB
        kv = requested - weights - activation - non_torch
        return Budget(total, requested, weights, activation, non_torch, 0.0, kv, estimate_only=self.estimate_only)

    def capacity(self, kv_bytes: float, shape: "KvShape", plan: "BudgetInputs") -> Capacity:
        """Tokens and full-length sequences a KV cache of `kv_bytes` holds (paged, 16-token blocks)."""
        from ..memory import kv_bytes_for_request

        if shape.per_token == 0:
            return Capacity(0, None)
        tokens = int(kv_bytes // (shape.per_token * 16)) * 16
        per_request = kv_bytes_for_request(shape, plan.max_context, plan.batched_tokens, 16)
        return Capacity(tokens, kv_bytes / per_request if per_request else 0.0)

    # ---- rendering

    def model_arg(self, ec: EngineConfig) -> str:
        return ec.model

    def argv(self, ec: EngineConfig) -> list[str]:
        raise NotImplementedError

    def env(self, ec: EngineConfig) -> list[tuple[str, EnvValue]]:
        return [("HF_HOME", f"{ec.cache_dir}/hf"), ("HF_HUB_OFFLINE", "1")]

    def entrypoint(self, ec: EngineConfig) -> Optional[tuple[str, ...]]:
        return None

    def shutdown_flags(self, ec: EngineConfig) -> list[str]:
        """Flags that let requests in flight finish on SIGTERM, for `ec.shutdown_timeout_s`
        (default: none; the engine's own behaviour, bounded by the orchestrator's grace)."""
        return []

    def health(self, ec: EngineConfig) -> Health:
        return Health(self.port, self.health_path, python_http_probe(self.port, self.health_path))

    def metric_names(self, version: Version) -> dict[str, str]:
        """`running`, `waiting`, `kv_usage` (0-1), `generated_tokens` (a counter)."""
        return dict(self.metrics)

    def autoscale_query(self, metric: str, served: str, version: Version) -> Optional[str]:
        """PromQL for an autoscaling metric of one model, summed over its replicas (None: the
        engine does not export it)."""
        names = self.metric_names(version)
        selector = f'{{{self.metric_model_label}="{served}"}}'
        if metric == "queue_depth" and "waiting" in names:
            return f"sum({names['waiting']}{selector})"
        if metric == "kv_cache_usage" and "kv_usage" in names:
            return f"sum({names['kv_usage']}{selector})"
        if metric == "requests_per_second" and "requests" in names:
            return f"sum(rate({names['requests']}{selector}[1m]))"
        return None

    def metrics_endpoint(self, ec: EngineConfig) -> Optional[Metrics]:
        return Metrics(self.port, self.metrics_path) if self.metrics_path else None

    def resources(self, ec: EngineConfig) -> Resources:
        shm = 16 * GIB if ec.tensor_parallel * ec.pipeline_parallel > 1 else 2 * GIB
        return Resources(shm_bytes=shm, ipc_host=False, memlock_unlimited=False)

    def adapter_model(self, ec: EngineConfig, adapter: str) -> str:
        """The model name that selects a LoRA adapter in a request."""
        return adapter

    def served_model(self, ec: EngineConfig) -> str:
        """The model name the engine answers to, which the gateway sends upstream."""
        return ec.served_name

    def managed_flags(self, ec: EngineConfig) -> set[str]:
        """Every flag stackc may set for this engine, normalised: the flags of this config and of
        variants with every planned setting switched on, so `engine_args: {-tp: 2}` conflicts
        even where the plan needs no `--tensor-parallel-size`."""
        flags = set()
        for probe in probe_configs(ec):
            flags |= {normalise_flag(a) for a in self.render_flags(probe) if a.startswith("-")}
        return {self.canonical_flag(f) for f in flags}

    def render_flags(self, ec: EngineConfig) -> list[str]:
        """The argv whose flags stackc manages (engines wrapping argv in a shell override this)."""
        return self.argv(ec)

    def canonical_flag(self, name: str) -> str:
        raw = name.strip().split("=", 1)[0]
        if raw in self.flag_aliases:
            return self.flag_aliases[raw]
        norm = normalise_flag(raw)
        return self.flag_aliases.get(norm, self.flag_aliases.get("-" + norm, norm))

    def options(self, ec: EngineConfig) -> dict:
        """Settings the engine takes from a file rather than flags (mounted at `options_path`)."""
        return {}

    def quantization_flag(self, quantization: str, loaded_format: Optional[str]) -> Optional[str]:
        """The engine's quantization argument, passed only to quantize at load time: a
        pre-quantized checkpoint names its own method (compressed-tensors, modelopt, ...) and
        engines refuse a conflicting flag."""
        if quantization == "none" or loaded_format == quantization:
            return None
        return self.quantization_names.get(quantization)

    # ---- downloads

    def download(self, ec: EngineConfig, artifact: Artifact, image: str) -> Optional[DownloadStep]:
        """How to fill the model cache before the engine starts; None if nothing to fetch."""
        return default_download(ec, artifact, image, hf_cli=("hf",))

    # ---- what it loads and how the gateway calls it

    def model_reference(self, artifact: Artifact, cache_dir: str) -> str:
        """What the engine is told to load, given where its download job put the artifact."""
        if artifact.kind == "s3" or self.loads_from_directory:
            return artifact_dir(artifact, cache_dir)  # downloaded into a directory of its own
        return artifact.ref  # an HF repo id, found offline in the shared HF cache

    def model_file_pattern(self, artifact: Artifact) -> Optional[str]:
        """The file inside the download it loads, for engines that load one file (llama.cpp)."""
        return None

    def gateway_upstream(self, ec: EngineConfig, served: str, base: "Endpoint") -> dict:
        """LiteLLM's parameters for one upstream serving `served` at `base`: the OpenAI-compatible API."""
        return {"model": f"hosted_vllm/{served}", "api_base": base}

    # ---- on a host without an orchestrator (systemd, a cloud machine's boot)

    def native_command(self, args: list[str], env: list, bind: str, port: int, s: "Systemd") -> tuple[list[str], list]:
        """The argv and environment that run the engine from its own install on a host, listening
        on `bind:port`: `args` are the flags it takes in its image."""
        raise NotImplementedError(f"{self.name} runs from its image on hosts")

    def native_python(self, s: "Systemd") -> Optional[str]:
        """The Python of its own install (the drain wrapper runs with it), for engines that have one."""
        return None

    def host_installs(self, ec: EngineConfig, s: "Systemd") -> list["Install"]:
        """What a host must have installed to run it natively (a venv from a hashed lock, a release archive)."""
        return []


@dataclass(frozen=True)
class BudgetInputs:
    """What an engine needs to budget one GPU of one replica."""

    model: "ModelInfo"
    gpu: GpuInfo
    tp: int
    pp: int
    version: Version
    batched_tokens: int
    max_num_seqs: int
    max_context: int
    enforce_eager: bool = False
    speculative: bool = False
    task: str = "generate"


@dataclass(frozen=True)
class Capacity:
    """What the KV cache holds, as the engine reports it."""

    tokens: int
    concurrency: Optional[float]  # full-length sequences; None where the engine keeps no KV


def forward_activation_bytes(m: "ModelInfo", tokens: int, tp: int) -> float:
    """Activations of one forward pass over `tokens` tokens: the residual stream and norms,
    the query/key/value projections and the MLP's gate, up and activation tensors (for MoE,
    the fused kernel's per-expert caches for the active experts), in 16-bit."""
    qkv = (m.heads + 2 * m.kv_heads) * m.head_dim / tp
    if m.moe:
        mlp = (m.moe.active + m.moe.shared) * (3 * m.moe.expert_intermediate_size / tp + m.hidden_size)
    else:
        mlp = 3 * m.intermediate_size / tp
    return tokens * (4 * m.hidden_size + qkv + mlp) * 2


def blocks(tokens: int, block: int) -> int:
    return -(-tokens // block)


def probe_configs(ec: EngineConfig) -> list[EngineConfig]:
    """`ec` without engine_args, plus variants with every setting stackc plans turned on."""
    from dataclasses import replace

    base = replace(ec, extra_args=())
    full = replace(
        base, shutdown_timeout_s=base.shutdown_timeout_s or 1, tensor_parallel=2, pipeline_parallel=2, expert_parallel=True, revision=base.revision or "r",
        quantization_flag=base.quantization_flag or "fp8", dtype="bfloat16", kv_cache_dtype="fp8",
        max_num_seqs=base.max_num_seqs or 1, max_batched_tokens=base.max_batched_tokens or 1,
        gpu_memory_utilization=base.gpu_memory_utilization or 0.9, enforce_eager=True, prefix_caching=True,
        speculative=base.speculative or ("draft/model", 1), adapters=base.adapters or (("a", "b/c"),),
    )
    return [base, full, replace(full, prefix_caching=False), replace(full, task="embed")]


# What an engine that loads Hugging Face checkpoints reads from a repo: configs, tokenizers, chat
# templates and the safetensors weights (vLLM's and SGLang's loaders, transformers' config and
# tokenizer files, sentence-transformers' pooling files). Left out: Meta's `original/` .pth copy
# (16 GB for an 8B), gpt-oss's `original/` and `metal/` copies, ONNX and OpenVINO exports, and
# Mistral's `consolidated*` duplicate of the HF-format shards. `*` crosses `/` in these patterns.
