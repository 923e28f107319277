"""The intermediate representation every target reads: a deployment, fully decided.

Nodes are frozen dataclasses. Everything two targets would otherwise both compute (an
engine's argv, which GPUs a replica gets, a health path, the gateway's upstreams, a secret's
name, the start-up budget) is decided before this point and carried here. Targets translate.

The IR is the same for every target. What only one kind of platform needs (a cluster's node
labels and Secrets, a host's paths and runs, a cloud's subnet) is added by that target's own
`prepare`, as a subclass of `Deployment` in the target's folder (`specialise`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from ipaddress import IPv4Address
from functools import cached_property
from typing import Any, Literal, Optional, TypeVar

from .diagnostics import Span
from .images import Image
from .ir_engine import (KV_DISK_DIR, EngineConfig, Endpoint, EnvValue, Health, Install, KvOffload, Metrics,
                        Resources, SecretRef)


@dataclass(frozen=True)
class Listen:
    """Where a server in a config file listens: every interface of its own network namespace
    (containers), or the address a host target binds it to."""

    port: int


@dataclass(frozen=True)
class ServerPool:
    """A model's replicas as a router backend: each target lists them its own way (one server
    line per replica service, or a template filled from the DNS of a headless Service).
    `agent_port` is where each replica's drain agent answers (None: the replicas have none)."""

    group: str
    replicas: tuple[str, ...]
    port: int
    agent_port: Optional[int] = None


@dataclass(frozen=True)
class Drain:
    """How an engine replica stops without cutting requests: a wrapper (`script`, mounted at
    `path`) answers the router's agent check on `agent_port` and says `drain` for `wait_s`
    before the engine gets SIGTERM; the engine then finishes what it holds within its own
    shutdown timeout."""

    script: str  # the ConfigFile holding the wrapper
    path: str  # where the engine's container or host reads it
    agent_port: int
    wait_s: int


@dataclass(frozen=True)
class Credential:
    """A file a service reads that the operator places (a TLS certificate, its key): in a config
    file, the path the service finds it at, which each target gives its own way (a read-only
    bind mount, systemd's `LoadCredential=`). `name` is its name there; the service's Mount of
    kind `credential` with the same `target` names the file on the host."""

    name: str


@dataclass(frozen=True)
class Mount:
    """`kind`: `volume` (a named Volume), `host` (a host directory), `file` (a ConfigFile),
    `credential` (an operator's file on the host, `source`, as the Credential named `target`)."""

    kind: Literal["volume", "host", "file", "credential"]
    source: str
    target: str
    read_only: bool = False
    create: bool = False  # a host directory the target creates when it is missing


@dataclass(frozen=True)
class ConfigFile:
    """A file the deployment needs beside its services. `content` is data (serialised by the
    target's one serialiser for `format`, with Endpoints and SecretRefs resolved) or text."""

    path: str
    format: Literal["yaml", "json", "haproxy", "text"]
    content: Any


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: Literal["started", "healthy", "completed"]


LOOPBACK = IPv4Address("127.0.0.1")
EVERY_INTERFACE = IPv4Address("0.0.0.0")


@dataclass(frozen=True)
class PortBinding:
    """A port published on the host: on every interface (`host_ip` None) or on one address."""

    host_port: int
    container_port: int
    host_ip: Optional[IPv4Address] = None


@dataclass(frozen=True)
class GpuAssignment:
    vendor: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Autoscale:
    """Scale a model's replicas to hold `query` (PromQL, summed over its replicas) at `target`
    per replica."""

    metric: str
    query: str
    target: float


@dataclass(frozen=True)
class Replicas:
    min: int
    max: int

    @property
    def fixed(self) -> bool:
        return self.min == self.max


