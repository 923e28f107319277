"""The middle of the compiler tested directly, not through a target's files: the lowering
(services, GPUs, the per-model node, secrets, features), the router, the gateway's upstreams,
the systemd target's own lowering (each service's host run and the addresses between them) and
the compose target's translation of them. The snapshot tests hold the bytes; these hold the
decisions, so a changed snapshot has a reason to point at."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from stackc import routing
from stackc.ir import Endpoint, Install
from stackc.pipeline import analyse, emit, open_spec
from stackc.targets import get

from .conftest import write_spec

TWO_REPLICAS = """\
stack: v1
name: demo
hardware: {gpu: l40s, gpus_per_node: 4}
models:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, replicas: 2}
  - {name: embed, model: BAAI/bge-m3, task: embed, max_context: 8192}
gateway: {api_key: {secret: STACK_API_KEY}}
secrets: {STACK_API_KEY: {}, HF_TOKEN: {k8s: {name: hub, key: token}}}
"""

TWO_NODES = """\
stack: v1
name: demo
hardware: {gpu: l40s, gpus_per_node: 1, nodes: 2}
models:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, replicas: 2}
systemd: {node_addresses: [10.0.0.5, 10.0.0.6]}
"""


def _unit(tmp_path, text: str):
    session = open_spec(str(write_spec(tmp_path, text)))
    unit = analyse(session, None)
    assert unit.ok and unit.deployment is not None, [d.message for d in session.diagnostics + unit.diagnostics]
    return unit


def test_each_replica_gets_its_own_gpus_and_waits_for_its_download(tmp_path):
    dep = _unit(tmp_path, TWO_REPLICAS).deployment
    engines = [s for s in dep.services if s.role == "engine"]
    assert [(s.name, s.group, s.index) for s in engines] == [("chat-0", "chat", 0), ("chat-1", "chat", 1), ("embed-0", "embed", 0)]
    taken = [(s.node, i) for s in engines for i in s.gpus.indices]
    assert len(taken) == len(set(taken)), "two replicas were given one GPU"
    for s in engines:
        assert [(d.service, d.condition) for d in s.depends_on][:1] == [(f"{s.group}-download", "completed")]
        assert s.engine is not None and s.port == 8000 and s.image.tag and ":latest" not in s.image.ref
    assert [(m.name, m.replicas, m.download) for m in dep.models] == [
        ("chat", ("chat-0", "chat-1"), "chat-download"), ("embed", ("embed-0",), "embed-download")]
    assert [(n.name, n.index, n.gpu_count) for n in dep.nodes] == [("node-0", 0, 4)]


def test_the_download_alone_reads_the_hub_token(tmp_path):
    dep = _unit(tmp_path, TWO_REPLICAS).deployment
    readers = sorted(s.name for s in dep.services for key, _ in s.env if key == "HF_TOKEN")
    assert readers == ["chat-download", "embed-download"]
    assert [d.name for d in dep.secrets] == sorted(d.name for d in dep.secrets)
    assert {"HF_TOKEN", "STACK_API_KEY"} <= {d.name for d in dep.secrets}
    assert not hasattr(dep.secrets[0], "k8s_name"), "a Kubernetes mapping in the core IR"


def test_the_core_ir_has_no_platform_fields(tmp_path):
    dep = _unit(tmp_path, TWO_REPLICAS).deployment
    assert not {"cluster", "hosts", "provisioning"} & set(vars(dep))
    assert not {f.name for f in dep.features} & {"k8s-gpu-label-unknown", "k8s-cache-read-write-once",
                                                 "hosts-address-unknown", "service-user", "compose-boot-multi-node"}


def test_the_router_fronts_only_models_with_several_replicas(tmp_path):
    dep = _unit(tmp_path, TWO_REPLICAS).deployment
    engines = [s for s in dep.services if s.role == "engine"]
    router, files, routed = routing.router(engines, "least-load", "x-session-id")
    assert router is not None and router.name == routing.ROUTER and list(routed) == ["chat"]
    assert routed["chat"] == Endpoint(routing.ROUTER, routing.FIRST_PORT, "/v1")
    backends = [s for s in files[0].content if s["section"] == "backend chat"]
    pool = backends[0]["lines"][-1]
    assert pool.replicas == ("chat-0", "chat-1") and pool.port == 8000 and pool.agent_port == 8100
    assert ["balance", "leastconn"] in backends[0]["lines"]
    alone = [s for s in engines if s.group == "embed"]
    assert routing.router(alone, "least-load", "x-session-id") == (None, [], {})


def test_the_gateway_sends_each_served_name_to_the_router_or_the_one_replica(tmp_path):
    dep = _unit(tmp_path, TWO_REPLICAS).deployment
    config = next(f for f in dep.files if f.path.startswith("gateway/"))
    upstream = {m["model_name"]: m["litellm_params"]["api_base"] for m in config.content["model_list"]}
    assert upstream == {"chat": Endpoint(routing.ROUTER, routing.FIRST_PORT, "/v1"), "embed": Endpoint("embed-0", 8000, "/v1")}
    gateway = dep.service("gateway")
    assert [p.container_port for p in gateway.published] == [4000] and dep.gateway_port == 8080


def test_host_runs_bind_where_their_clients_are(tmp_path):
    """On two servers: the replica beside the gateway listens on loopback, the other on its
    node's private address, and the router reaches each where it listens."""
    from stackc.targets.systemd.runs import endpoint_address

    unit = _unit(tmp_path, TWO_NODES)
    dep = get("systemd").prepare(unit.deployment, unit.plan)
    services = {s.name: s for s in dep.services}
    assert tuple(map(str, dep.hosts.node_addresses)) == ("10.0.0.5", "10.0.0.6")  # parsed once, typed
    front = services["gateway"].node
    for replica in ("chat-0", "chat-1"):
        run = dep.hosts.run(replica)
        expected = "127.0.0.1" if services[replica].node == front else str(dep.hosts.node_addresses[dep.node(services[replica].node).index])
        assert (str(run.bind), run.port, run.on_every_interface) == (expected, 8000, False)
        host, port = endpoint_address(Endpoint(replica, 8000), services["router"], services, dep.hosts)
        assert (host, port) == (expected if services["router"].node != services[replica].node else "127.0.0.1", 8000)
    gateway = dep.hosts.run("gateway")  # published: on every interface, and reached on loopback beside it
    assert gateway.on_every_interface and str(gateway.local_address()) == "127.0.0.1" and gateway.port == 8080
    vllm = dep.hosts.run("chat-0")  # behind the router: the drain wrapper from vLLM's venv, then vLLM itself
    engine = vllm.argv[vllm.argv.index("--") + 1:]
    assert not vllm.container and vllm.argv[0] == "/opt/stackc/vllm/bin/python3" and engine[:2] == ("/opt/stackc/vllm/bin/vllm", "serve")
    assert "CUDA_VISIBLE_DEVICES" in dict(vllm.env) and dict(vllm.ports) == {8000: 8000, 8100: 8100}
    assert any(i.kind == "venv" and i.lock for i in vllm.installs) and Install("apt", "curl") in vllm.installs
    download = dep.hosts.run("chat-download")
    assert download.container and download.argv[0] == "/usr/bin/podman" and download.container_name == "demo-chat-download"


