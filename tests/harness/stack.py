"""Run a target's output directory as written, on namespaces of this machine.

`RunningStack(path)` reads the directory (compose or systemd layout, found by its files),
builds the network (a namespace per container or per server, the servers' own addresses on
them, the names the stack resolves), starts every program this machine has (HAProxy, LiteLLM,
Prometheus) with its argv and environment from the files, and puts a stand-in wherever an
engine, a component or a hosted API listens. Nothing here computes an address or a port: each
comes from the emitted files, so a wrong one anywhere shows as a request that goes nowhere
or to the wrong replica.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from . import compose, netns, systemd
from .dns import Dns
from .layout import Layout, Proc
from .standins import DrainAgent, StandIn, served_by

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_BIN = ROOT / ".venv-gateway" / "bin" / "litellm"
START_TIMEOUT_S = 120


def missing_tools() -> Optional[str]:
    """Why the harness cannot run here, or None."""
    why = netns.available()
    if why:
        return why
    if shutil.which("haproxy") is None:
        return "haproxy is not installed (tests/tools.sh installs Debian's package as root)"
    if not GATEWAY_BIN.exists():
        return f"the gateway is not installed at {GATEWAY_BIN} (tests/tools.sh installs it with hashes)"
    return None


@dataclass
class Reply:
    status: int
    body: Any
    text: str
    seconds: float = 0.0

    @property
    def served_by(self) -> Optional[str]:
        return served_by(self.body, self.text)


class RunningStack:
    def __init__(self, root: Path, workdir: Optional[Path] = None, real_drain: frozenset[str] = frozenset(),
                 delay: float = 0.0):
        """`real_drain`: replicas whose emitted drain wrapper runs for real, around a stand-in in a
        process of its own (answering after `delay` seconds)."""
        self.root = Path(root)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="stackc-harness-"))
        state = self.workdir / "state"
        state.mkdir(parents=True, exist_ok=True)
        reader = compose if (self.root / "compose.yaml").exists() else systemd
        self.layout: Layout = reader.read(self.root, state, str(GATEWAY_BIN))
        self.config = yaml.safe_load(self.layout.gateway_config.read_text())
        self.net: Optional[netns.Network] = None
        self.standins: dict[str, StandIn] = {}  # engines and components by service name
        self.hosted: dict[str, StandIn] = {}  # hosted APIs by host name
        self.agents: dict[str, DrainAgent] = {}  # the drain wrappers' agents by engine replica
        self.processes: dict[str, subprocess.Popen] = {}
        self.real_drain, self.delay = real_drain, delay
        self.stopped: set[str] = set()  # processes a test stopped on purpose
        self._servers: list[Any] = []
        self._listeners: list[tuple[socket.socket, threading.Thread]] = []  # published ports and their threads
        self.hosted_urls: dict[str, str] = {}
        self.tls_name: Optional[str] = None  # the name on the edge's certificate (`certificate()`)
        self.missing: list[str] = []  # programs the files run that this machine lacks (their checks skip)

    # ---- starting

    def start(self) -> "RunningStack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        layout = self.layout
        self._place_certificates()
        net = self.net = netns.Network()
        names: dict[str, str] = {}
        dns_sock = net.listen(net.base, net.gateway_ip, 53, socket.SOCK_DGRAM)
        self._servers.append(Dns(dns_sock, names).start())
        hosts = sorted({p.host for p in layout.procs if p.role != "job"})
        for key in hosts:
            host = net.add_host(key, layout.addresses.get(key, []))
            if layout.kind == "compose":
                names[key] = host.bridge_ip
                net.name(key, host.bridge_ip)
        self._start_hosted(names)
        for p in layout.procs:
            if p.role in ("engine", "component") and p.name in self.real_drain:
                self._spawn_drained(p)
            elif p.role in ("engine", "component"):
                self._start_standin(p)
        for pub in layout.published:
            self._forward(pub)
        for p in layout.procs:
            if p.role == "program":
                program = next(a for a in p.argv if a.startswith("/"))
                if not os.path.exists(program):
                    self.missing.append(f"{p.name} ({program} is not installed)")
                    continue
                self._spawn(p)
        for p in layout.procs:
            if p.role != "job" and (p.role != "program" or p.name in self.processes):
                self._wait_ready(p)

    def _start_hosted(self, names: dict[str, str]) -> None:
        """A stand-in for each API outside the stack the gateway sends to (overflow)."""
        internal = {a for addrs in self.layout.addresses.values() for a in addrs}
        compose_hosts = {p.host for p in self.layout.procs}
        for entry in self.config.get("model_list", []):
            base = entry["litellm_params"].get("api_base")
            if not base:
                continue
            url = urllib.parse.urlsplit(base)
            host = url.hostname or ""
            if host in internal or host.startswith("127.") or host in ("localhost", "0.0.0.0") \
                    or (self.layout.kind == "compose" and host in compose_hosts) or host in self.hosted:
                continue
            port = url.port or (443 if url.scheme == "https" else 80)
            address = self.net.external_address()
            names[host] = address
            self.net.name(host, address)
            standin = StandIn(host, "hosted")
            tls = self._tls(host) if url.scheme == "https" else None
            standin.serve(self.net.listen(self.net.base, address, port), tls)
            self.hosted[host] = standin
            self.hosted_urls[host] = base

    def _tls(self, host: str) -> ssl.SSLContext:
        """A certificate for `host`, signed by a CA the stack's programs are told to trust."""
        d = self.workdir / "tls"
        d.mkdir(exist_ok=True)
        ca_key, ca = d / "ca.key", d / "ca.pem"
        if not ca.exists():
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
                     "-subj", "/CN=stackc harness CA")
        key, csr, cert = d / f"{host}.key", d / f"{host}.csr", d / f"{host}.pem"
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={host}")
        ext = d / f"{host}.ext"
        ext.write_text(f"subjectAltName=DNS:{host}\n")
        _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                 "-days", "2", "-extfile", ext)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def _place_certificates(self) -> None:
        """What the operator places for a TLS edge, where the files say it reads it, unless a test
        placed its own: a certificate for `stack.test` from the harness's CA."""
        for cert_at, key_at in self.layout.certificates:
            if Path(cert_at).exists() and Path(key_at).exists():
                continue
            cert, key = self.certificate(self.tls_name or "stack.test")
            for made, at in ((cert, cert_at), (key, key_at)):
                Path(at).parent.mkdir(parents=True, exist_ok=True)
                Path(at).write_bytes(made.read_bytes())
                Path(at).chmod(0o600)

    def certificate(self, host: str) -> tuple[Path, Path]:
        """A certificate and key for `host` (PEM files), signed by the harness's CA, which the
        clients of `gateway()` trust: what an operator would place for a TLS edge."""
        self._tls(host)
        self.tls_name = host
        d = self.workdir / "tls"
        return d / f"{host}.pem", d / f"{host}.key"

    def client_tls(self, ciphers: Optional[str] = None, **settings) -> ssl.SSLContext:
        """A client context trusting the harness's CA (`settings`: attributes to set on it)."""
        context = ssl.create_default_context(cafile=str(self.workdir / "tls" / "ca.pem"))
        if ciphers:
            context.set_ciphers(ciphers)
        for name, value in settings.items():
            setattr(context, name, value)
        return context

    def _start_standin(self, p: Proc) -> None:
        s = StandIn(p.name, p.engine or "component", p.served, p.task, p.max_context, p.metrics, p.component_paths)
        host = self.net.hosts[p.host]
        for address, port in p.listens:
            s.serve(self.net.listen(host.ns, address, port))
        self.standins[p.name] = s
        if p.agent is not None:
            self.agents[p.name] = DrainAgent(self.net.listen(host.ns, *p.agent))

    def _spawn_drained(self, p: Proc) -> None:
        """The wrapper as its unit or service writes it, this Python for the venv's, and a stand-in
        process where the engine would be."""
        assert p.drain_argv, f"{p.name} has no drain wrapper"
        host, port = p.listens[0]
        argv = [sys.executable, *p.drain_argv[1:], sys.executable, "-m", "tests.harness.standin_process",
                "--name", p.name, "--listen", f"{host}:{port}", "--kind", p.engine or "vllm",
                "--models", ",".join(sorted(p.served or ())), "--delay", str(self.delay),
                "--log", str(self.workdir / f"{p.name}.requests")]
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
        self.processes[p.name] = self.net.popen(self.net.hosts[p.host].ns, argv, env, self.workdir / f"{p.name}.log", ROOT)

    def served_log(self, name: str) -> list[dict]:
        path = self.workdir / f"{name}.requests"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def _forward(self, pub) -> None:
        """The Docker host's published port, to the container's."""
        target = self.net.hosts[pub.service]
        listener = self.net.listen(self.net.base, pub.host_ip or "0.0.0.0", pub.host_port)
        net = self.net

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def accept() -> None:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    upstream = net.connect(net.base, target.bridge_ip, pub.container_port, timeout=5)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

        thread = threading.Thread(target=accept, daemon=True, name=f"publish-{pub.host_port}")
        thread.start()
        self._listeners.append((listener, thread))

    def _spawn(self, p: Proc) -> None:
        home = self.workdir / "home" / p.name
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
               **p.env}
        if p.argv and "litellm" in " ".join(p.argv):
            ca = self.workdir / "tls" / "ca.pem"
            if ca.exists():  # the internet's certificates, as the machine's trust store would hold them
                env.update({"SSL_CERT_FILE": str(ca), "SSL_VERIFY": str(ca), "REQUESTS_CA_BUNDLE": str(ca)})
        self.processes[p.name] = self.net.popen(self.net.hosts[p.host].ns, p.argv, env, self.workdir / f"{p.name}.log",
                                                self.workdir)

    def _wait_ready(self, p: Proc) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        checks = list(p.health)
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None and name not in self.stopped:
                    raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.logs()}")
            pending = []
            for url in checks:
                try:
                    r = self.get(url, host=p.host, timeout=3)
                    if r.status != 200:
                        pending.append(url)
                except OSError:
                    pending.append(url)
            if p.ollama_show:
                r = self.request("POST", f"http://{_http_host(p.listens[0])}/api/show", {"model": p.ollama_show},
                                 host=p.host)
                if r.status != 200:
                    pending.append(f"ollama show {p.ollama_show}")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{p.name}: {pending} did not answer in {START_TIMEOUT_S}s\n{self.logs()}")
            time.sleep(0.3)

    # ---- using

    def request(self, method: str, url: str, body: Optional[dict] = None, headers: Optional[dict] = None,
                host: str = "base", timeout: float = 60, tls: Optional[ssl.SSLContext] = None) -> Reply:
        """An HTTP request from `host` (a namespace key, or `base`: the Docker host or the LAN);
        over TLS for an `https://` URL, checked against `tls` (default: the harness's CA, for the
        name `certificate()` made)."""
        u = urllib.parse.urlsplit(url)
        ns = self.net.base if host == "base" else self.net.hosts[host].ns
        start = time.monotonic()
        conn = _Connection(self.net, ns, u.hostname, u.port or 80, timeout)
        if u.scheme == "https":
            conn.wrap = (tls or self.client_tls(), self.tls_name or u.hostname)
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"} if data else {}
        h.update(headers or {})
        try:
            conn.request(method, u.path + (f"?{u.query}" if u.query else ""), data, h)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            status = response.status
        finally:
            conn.close()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        return Reply(status, parsed, text, time.monotonic() - start)

    def get(self, url: str, host: str = "base", timeout: float = 60, headers: Optional[dict] = None) -> Reply:
        return self.request("GET", url, None, headers, host, timeout)

    @property
    def api_key(self) -> Optional[str]:
        key = (self.config.get("general_settings") or {}).get("master_key")
        if not key:
            return None
        return compose.secret_value(key.split("/", 1)[1]) if key.startswith("os.environ/") else key

    def gateway(self, method: str, path: str, body: Optional[dict] = None, key: Optional[str] = "default",
                headers: Optional[dict] = None, timeout: float = 60) -> Reply:
        """A client's request to the gateway, where the files say clients reach it."""
        host, address, port = self.layout.gateway
        h = dict(headers or {})
        key = self.api_key if key == "default" else key
        if key:
            h["Authorization"] = f"Bearer {key}"
        scheme = "https" if self.layout.gateway_tls else "http"
        return self.request(method, f"{scheme}://{address}:{port}{path}", body, h, host, timeout)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for proc in self.processes.values():
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        for s in [*self.standins.values(), *self.hosted.values(), *self.agents.values()]:
            s.stop()
        for server in self._servers:
            server.stop()
        for listener, thread in self._listeners:
            netns.retire(listener, thread)
        if self.net is not None:
            self.net.close()

    def __enter__(self) -> "RunningStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Connection(http.client.HTTPConnection):
    """An HTTP connection whose socket is made inside a namespace."""

    def __init__(self, net: netns.Network, ns: str, host: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._net, self._ns = net, ns
        self.wrap: Optional[tuple[ssl.SSLContext, str]] = None  # TLS: the context and the server's name

    def connect(self) -> None:
        address = self.host
        if not address.replace(".", "").isdigit():
            address = _resolve(self._net, self._ns, address)
        self.sock = self._net.connect(self._ns, address, self.port, self.timeout)
        if self.wrap is not None:
            context, name = self.wrap
            self.sock = context.wrap_socket(self.sock, server_hostname=name)


def _resolve(net: netns.Network, ns: str, name: str) -> str:
    hosts = (netns.ETC_NETNS / ns / "hosts").read_text().split("\n")
    for line in hosts:
        parts = line.split()
        if len(parts) >= 2 and name in parts[1:]:
            return parts[0]
    raise OSError(f"{name} does not resolve in {ns}")


def _http_host(listen: tuple[str, int]) -> str:
    host, port = listen
    return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def _openssl(*args) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def stack_root(out: Path) -> Path:
    """What runs in an output directory: itself, or a terraform module's `stack/` (the nodes'
    systemd files, or one node's compose stack)."""
    stack = out / "stack"
    if (out / "main.tf").exists() and stack.is_dir():
        only = stack / "node-0"
        return only if (only / "compose.yaml").exists() else stack
    return out