@dataclass(frozen=True)
class Service:
    """One running thing: an engine replica, a download job, the gateway, Prometheus, ..."""

    name: str
    role: Literal["engine", "model-download", "router", "gateway", "metrics", "dashboards", "gpu-metrics", "ui", "edge"]
    image: Image  # parsed once: repository, tag and digest as data
    command: tuple[str, ...] = ()
    entrypoint: Optional[tuple[str, ...]] = None
    env: tuple[tuple[str, EnvValue], ...] = ()
    port: Optional[int] = None
    published: tuple[PortBinding, ...] = ()
    node: str = "node-0"
    gpus: Optional[GpuAssignment] = None
    resources: Resources = field(default_factory=Resources)
    health: Optional[Health] = None
    startup_budget_s: int = 0
    metrics: Optional[Metrics] = None
    mounts: tuple[Mount, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    one_shot: bool = False
    group: Optional[str] = None  # the model an engine replica or download job belongs to
    index: Optional[int] = None  # an engine replica's number within its model (`chat-1`: 1)
    replicas: Replicas = Replicas(1, 1)
    autoscale: Optional[Autoscale] = None
    engine: Optional[EngineConfig] = None
    origin: Optional[Span] = None
    cache_bytes: int = 0  # what this model's weights take in the model cache (engines and downloads)
    drain: Optional[Drain] = None  # an engine replica behind a router: drained before it stops
    stop_grace_s: int = 0  # how long the orchestrator waits after SIGTERM before it kills (0: its default)


@dataclass(frozen=True)
class Volume:
    name: str
    size_bytes: int = 0


@dataclass(frozen=True)
class Node:
    name: str
    gpu: str
    gpu_vendor: str
    gpu_count: int
    provider: str
    region: Optional[str]
    instance_type: Optional[str]
    usd_per_hour: Optional[float]
    host_memory_bytes: int = 0  # what the replicas placed here need (engines, CPU tiers, offloaded layers)
    kv_disk_bytes: int = 0  # disk-tier space the replicas placed here need under the tiers' paths
    spot: bool = False
    cache_bytes: int = 0  # the model cache this node fills (the weights of the models placed here)
    cache_on_local_nvme: bool = False  # the cache goes on the machine's own NVMe disks (a cloud target mounts them)
    index: int = 0  # its place in `Deployment.nodes`: node i of the stack


@dataclass(frozen=True)
class SecretDecl:
    name: str
    description: str
    generated: bool = False  # declared by stackc for a component (e.g. Grafana's admin password)


@dataclass(frozen=True)
class Feature:
    """Something the deployment asks for that not every target can express, with the values a
    target's message names as data: `detail` is the one subject (an engine, a weights kind, a
    routing mode, a provider, the service account), `models` the models it concerns."""

    name: str
    span: Optional[Span]
    detail: str = ""
    models: tuple[str, ...] = ()
    nodes: int = 0  # the stack's node count, where the feature is about nodes
    fits: bool = False  # multi-node: the models fit on one node; shared-gpu: they fit with whole GPUs too
    label: str = ""  # k8s-gpu-label-unknown: the node label looked up
    vendor: str = ""  # gpu: the GPU's vendor (`detail` is the GPU)


@dataclass(frozen=True)
class ModelNode:
    """One model of the stack as every target sees it: its replica services (in order), the job
    that downloads its weights, and where the spec names it."""

    name: str
    engine: str
    replicas: tuple[str, ...]
    download: Optional[str]
    origin: Optional[Span]  # the model's entry in `models:`
    name_span: Optional[Span]  # its `name:` value


@dataclass(frozen=True)
class Deployment:
    name: str
    environment: Optional[str]
    project: str
    nodes: tuple[Node, ...]
    services: tuple[Service, ...]
    volumes: tuple[Volume, ...]
    secrets: tuple[SecretDecl, ...]
    files: tuple[ConfigFile, ...]
    features: tuple[Feature, ...]
    gateway_port: int
    routing: str = "round-robin"  # how requests spread over a model's replicas (tiering.routing)
    session_key: str = "x-session-id"
    models: tuple[ModelNode, ...] = ()  # in the spec's order

    @cached_property
    def _service_by_name(self) -> dict[str, Service]:
        return {s.name: s for s in self.services}

    def service(self, name: str) -> Service:
        return self._service_by_name[name]

    @cached_property
    def _node_by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def node(self, name: str) -> Optional[Node]:
        return self._node_by_name.get(name)

    @cached_property
    def _engine_nodes(self) -> dict[str, frozenset[str]]:
        nodes: dict[str, set[str]] = {}
        for s in self.services:
            if s.role == "engine":
                nodes.setdefault(s.group, set()).add(s.node)
        return {group: frozenset(names) for group, names in nodes.items()}

    def engine_nodes(self, group: str) -> frozenset[str]:
        """The nodes the engines of `group` (a model) run on: where its download runs too."""
        return self._engine_nodes.get(group, frozenset())

    def qualified(self, service: Service | str) -> str:
        """`<stack>-<service>`: the globally unique name (units, Kubernetes objects)."""
        name = service if isinstance(service, str) else service.name
        return f"{self.name}-{name}"


D = TypeVar("D", bound=Deployment)


def specialise(dep: Deployment, cls: type[D], **extra: Any) -> D:
    """`dep` as a target's own subclass of `Deployment`, with what only that target computes
    (and any field replaced, such as `features` with the target's own findings)."""
    values = {f.name: getattr(dep, f.name) for f in fields(dep)}  # a subclass's own fields come along
    values.update(extra)
    return cls(**values)


__all__ = [  # the engine-level names are defined in ir_engine.py and are part of the IR as well
    "KV_DISK_DIR", "LOOPBACK", "EVERY_INTERFACE", "EngineConfig", "Endpoint", "EnvValue", "Health", "Install", "KvOffload", "Metrics", "Resources",
    "SecretRef", "Listen", "ServerPool", "Credential", "Drain", "Mount", "ConfigFile", "Dependency", "PortBinding", "GpuAssignment",
    "Autoscale", "Replicas", "Service", "Volume", "Node", "SecretDecl", "Feature", "ModelNode", "Deployment", "specialise",
]
