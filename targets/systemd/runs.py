"""How each service runs on a host without an orchestrator: the command, its environment, the
address and port it listens on, and the host paths it reads and writes.

The systemd target's own lowering, decided once for every host (a cloud's machines boot into
these units too, so the terraform target reuses it):

- engines that ship natively run from their install (`vllm serve` from a virtual environment,
  SGLang's launcher, `llama-server`, `ollama serve`), with their GPUs pinned by
  `CUDA_DEVICE_ORDER=PCI_BUS_ID` and `CUDA_VISIBLE_DEVICES`; TGI and TensorRT-LLM, the download
  jobs, Grafana, the DCGM exporter and Open WebUI run in the pinned images through the host's
  container runtime; the router (Debian's HAProxy), the gateway (LiteLLM's release in a virtual
  environment) and Prometheus (Debian's package) run natively;
- a container path in a command or a variable becomes the host path behind its mount: the model
  cache under `/var/cache/stackc/<project>/models`, state under `/var/lib/stackc/<project>`,
  config files under `/etc/stackc/<project>`;
- there are no network namespaces on a host, so each engine replica gets its own port (8000 +
  its index on the node) and binds the loopback address, or the node's private address where
  the router and gateway run on another node; components listen where compose publishes them.
"""

from __future__ import annotations

import posixpath
from ipaddress import IPv4Address, IPv4Network
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Optional

from stackc import locks
from stackc.engines import get as get_engine
from stackc.engines.flags import set_flag
from stackc.ir import EVERY_INTERFACE, LOOPBACK, Deployment, Endpoint, Feature, Install, Node, Service, specialise

from .hosts import HostDeployment, HostRun, Hosts
from .options import Systemd

if TYPE_CHECKING:
    from stackc.plan import Plan

FIRST_ENGINE_PORT = 8000
MEMORY_HEADROOM = 1.25  # an engine's memory cap over the host memory the planner gave it
CACHE_VOLUME = "models"

# how a component is told where to listen: flags it takes, or variables it reads
LISTEN_FLAGS = {"gateway": ("--host", "--port")}
LISTEN_ARG = {"metrics": "--web.listen-address={bind}:{port}"}
LISTEN_ENV = {"dashboards": (("GF_SERVER_HTTP_ADDR", "{bind}"), ("GF_SERVER_HTTP_PORT", "{port}")),
              "ui": (("HOST", "{bind}"), ("PORT", "{port}")),
              "gpu-metrics": (("DCGM_EXPORTER_LISTEN", "{bind}:{port}"),)}
HAPROXY = ("/usr/sbin/haproxy", "-Ws", "-f")
NATIVE_COMPONENTS = {"router": HAPROXY, "edge": HAPROXY, "metrics": ("/usr/bin/prometheus",)}
APT_PACKAGES = {"router": "haproxy", "edge": "haproxy", "metrics": "prometheus"}  # Debian and Ubuntu name them the same


def cloud_addresses(subnet_cidr: str, nodes: int) -> tuple[IPv4Address, ...]:
    """On a cloud the terraform module places node i at .10+i of its subnet (`terraform.subnet_cidr`)."""
    network = IPv4Network(subnet_cidr)
    return tuple(network[10 + i] for i in range(nodes))


def prepare(dep: Deployment, plan: "Plan") -> HostDeployment:
    """The host runs from `systemd:`, and the one check only hosts have: on your own servers,
    every node's private address."""
    stack = plan.stack
    spec, where = stack.spec, stack.where
    assert where is not None
    s = spec.section("systemd")
    on_prem = stack.provider == "on-prem"
    addresses = tuple(map(IPv4Address, s.node_addresses)) or (
        () if on_prem else cloud_addresses(spec.section("terraform").subnet_cidr, stack.nodes))
    found: list[Feature] = []
    if stack.nodes > 1 and on_prem and len(s.node_addresses) < stack.nodes:
        span = where("systemd", "node_addresses") if s.node_addresses else where("hardware", "nodes")
        found.append(Feature("hosts-address-unknown", span, nodes=stack.nodes))
    hosts = resolve(s, dep.project, dep.services, dep.nodes, addresses)
    return specialise(dep, HostDeployment, hosts=hosts, features=dep.features + tuple(found))


