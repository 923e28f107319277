"""What a platform needs beyond the services, each read by the targets that run there: a
Kubernetes cluster (`Cluster`, the helm target), hosts without an orchestrator (`Hosts`,
`HostRun`, `Install`: the systemd target and a cloud's machines) and a cloud's provisioning
(`Provisioning`, the terraform target). The rest of the IR (`ir.py`) is the same for every
target."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal, Optional

if TYPE_CHECKING:
    from .ir import EnvValue


@dataclass(frozen=True)
class Cluster:
    """What a Kubernetes target needs beyond the services: how nodes name the GPU, where model
    weights are stored, where Prometheus is. Resolved from `kubernetes:` and the catalog."""

    namespace: str
    gpu_label: str
    gpu_label_value: Optional[str]  # None: neither the catalog nor the spec knows it
    runtime_class: Optional[str]
    storage_class: Optional[str]
    model_cache_claim: Optional[str]
    model_cache_access: str
    prometheus_url: str
    monitor_labels: tuple[tuple[str, str], ...]
    secret_template: bool
    rollout_surge: bool  # enough GPUs stay free to start a new replica before an old one stops
    release: str  # the Helm release name the install README uses (the stack's name)
    secret_name: str  # the Secret that holds every declared secret not mapped elsewhere
    startup_budget_s: int = 0  # the slowest model's start with its weights read from the claim's storage


@dataclass(frozen=True)
class Install:
    """Software a host must have for a native run: a distribution package (`apt`), a virtual
    environment filled from a hashed lock (`venv`; `lock` is empty where stackc has no lock for
    this version), or a release archive unpacked into a directory (`archive`)."""

    kind: Literal["apt", "venv", "archive"]
    name: str  # the package, the venv's directory, or the archive's directory
    lock: str = ""  # venv: the lock's file name
    requirement: str = ""  # venv: the top-level pins; archive: its URL


@dataclass(frozen=True)
class HostRun:
    """How a service runs on a host without an orchestrator (systemd, a cloud VM's boot): a
    native command, or a container run by the host's runtime. Paths are the host's."""

    argv: tuple[str, ...]  # the command, absolute program first
    env: tuple[tuple[str, EnvValue], ...]
    container: bool  # argv runs the container runtime (podman or docker)
    bind: str  # the address it listens on
    port: Optional[int]  # the host port it listens on
    writable: tuple[str, ...] = ()  # host paths it writes
    readable: tuple[str, ...] = ()  # host paths it reads beyond the system's
    memory_max: int = 0  # bytes the service may use before the kernel stops it (0: no cap)
    ports: tuple[tuple[int, int], ...] = ()  # (the port its container listens on, the host port it uses instead)
    installs: tuple[Install, ...] = ()  # what the host must have installed for it
    container_name: str = ""  # the container's name, where argv runs one (what `stop` is told)


@dataclass(frozen=True)
class Hosts:
    """What a host target needs beyond the services: where things live on the host, who runs
    them, which systemd it can count on. Resolved from `systemd:`."""

    user: str
    systemd_version: int
    runtime: str  # podman | docker
    config_dir: str
    state_dir: str
    cache_dir: str
    node_addresses: tuple[str, ...]  # private addresses, node-0 first; () on one node
    runs: tuple[tuple[str, HostRun], ...]  # per service name

    @cached_property
    def _run_by_service(self) -> dict[str, HostRun]:
        return dict(self.runs)

    def run(self, service: str) -> HostRun:
        return self._run_by_service[service]


@dataclass(frozen=True)
class Provisioning:
    """What a cloud target needs beyond the nodes: the subnet the nodes' addresses come from and
    the disk before the model cache is added. Resolved from `terraform:`."""

    subnet_cidr: str
    root_volume_gib: int
    boot: str = "systemd"  # systemd | compose: which target's files the machines run
