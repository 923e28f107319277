"""Run a compiled stack's router and gateway for real on 127.0.0.1, without containers.

The spec is compiled by stackc as for any target; the router (HAProxy, Debian's package) and
the gateway (LiteLLM, its PyPI release) then run from the generated configuration, with every
symbolic address resolved to a loopback port: each engine replica and each hosted API is a
`FakeBackend`. Only the listening addresses change (each `Listen` becomes a free port on
127.0.0.1); everything else is the bytes a target would write. Outbound HTTP from the gateway
goes to a proxy address that refuses connections, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from stackc import output
from stackc.ir import Deployment, Endpoint, Listen, SecretRef, ServerPool
from stackc.pipeline import analyse, open_spec

from .fake_openai import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_BIN = ROOT / ".venv-gateway" / "bin" / "litellm"
API_KEY = "sk-loopback-test-key"
HOSTED_KEY = "hosted-loopback-key"
START_TIMEOUT_S = 120


def require_tools() -> tuple[str, Path]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (tests/tools.sh installs Debian's package as root)")
    if not GATEWAY_BIN.exists():
        pytest.skip(f"the gateway is not installed at {GATEWAY_BIN} (tests/tools.sh installs it with hashes)")
    return haproxy, GATEWAY_BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    body: Any
    text: str


class Loopback:
    """A running stack: `fakes` by service name (engine replicas) and `hosted` by overflow name."""

    def __init__(self, workdir: Path, spec_text: str, hosted: list[str]):
        self.workdir = workdir
        self.hosted = {name: FakeBackend(name).start() for name in hosted}
        text = spec_text.format(**{f"{name}_port": fake.port for name, fake in self.hosted.items()})
        self.deployment = compile_spec(workdir, text)
        self.fakes: dict[str, FakeBackend] = {}
        self.ports: dict[tuple[str, int], int] = {}
        self.processes: list[subprocess.Popen] = []
        for s in self.deployment.services:
            if s.role == "engine":
                fake = FakeBackend(s.name).start()
                self.fakes[s.name] = fake
                self.ports[(s.name, s.port or 0)] = fake.port
        gateway = next(s for s in self.deployment.services if s.role == "gateway")
        self.gateway_port = self.ports[(gateway.name, gateway.port or 0)] = free_port()

    # ---- addresses

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Endpoint):
            key = (value.service, value.port)
            if key not in self.ports:
                self.ports[key] = free_port()
            port = self.ports[key]
            return f"127.0.0.1:{port}" if value.form == "address" else f"http://127.0.0.1:{port}{value.path}"
        if isinstance(value, SecretRef):
            return {"BURST_API_KEY": HOSTED_KEY}.get(value.name, API_KEY)
        if isinstance(value, ServerPool):
            return [["server", name, self.resolve(Endpoint(name, value.port, form="address")), "check"]
                    for name in value.replicas]
        if isinstance(value, Listen):  # the router listens on a free loopback port instead of its own
            return self.resolve(Endpoint("router", value.port, form="address"))
        raise TypeError(value)

    def _config(self, path: str) -> Any:
        (f,) = [f for f in self.deployment.files if f.path == path]
        return output.resolve(f.content, self.resolve)

    # ---- processes

    def start(self) -> "Loopback":
        haproxy, litellm = require_tools()
        router = next((s for s in self.deployment.services if s.role == "router"), None)
        if router is not None:
            sections = self._config("router/haproxy.cfg")
            cfg = self.workdir / "haproxy.cfg"
            cfg.write_text(output.to_haproxy(sections))
            check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr
            self._spawn([haproxy, "-db", "-f", str(cfg)], "router")
            self._wait(f"http://{self.resolve(Endpoint('router', router.health.port, form='address'))}/healthz")
        gateway = next(s for s in self.deployment.services if s.role == "gateway")
        cfg = self.workdir / "litellm.yaml"
        cfg.write_text(output.to_yaml(self._config("gateway/config.yaml")))
        env = {k: self.resolve(v) if not isinstance(v, str) else v for k, v in gateway.env}
        env.update({"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        self._spawn([str(litellm), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(self.gateway_port)],
                    "gateway", env)
        self._wait(f"http://127.0.0.1:{self.gateway_port}/health/liveliness")
        return self

    def _spawn(self, argv: list[str], name: str, env: Optional[dict] = None) -> None:
        log = open(self.workdir / f"{name}.log", "w")
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                               env={**os.environ, **(env or {})}, start_new_session=True))

    def _wait(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    raise AssertionError(f"{p.args[0]} exited: {self.logs()}")
            try:
                urllib.request.urlopen(url, timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
        raise AssertionError(f"{url} did not answer in {START_TIMEOUT_S}s: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.workdir.glob("*.log"))

    def stop(self) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for fake in [*self.fakes.values(), *self.hosted.values()]:
            fake.stop()

    def reset(self, **behaviour) -> None:
        for fake in [*self.fakes.values(), *self.hosted.values()]:
            fake.reset(delay=0.0, fail=False, max_context=0)
        for name, settings in behaviour.items():
            for fake in self.fakes.values():
                if fake.name.startswith(name):
                    for key, value in settings.items():
                        setattr(fake, key, value)

    # ---- requests

    def chat(self, model: str, content: str = "hello", key: Optional[str] = API_KEY, stream: bool = False,
             headers: Optional[dict] = None, system: Optional[str] = None) -> Reply:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        body = {"model": model, "messages": messages, "stream": stream}
        return self.post("/v1/chat/completions", body, key, headers)

    def post(self, path: str, body: dict, key: Optional[str] = API_KEY, headers: Optional[dict] = None) -> Reply:
        h = {"Content-Type": "application/json", **(headers or {})}
        if key:
            h["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(f"http://127.0.0.1:{self.gateway_port}{path}", json.dumps(body).encode(), h)
        return _send(request)

    def get(self, path: str, key: Optional[str] = API_KEY) -> Reply:
        h = {"Authorization": f"Bearer {key}"} if key else {}
        return _send(urllib.request.Request(f"http://127.0.0.1:{self.gateway_port}{path}", headers=h))


def _send(request: urllib.request.Request) -> Reply:
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            text = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        text, status = e.read().decode(), e.code
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return Reply(status, body, text)


def served_by(reply: Reply) -> str:
    """Which fake answered: the name in `served-by:<name>` (plain or streamed)."""
    if reply.body is not None:
        return reply.body["choices"][0]["message"]["content"].split(":", 1)[1]
    pieces = []
    for line in reply.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                pieces.append((choice.get("delta") or {}).get("content") or "")
    return "".join(pieces).split(":", 1)[1]


def compile_spec(workdir: Path, text: str) -> Deployment:
    path = workdir / "stack.yaml"
    path.write_text(text)
    session = open_spec(str(path), "stack.yaml")
    unit = analyse(session, None)
    errors = [d for d in session.diagnostics + unit.diagnostics if d.is_error]
    assert not errors, errors
    assert unit.deployment is not None
    return unit.deployment