def resolve(s: Systemd, project: str, services: tuple[Service, ...], nodes: tuple[Node, ...],
            addresses: tuple[IPv4Address, ...]) -> Hosts:
    """Every service's host run, from the `systemd:` settings and the nodes' private addresses."""
    root = Hosts(user=s.user, systemd_version=s.systemd_version, runtime=s.container_runtime,
                 config_dir=f"/etc/stackc/{project}", state_dir=f"/var/lib/stackc/{project}",
                 cache_dir=f"/var/cache/stackc/{project}", node_addresses=addresses, runs=(),
                 node_index=tuple((n.name, n.index) for n in nodes))
    front = next((x.node for x in services if x.role == "gateway"), nodes[0].name)
    ports: dict[str, int] = {}
    engines_on: dict[str, int] = {}  # node -> engines given a port there so far
    for x in services:
        if x.role == "engine":
            ports[x.name] = FIRST_ENGINE_PORT + engines_on.get(x.node, 0)
            engines_on[x.node] = engines_on.get(x.node, 0) + 1
    runs = []
    for x in services:
        bind, port = listen_address(x, ports, front, root)
        runs.append((x.name, host_run(x, s, root, bind, port)))
    return replace(root, runs=tuple(_one_lock_per_venv(runs, {x.name: x.node for x in services})))


def _one_lock_per_venv(runs: list[tuple[str, HostRun]], node_of: dict[str, str]) -> list[tuple[str, HostRun]]:
    """Engines of one node share a venv: where one of them needs LMCache, they all get the lock
    that has it (a superset of the plain one)."""
    chosen: dict[tuple[str, str], Install] = {}
    for name, run in runs:
        for i in run.installs:
            key = (node_of[name], i.name)
            if i.kind == "venv" and (key not in chosen or "lmcache" in i.requirement):
                chosen[key] = i
    return [(name, replace(run, installs=tuple(chosen.get((node_of[name], i.name), i) if i.kind == "venv" else i
                                              for i in run.installs))) for name, run in runs]


def listen_address(x: Service, ports: dict[str, int], front: str, hosts: Hosts) -> tuple[IPv4Address, Optional[int]]:
    """Loopback beside the router, gateway and Prometheus; the node's private address on the
    other nodes, where they reach it from; where compose publishes it, for what users reach."""
    inside = LOOPBACK if x.node == front or not hosts.node_addresses else node_address(hosts, x.node)
    if x.role == "engine":
        return inside, ports[x.name]
    if x.published and x.port in {p.container_port for p in x.published}:  # its one port is what users reach
        p = x.published[0]
        return p.host_ip or EVERY_INTERFACE, p.host_port
    return inside, x.port


def node_address(hosts: Hosts, node: str) -> IPv4Address:
    index = hosts.index_of(node)
    return hosts.node_addresses[index] if index < len(hosts.node_addresses) else LOOPBACK


def mounts(x: Service, hosts: Hosts) -> list[tuple[str, str, bool]]:
    """(container path, host path, writable) for each of the service's mounts."""
    out = []
    for m in x.mounts:
        if m.kind == "volume":
            base = hosts.cache_dir if m.source == CACHE_VOLUME else hosts.state_dir
            out.append((m.target, f"{base}/{m.source}", not m.read_only))
        elif m.kind == "file":
            out.append((m.target, f"{hosts.config_dir}/{m.source}", False))
        elif m.kind == "credential":
            continue  # no path of its own: `credentials()`
        else:
            out.append((m.target, m.source, not m.read_only))
    return sorted(out, key=lambda t: -len(t[0]))  # the longest container path first


