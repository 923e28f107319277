"""The part of the IR an engine module reads and writes, and all the planner needs of the IR:
what an engine runs (`EngineConfig`, its KV offload), its health check, metrics and resources,
what a host installs for it, and the values an environment variable holds (`EnvValue`).
Separate from `ir.py` so `stackc validate`, which plans but does not lower, builds only these
classes; `ir.py` re-exports every name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional, Union


@dataclass(frozen=True)
class SecretRef:
    """An environment variable a service reads, filled from the deployment's secret store."""

    name: str


@dataclass(frozen=True)
class Endpoint:
    """A symbolic address of a service inside a config file or an environment value; each
    target resolves it to its own form (a compose service name, a Kubernetes Service, a host).
    `form`: `url` (http://host:port/path) or `address` (host:port, as Prometheus wants)."""

    service: str
    port: int
    path: str = ""
    form: Literal["url", "address"] = "url"

    def render(self, host: str) -> str:
        if self.form == "address":
            return f"{host}:{self.port}"
        return f"http://{host}:{self.port}{self.path}"


EnvValue = Union[str, SecretRef, Endpoint]


KV_DISK_DIR = "/kv-cache"  # where a replica's disk tier is mounted inside its container


@dataclass(frozen=True)
class Health:
    """How to tell a service is ready: an HTTP path, and a command that checks it from inside
    the service's own image (images differ: vLLM's has python, Ollama's has neither curl nor
    python)."""

    port: Optional[int]
    path: Optional[str]
    command: tuple[str, ...]
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 3


@dataclass(frozen=True)
class Metrics:
    """Where a service serves Prometheus metrics."""

    port: int
    path: str = "/metrics"


@dataclass(frozen=True)
class Resources:
    """What a service asks of its host beyond GPUs: memory, CPUs, shared memory and limits."""

    memory_bytes: int = 0  # host memory the service needs (a request where the target has them)
    cpus: int = 0
    shm_bytes: int = 0
    ipc_host: bool = False
    memlock_unlimited: bool = False
    stack_bytes: int = 0
    cap_add: tuple[str, ...] = ()


@dataclass(frozen=True)
class KvOffload:
    """A KV-cache tier below GPU memory, as planned for one replica: a size (cpu, disk), the
    host directory under which each replica gets its own (disk), the secret holding the URL
    (redis). Engines see the disk tier at `KV_DISK_DIR`."""

    tier: Literal["cpu", "disk", "redis"]
    size_bytes: int = 0
    path: str = ""
    url_secret: str = ""


@dataclass(frozen=True)
class EngineConfig:
    """What an engine must run, as the planner decided it; engines render it to argv/env."""

    engine: str
    version: tuple[int, ...]
    model: str  # what the engine loads: a repo id, a path in the container, or an Ollama tag
    model_file_pattern: Optional[str]  # a GGUF file inside `model` (a directory), found at start
    served_name: str
    served_names: tuple[str, ...]
    revision: Optional[str]
    task: str
    quantization: str
    quantization_flag: Optional[str]  # the engine's own name, only when it quantizes at load time
    dtype: str
    kv_cache_dtype: str
    max_context: int
    max_num_seqs: Optional[int]
    max_batched_tokens: Optional[int]
    gpu_memory_utilization: Optional[float]
    tensor_parallel: int
    pipeline_parallel: int
    expert_parallel: bool
    enforce_eager: Optional[bool]
    prefix_caching: Optional[bool]
    concurrency: int
    speculative: Optional[tuple[str, int]] = None
    adapters: tuple[tuple[str, str], ...] = ()
    kv_offload: tuple[KvOffload, ...] = ()  # hot to cold, sizes per replica
    kv_mechanism: Optional[str] = None  # how the engine runs them: native | lmcache | hicache | host-cache
    extra_args: tuple[tuple[str, Any], ...] = ()
    gpu_vendor: str = "nvidia"
    cache_dir: str = "/models"
    gpu_layers: Optional[int] = None  # layers on the GPU when the planner chose a partial offload
    shutdown_timeout_s: int = 0  # how long the engine lets requests in flight finish when told to stop


@dataclass(frozen=True)
class Install:
    """Software a host must have for a native run (an engine's `host_installs`, a component's):
    a distribution package (`apt`), a virtual environment filled from a hashed lock (`venv`;
    `lock` is empty where stackc has no lock for this version), or a release archive unpacked
    into a directory (`archive`)."""

    kind: Literal["apt", "venv", "archive"]
    name: str  # the package, the venv's directory, or the archive's directory
    lock: str = ""  # venv: the lock's file name
    requirement: str = ""  # venv: the top-level pins; archive: its URL
