"""The systemd target's Target: the translation (see the package's docstring)."""

from __future__ import annotations

from typing import Any

from stackc import output
from stackc.diagnostics import Diagnostic
from stackc.routing import server_line
from stackc.ir import EVERY_INTERFACE, ConfigFile, Credential, Deployment, Endpoint, Listen, SecretRef, ServerPool, Service

from ..base import ROUTING_MODES, Artifacts, Capabilities, Target
from . import install, software, units
from .hosts import HostDeployment
from .options import SECTION
from .runs import endpoint_address, prepare as prepare_hosts


class SystemdTarget(Target):
    name = "systemd"
    description = "systemd units on GPU hosts: engines natively, the rest native or in pinned containers"
    capabilities = Capabilities(autoscaling=False, multi_node=True, gpu_vendors=("nvidia",), kv_tiers=True,
                                routing=ROUTING_MODES, overflow=True, publishes=True, tls_edge=True)
    section = SECTION

    def prepare(self, dep: Deployment, plan) -> HostDeployment:
        return prepare_hosts(dep, plan)

    def check(self, dep: HostDeployment) -> list[Diagnostic]:
        """Beyond the capabilities: a stack over several servers needs each one's address."""
        return super().check(dep) + [Diagnostic.error(
            "SC607", f"this stack runs on {f.nodes} nodes; the `{self.name}` target needs each node's private address",
            f.span, label="addresses unknown",
            help=f"set `systemd.node_addresses` to the {f.nodes} nodes' private addresses, node-0 first")
            for f in dep.features if f.name == "hosts-address-unknown"]

    def emit(self, dep: HostDeployment, spec_name: str) -> Artifacts:
        assert dep.hosts is not None
        services = {s.name: s for s in dep.services}
        files: Artifacts = {}
        for node, here in self.placed(dep).items():
            prefix = "" if len(dep.nodes) == 1 else f"{node}/"
            for path, data in self.node_files(dep, node, here, services, spec_name).items():
                files[prefix + path] = data
        return files

    @staticmethod
    def placed(dep: HostDeployment) -> dict[str, list[Service]]:
        """Each node (sorted) with the services it runs, in the IR's order. Each host has its own
        model cache: a model's download runs on every node with its replicas."""
        placed: dict[str, list[Service]] = {node: [] for node in sorted({s.node for s in dep.services})}
        for s in dep.services:
            nodes = {s.node} | (dep.engine_nodes(s.group) if s.role == "model-download" else set())
            for node in nodes:
                placed[node].append(s)
        return placed

    def node_files(self, dep: HostDeployment, node: str, here: list[Service], services: dict[str, Service],
                   spec_name: str) -> Artifacts:
        assert dep.hosts is not None
        out: Artifacts = {}
        readers: dict[str, list[str]] = {}  # each installed file -> the units that read it
        for s in here:
            path = f"units/{units.unit_name(dep, s)}"
            out[path] = units.service_unit(dep, s, spec_name, lambda e, s=s: self.address(e, s, services, dep)).encode()
            readers[path] = [] if s.one_shot else [units.unit_name(dep, s)]
        out[f"units/{dep.project}.target"] = units.target_unit(dep, here, spec_name).encode()
        readers[f"units/{dep.project}.target"] = []
        wanted = {m.source for s in here for m in s.mounts if m.kind == "file"}
        for f in dep.files:
            if any(f.path == w or f.path.startswith(w + "/") for w in wanted):
                consumers = [s for s in here for m in s.mounts if m.kind == "file"
                             and (f.path == m.source or f.path.startswith(m.source + "/"))]
                out[f"config/{f.path}"] = self.config_file(f, consumers[0], services, dep)
                readers[f"config/{f.path}"] = sorted({units.unit_name(dep, c) for c in consumers})
        secrets = sorted({v.name for s in here for _, v in s.env if isinstance(v, SecretRef)})
        out["secrets.env.example"] = self.secrets_example(dep, secrets).encode()
        out.update(software.lock_files(dep, [s.name for s in here]))
        out["software.sh"] = software.script(dep, node, [s.name for s in here]).encode()
        out["install.sh"] = install.script(dep, node, readers, [s.name for s in here]).encode()
        return out

    # ---- addresses and config files, as this host sees them

    def address(self, e: Endpoint, consumer: Service, services: dict[str, Service], dep: HostDeployment) -> str:
        assert dep.hosts is not None
        host, port = endpoint_address(e, consumer, services, dep.hosts)
        return Endpoint(e.service, port, e.path, e.form).render(host)

    def config_file(self, f: ConfigFile, consumer: Service, services: dict[str, Service], dep: HostDeployment) -> bytes:
        assert dep.hosts is not None
        hosts = dep.hosts

        def resolve(value: Any) -> Any:
            if isinstance(value, Endpoint):
                return self.address(value, consumer, services, dep)
            if isinstance(value, Listen):
                published = next((p for p in consumer.published if p.container_port == value.port), None)
                if published is not None:  # what users reach: where compose would publish it
                    return f"{published.host_ip or EVERY_INTERFACE}:{published.host_port}"
                return f"{hosts.run(consumer.name).bind}:{value.port}"
            if isinstance(value, Credential):  # systemd's copy of the operator's file (`LoadCredential=`)
                return f'"${{CREDENTIALS_DIRECTORY}}/{value.name}"'
            if isinstance(value, ServerPool):
                lines = []
                for name in value.replicas:
                    host, port = endpoint_address(Endpoint(name, value.port), consumer, services, hosts)
                    agent = endpoint_address(Endpoint(name, value.agent_port), consumer, services, hosts)[1] \
                        if value.agent_port else None
                    lines.append(server_line(name, f"{host}:{port}", agent))
                return lines
            if isinstance(value, SecretRef):
                raise TypeError(f"a secret ({value.name}) inside a config file")
            raise TypeError(f"no systemd form for {value!r}")

        return output.config_text(f, resolve).encode()

    def secrets_example(self, dep: HostDeployment, names: list[str]) -> str:
        assert dep.hosts is not None
        lines = [f"# Secrets for `{dep.project}` on this node. Fill in a copy at {dep.hosts.config_dir}/secrets.env",
                 "# (root-owned, mode 0600; install.sh creates it empty). stackc writes no values anywhere.", ""]
        described = {d.name: d.description for d in dep.secrets}
        for name in names:
            if described.get(name):
                lines.append("# " + " ".join(described[name].split()))
            lines.append(f"{name}=")
        return "\n".join(lines) + "\n"