def credentials(x: Service, hosts: Hosts) -> tuple[tuple[str, str], ...]:
    """(name, host file) for each file the operator places for the service; a relative path is
    under the stack's configuration directory, beside the files install.sh places."""
    return tuple((m.target, m.source if m.source.startswith("/") else f"{hosts.config_dir}/{m.source}")
                 for m in x.mounts if m.kind == "credential")


def remap(text: str, table: list[tuple[str, str, bool]]) -> str:
    """Container paths inside a value (a flag, `--x=/path`, `file:///path/`, a shell line) as host paths."""
    for inside, outside, _ in table:
        text = re.sub(r"(?<![\w.-])" + re.escape(inside) + r"(?=/|$|[^\w.-])", outside, text)
    return text


def host_run(x: Service, s: Systemd, hosts: Hosts, bind: IPv4Address, port: Optional[int]) -> HostRun:
    run = _host_run(x, s, hosts, bind, port)
    ports = []
    if x.port is not None and port is not None:
        ports.append((x.port, port))
        if x.drain is not None:
            ports.append((x.drain.agent_port, agent_port(x, port)))
    return replace(run, installs=installs(x, s, hosts, run), ports=tuple(ports), credentials=credentials(x, hosts))


def agent_port(x: Service, port: int) -> int:
    """A replica's drain agent on a host: as far from the replica's own port as in its container."""
    assert x.drain is not None and x.port is not None
    return port + x.drain.agent_port - x.port


def installs(x: Service, s: Systemd, hosts: Hosts, run: HostRun) -> tuple[Install, ...]:
    """What the host must have for this run: decided here, installed by a cloud's first boot
    and named in the systemd docs."""
    out = [Install("apt", "curl")] if x.health is not None and not x.one_shot else []
    if run.container:
        return (*out, Install("apt", "podman" if hosts.runtime == "podman" else "docker.io"))
    if x.role in APT_PACKAGES:
        out.append(Install("apt", APT_PACKAGES[x.role]))
    ec = x.engine
    if x.role == "engine" and ec is not None:
        out += get_engine(ec.engine).host_installs(ec, s)
    elif x.role == "gateway":
        out += [Install("apt", "python3-venv"),
                Install("venv", s.gateway_venv, locks.GATEWAY.file, locks.GATEWAY.requirement)]
    return tuple(out)


