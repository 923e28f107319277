"""TLS at the edge, for real on loopback: the compose target's edge (HAProxy, with its emitted
config) in front of the real gateway and a stand-in replica, with a certificate the test makes
and places where compose.yaml mounts it from, as an operator would. Everything the test connects
to is read from the emitted files; the test only makes the certificate."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
import yaml

from .loopback import Loopback, require_tools, served_by

SPEC = """\
stack: v1
name: edge
hardware: {gpu: l40s, gpus_per_node: 1}
models:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}
gateway:
  port: 8443
  api_key: {secret: STACK_API_KEY}
  tls: {cert: certs/chat.crt, key: certs/chat.key}
observability: {metrics: true}
secrets: {STACK_API_KEY: {}}
"""
NAME = "chat.example.test"  # the name on the certificate, as clients would know the host


@pytest.fixture(scope="module", params=["compose", "systemd"])
def edge(tmp_path_factory, request):
    require_tools()
    stack = Loopback(tmp_path_factory.mktemp(f"edge-tls-{request.param}"), SPEC, request.param)
    # where the emitted files say the edge reads its certificate and key (compose.yaml's bind
    # mounts, the unit's LoadCredential=): the operator's files, made here
    [(crt_at, key_at)] = stack.stack.layout.certificates
    assert crt_at.endswith("certs/chat.crt") and key_at.endswith("certs/chat.key")
    assert Path(crt_at).is_relative_to(stack.workdir)  # the server's path, kept in the test's own directory
    cert, key = stack.stack.certificate(NAME)
    for made, at in ((cert, crt_at), (key, key_at)):
        placed = Path(at)
        placed.parent.mkdir(parents=True, exist_ok=True)
        placed.write_bytes(made.read_bytes())
        placed.chmod(0o600)
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    yield stack
    stack.stop()


def _published(stack) -> dict[str, list[str]]:
    """What listens beyond loopback, by service, read from the emitted files: compose's published
    ports, or on a host every `0.0.0.0` a unit or the HAProxy config it reads names."""
    out = stack.stack.root
    if (out / "compose.yaml").exists():
        doc = yaml.safe_load((out / "compose.yaml").read_text())
        return {name: [str(p) for p in s["ports"] if not str(p).startswith("127.0.0.1:")]
                for name, s in doc["services"].items() if s.get("ports")}
    found: dict[str, list[str]] = {}
    for unit in sorted((out / "units").glob("*.service")):
        text = unit.read_text()
        config = re.search(r" -f /etc/stackc/[^/]+/(\S+)", text)
        if config:
            text += (out / "config" / config.group(1)).read_text()
        wide = re.findall(r"^.*0\.0\.0\.0.*$", text, re.M)
        if wide:
            found[unit.stem.split("-", 1)[1]] = wide
    return found


def test_only_the_edge_is_published_and_the_gateway_answers_over_tls(edge):
    stack = edge
    published = {name: ports for name, ports in _published(stack).items() if ports}
    assert list(published) == ["edge"], published
    if stack.stack.layout.kind == "systemd":  # each of its wide binds terminates TLS
        assert all(" ssl crt " in line for line in published["edge"]), published
    assert stack.stack.layout.gateway_tls
    models = stack.get("/v1/models")
    assert models.status == 200 and "chat" in {m["id"] for m in models.body["data"]}
    replies = [stack.chat("chat") for _ in range(5)]
    assert [r.status for r in replies] == [200] * 5 and {served_by(r) for r in replies} == {"chat-0"}
    assert stack.get("/v1/models", key=None).status == 401  # TLS is not a key: the gateway still asks for one


def test_metrics_are_not_served_on_the_public_port(edge):
    stack = edge
    for path in ("/metrics", "/metrics/", "//metrics/", "/./metrics/", "/v1/../metrics/", "/metrics%2F", "/METRICS"):
        reply = stack.get(path)
        assert reply.status == 404 and "litellm" not in reply.text.lower(), (path, reply.status, reply.text[:200])
    # Prometheus still scrapes the gateway inside the stack
    prom = stack.stack.layout.prometheus
    assert prom is not None
    host, address, port = prom
    targets = stack.stack.get(f"http://{address}:{port}/api/v1/targets", host=host).body["data"]["activeTargets"]
    assert any(t["labels"]["job"] == "gateway" for t in targets)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")  # an old client, on purpose
def test_plain_http_and_old_tls_get_no_answer(edge):
    stack = edge
    net, (host, address, port) = stack.stack.net, stack.stack.layout.gateway
    sock = net.connect(net.base if host == "base" else net.hosts[host].ns, address, port, 5)
    try:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: chat\r\n\r\n")
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    finally:
        sock.close()
    assert b"HTTP/" not in answer and b"model" not in answer
    tls12 = stack.stack.client_tls(maximum_version=ssl.TLSVersion.TLSv1_2)
    assert stack.stack.request("GET", f"https://{address}:{port}/health/liveliness", host=host, tls=tls12).status == 200
    # a client that would speak TLS 1.0 or 1.1 (its own floor lowered to allow them) is refused by the edge
    old = stack.stack.client_tls("DEFAULT:@SECLEVEL=0", maximum_version=ssl.TLSVersion.TLSv1_1,
                                 minimum_version=ssl.TLSVersion.TLSv1)
    with pytest.raises(ssl.SSLError) as refused:
        stack.stack.request("GET", f"https://{address}:{port}/v1/models", host=host, tls=old)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)  # the server refused it, not this client
    wrong = stack.stack.client_tls()  # a client that expects another host's certificate refuses this one
    stack.stack.tls_name, name = "other.example.test", stack.stack.tls_name
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            stack.stack.request("GET", f"https://{address}:{port}/v1/models", host=host, tls=wrong)
    finally:
        stack.stack.tls_name = name