def test_a_host_stack_without_addresses_is_the_systemd_targets_finding(tmp_path):
    unit = _unit(tmp_path, TWO_NODES.replace("systemd: {node_addresses: [10.0.0.5, 10.0.0.6]}\n", ""))
    assert "hosts-address-unknown" not in {f.name for f in unit.deployment.features}
    files, diags = emit(unit, "systemd", "stack.yaml")
    assert files is None and [(d.code, d.span.line) for d in diags] == [("SC607", 3)]


@pytest.fixture
def compose(tmp_path):
    unit = _unit(tmp_path, TWO_REPLICAS)
    files, diags = emit(unit, "compose", "stack.yaml")
    assert files is not None and [d.code for d in diags] == ["SC716"]  # the gateway, published without TLS
    return unit.deployment, yaml.safe_load(files["compose.yaml"])


def test_compose_runs_every_service_of_the_ir_by_its_name(compose):
    dep, doc = compose
    assert sorted(doc["services"]) == sorted(s.name for s in dep.services)
    for s in dep.services:
        assert doc["services"][s.name]["image"] == s.image.ref


def test_compose_publishes_only_the_gateway(compose):
    dep, doc = compose
    published = {name: svc["ports"] for name, svc in doc["services"].items() if svc.get("ports")}
    assert list(published) == ["gateway"], published
    assert all(isinstance(p, (str, dict)) for p in published["gateway"])


def test_compose_gates_engines_on_their_downloads(compose):
    dep, doc = compose
    for s in dep.services:
        if s.role == "engine":
            depends = doc["services"][s.name]["depends_on"]
            assert depends[f"{s.group}-download"]["condition"] == "service_completed_successfully"
            devices = doc["services"][s.name]["deploy"]["resources"]["reservations"]["devices"]
            assert [d["device_ids"] for d in devices] == [[str(i) for i in s.gpus.indices]]