def _host_run(x: Service, s: Systemd, hosts: Hosts, bind: IPv4Address, port: Optional[int]) -> HostRun:
    table = mounts(x, hosts)
    writable = tuple(sorted({h for _, h, w in table if w}))
    readable = tuple(sorted({h for _, h, w in table if not w}))
    env = [(k, remap(v, table) if isinstance(v, str) else v) for k, v in x.env]
    args = [remap(a, table) for a in x.command]
    home = f"{hosts.state_dir}/{x.group or x.name}"
    engine = get_engine(x.engine.engine) if x.engine else None
    if x.role == "engine" and engine is not None and engine.runs_natively:
        assert port is not None
        argv, env = engine.native_command(args, env, str(bind), port, s)
        if x.drain is not None:  # the wrapper from the engine's own Python, its agent beside the engine's port
            script = next(h for inside, h, _ in table if inside == x.drain.path)
            python = engine.native_python(s)
            assert python is not None, f"{engine.name} is drained but runs no Python of its own"
            argv = [python, script, "--agent", f"{bind}:{agent_port(x, port)}", "--wait", str(x.drain.wait_s), "--", *argv]
        if x.gpus is not None:
            visible = ",".join(map(str, x.gpus.indices))
            env += [("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
                    ("ROCR_VISIBLE_DEVICES" if x.gpus.vendor == "amd" else "CUDA_VISIBLE_DEVICES", visible)]
        env += [("HOME", home), ("XDG_CACHE_HOME", f"{hosts.cache_dir}/{x.group or x.name}")]
        return HostRun(tuple(argv), tuple(env), False, bind, port,
                       tuple(sorted(set(writable) | {home, f"{hosts.cache_dir}/{x.group or x.name}"})), readable,
                       int(x.resources.memory_bytes * MEMORY_HEADROOM))
    if x.role == "gateway":
        flag_host, flag_port = LISTEN_FLAGS["gateway"]
        argv = [f"{s.gateway_venv}/bin/litellm", *args, flag_host, str(bind)]
        argv = set_flag(argv, flag_port, str(port))
        env += [("HOME", home)]
        return HostRun(tuple(argv), tuple(env), False, bind, port, tuple(sorted(set(writable) | {home})), readable)
    if x.role in NATIVE_COMPONENTS:
        program = list(NATIVE_COMPONENTS[x.role])
        if program == list(HAPROXY):
            cfg = next(h for inside, h, _ in table if inside.endswith("haproxy.cfg"))
            argv = program + [cfg]
        else:
            argv = program + args + [LISTEN_ARG[x.role].format(bind=bind, port=port)]
        return HostRun(tuple(argv), tuple(env), False, bind, port, writable, readable)
    return container_run(x, hosts, table, list(x.env), bind, port, writable, readable)


def container_run(x: Service, hosts: Hosts, table: list[tuple[str, str, bool]], env: list, bind: IPv4Address,
                  port: Optional[int], writable: tuple[str, ...], readable: tuple[str, ...]) -> HostRun:
    """The image through the host's runtime: the service's name, its mounts at the host paths,
    its variables passed by name (values stay in the unit's environment, never on the command
    line), GPUs by CDI device."""
    name = container_name(hosts, x)
    argv = [f"/usr/bin/{hosts.runtime}", "run", "--rm", "--name", name, "--pull=missing"]
    if x.role == "engine":
        if port is not None and x.port is not None:
            argv += ["--publish", f"{bind}:{port}:{x.port}"]
    else:
        argv += ["--network=host"]  # components reach the native services on loopback
    if x.gpus is not None:
        argv += [f"--device=nvidia.com/gpu={i}" for i in x.gpus.indices]
    elif x.role == "gpu-metrics":
        argv += ["--device=nvidia.com/gpu=all"]
    if x.resources.shm_bytes:
        argv += [f"--shm-size={x.resources.shm_bytes // 2**20}m"]
    if x.resources.ipc_host:
        argv += ["--ipc=host"]
    argv += [f"--cap-add={c}" for c in x.resources.cap_add]
    for inside, outside, writable_mount in sorted(table):
        option = ":ro" if not writable_mount else ""
        if writable_mount and hosts.runtime == "podman" and not outside.startswith(hosts.cache_dir):
            option = ":U"  # the component's state, owned by the user its image runs as
        argv += ["--volume", f"{outside}:{inside}{option}"]
    for key, fmt in LISTEN_ENV.get(x.role, ()):
        env.append((key, fmt.format(bind=bind, port=port)))
    argv += [a for k, _ in env for a in ("--env", k)]
    if x.entrypoint is not None:
        argv += ["--entrypoint", x.entrypoint[0]]
    argv.append(x.image.ref)
    if x.entrypoint is not None:
        argv += list(x.entrypoint[1:])
    argv += list(x.command)  # the container sees its own paths
    return HostRun(tuple(argv), tuple(env), True, bind, port, writable, readable, container_name=name)


def container_name(hosts: Hosts, x: Service) -> str:
    return f"{posixpath.basename(hosts.config_dir)}-{x.name}"


def endpoint_address(e: Endpoint, consumer: Service, services: dict[str, Service], hosts: Hosts) -> tuple[str, int]:
    """Where `consumer` reaches `e` on a host: loopback on its own node, the node's address on another.

    A port moves on a host only where the run says so (an engine's 8000 becomes its replica's
    port and its drain agent's 8100 beside it, the gateway's 4000 the published one); every other
    port a service listens on (the router's model frontends beside its stats port) stays as its
    config file binds it."""
    target = services[e.service]
    run = hosts.run(e.service)
    port = dict(run.ports).get(e.port, e.port)
    host = run.local_address() if target.node == consumer.node else node_address(hosts, target.node)
    return str(host), port
