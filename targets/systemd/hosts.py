"""What the systemd target adds to the IR: how each service runs on a host without an
orchestrator (`HostRun`), where things live there (`Hosts`), and the deployment that carries
them (`HostDeployment`). Computed by `runs.prepare` only when a host target builds (the systemd
target, and the terraform target whose machines boot into its units)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from ipaddress import IPv4Address
from typing import Optional

from stackc.ir import EVERY_INTERFACE, LOOPBACK, Deployment, EnvValue, Install


@dataclass(frozen=True)
class HostRun:
    """How a service runs on a host: a native command, or a container run by the host's runtime.
    Paths are the host's."""

    argv: tuple[str, ...]  # the command, absolute program first
    env: tuple[tuple[str, EnvValue], ...]
    container: bool  # argv runs the container runtime (podman or docker)
    bind: IPv4Address  # the address it listens on
    port: Optional[int]  # the host port it listens on
    writable: tuple[str, ...] = ()  # host paths it writes
    readable: tuple[str, ...] = ()  # host paths it reads beyond the system's
    memory_max: int = 0  # bytes the service may use before the kernel stops it (0: no cap)
    ports: tuple[tuple[int, int], ...] = ()  # (the port its container listens on, the host port it uses instead)
    installs: tuple[Install, ...] = ()  # what the host must have installed for it
    container_name: str = ""  # the container's name, where argv runs one (what `stop` is told)
    credentials: tuple[tuple[str, str], ...] = ()  # (name, host file): the operator's files, by `LoadCredential=`

    @property
    def on_every_interface(self) -> bool:
        return self.bind == EVERY_INTERFACE

    def local_address(self) -> IPv4Address:
        """Where a client on the same node reaches it: loopback, unless it listens on one other address."""
        return LOOPBACK if self.bind in (EVERY_INTERFACE, LOOPBACK) else self.bind


@dataclass(frozen=True)
class Hosts:
    """Where things live on the hosts, who runs them, which systemd they can count on, and each
    service's run. Resolved from `systemd:`."""

    user: str
    systemd_version: int
    runtime: str  # podman | docker
    config_dir: str
    state_dir: str
    cache_dir: str
    node_addresses: tuple[IPv4Address, ...]  # private addresses, node-0 first; () on one node
    runs: tuple[tuple[str, HostRun], ...]  # per service name
    node_index: tuple[tuple[str, int], ...] = ()  # node name -> its index (the IR's `Node.index`)

    @cached_property
    def _run_by_service(self) -> dict[str, HostRun]:
        return dict(self.runs)

    def run(self, service: str) -> HostRun:
        return self._run_by_service[service]

    def index_of(self, node: str) -> int:
        return dict(self.node_index)[node]


@dataclass(frozen=True)
class HostDeployment(Deployment):
    """The deployment as a host target translates it."""

    hosts: Optional[Hosts] = None