def test_a_target_gets_a_deployment_of_its_own_and_the_core_stays_as_it_was(tmp_path):
    unit = _unit(tmp_path, TWO_REPLICAS)
    before = replace(unit.deployment)
    helm = get("helm").prepare(unit.deployment, unit.plan)
    assert helm.cluster.secret_ref("HF_TOKEN") == ("hub", "token")
    assert helm.cluster.secret_ref("STACK_API_KEY") == ("demo-secrets", "STACK_API_KEY")
    assert unit.deployment == before and type(unit.deployment).__name__ == "Deployment"
    assert helm.services == unit.deployment.services


TLS = TWO_REPLICAS.replace("gateway: {api_key: {secret: STACK_API_KEY}}",
                           "gateway: {api_key: {secret: STACK_API_KEY}, ui: open-webui, port: 443, ui_port: 8443,\n"
                           "          tls: {cert: /etc/tls/llm.crt, key: /etc/tls/llm.key}}")


def test_tls_puts_the_edge_in_front_and_publishes_nothing_else(tmp_path):
    dep = _unit(tmp_path, TLS).deployment
    published = {s.name: [(p.host_port, p.container_port) for p in s.published] for s in dep.services if s.published}
    assert published == {"edge": [(443, 8443), (8443, 8444)]}  # not the gateway, not the UI
    edge = next(s for s in dep.services if s.role == "edge")
    assert {(m.source, m.target, m.read_only) for m in edge.mounts if m.kind == "credential"} == {
        ("/etc/tls/llm.crt", "gateway.pem", True), ("/etc/tls/llm.key", "gateway.pem.key", True)}  # by path: never read
    config = next(f for f in dep.files if f.path == "edge/haproxy.cfg").content
    frontends = {c["section"]: c["lines"] for c in config if c["section"].startswith("frontend ")}
    assert set(frontends) == {"frontend health", "frontend gateway", "frontend ui"}
    for name in ("frontend gateway", "frontend ui"):
        bind = next(line for line in frontends[name] if line[0] == "bind")
        assert bind[2:4] == ["ssl", "crt"]
    assert any("metrics" in " ".join(map(str, line)) and "deny" in line for line in frontends["frontend gateway"])


@pytest.mark.parametrize("target, codes", [("compose", []), ("systemd", []), ("helm", [])])
def test_tls_is_built_where_the_target_terminates_it(tmp_path, target, codes):
    files, diags = emit(_unit(tmp_path, TLS), target, "stack.yaml")
    assert [d.code for d in diags if d.is_error] == codes and (files is None) == bool(codes)
    assert "SC716" not in {d.code for d in diags}  # TLS asked for: no plain-HTTP warning anywhere


@pytest.mark.parametrize("target, severity", [("compose", "warning"), ("systemd", "warning"), ("terraform", "error"),
                                              ("helm", None)])
def test_a_plain_http_gateway_is_a_warning_where_published_and_an_error_on_a_public_address(tmp_path, target, severity):
    spec = TWO_REPLICAS if target != "terraform" else TWO_REPLICAS.replace(
        "gpus_per_node: 4}", "gpus_per_node: 4, provider: aws, region: us-east-1}")
    files, diags = emit(_unit(tmp_path, spec), target, "stack.yaml")
    assert (files is None) == (severity == "error"), diags
    plain = [d for d in diags if d.code == "SC716"]
    assert [d.severity.value for d in plain] == ([severity] if severity else [])
    if severity:
        assert "gateway.tls" in plain[0].help and plain[0].span.line == 7
    if target == "terraform":  # with TLS the same cloud stack builds, and says nothing about plain HTTP
        tls = spec.replace("gateway: {api_key: {secret: STACK_API_KEY}}", "gateway: {api_key: {secret: STACK_API_KEY}, tls: {}}")
        files, diags = emit(_unit(tmp_path, tls), target, "stack.yaml")
        assert files is not None and "SC716" not in {d.code for d in diags}, diags


def test_on_a_host_the_edge_reads_its_certificate_as_a_systemd_credential(tmp_path):
    files, diags = emit(_unit(tmp_path, TLS), "systemd", "stack.yaml")
    assert files is not None, diags
    unit = files["units/demo-edge.service"].decode()
    assert "LoadCredential=gateway.pem:/etc/tls/llm.crt\n" in unit and "LoadCredential=gateway.pem.key:/etc/tls/llm.key\n" in unit
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in unit  # gateway.port 443
    config = files["config/edge/haproxy.cfg"].decode()
    assert 'bind 0.0.0.0:443 ssl crt "${CREDENTIALS_DIRECTORY}/gateway.pem"' in config
    assert "bind 127.0.0.1:8406" in config  # its health check stays on loopback
    gateway = files["units/demo-gateway.service"].decode()
    assert "--host 127.0.0.1" in gateway and "0.0.0.0" not in gateway
