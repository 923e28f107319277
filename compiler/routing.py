"""The router in front of each model's replicas: HAProxy, in every target that runs services
itself (compose, systemd, terraform's hosts). On Kubernetes the chart's own router takes this
role, configured with the same policy (docs/targets/helm.md): it finds the pods itself.

One HAProxy process serves every model that runs more than one replica, with a frontend port
and a backend per model, so `routing:` means the same thing on every host:

- `round-robin`: `balance roundrobin`;
- `least-load`: `balance leastconn`, the replica with the fewest requests open (a streamed
  answer counts until it ends);
- `session`: consistent hashing on the `tiering.session_key` header;
- `prefix-aware`: consistent hashing on the first `PREFIX_BYTES` of the first message
  (`content`) or prompt in the request body, so requests that share a system prompt or a
  conversation's start reach the replica whose prefix cache holds it.

Consistent hashing keeps keys where they were when a replica leaves or joins, and the
balance factor sends a key elsewhere while its replica carries more than 1.5x the average
load. Health checks take loading or failed replicas out of rotation; a connection failure or a
5xx is retried once on another replica before the gateway's overflow applies.

Why HAProxy, not the vLLM production-stack router the chart runs, outside Kubernetes: that router is published
neither on PyPI nor as a Debian package (so it could not run under systemd without containers,
nor be proven on loopback in CI), its image tags are rebuilt in place, and it has no
least-load mode. PyPI's `vllm-router` (vllm-project/router) has no release image, hashes
sessions on a fixed list of headers, and its cache-aware mode calls each replica's tokenizer
on every request. HAProxy is packaged everywhere, pinned by tag, and carries its own health
checks and Prometheus exporter. docs/tiering.md has the measurements.
"""

from __future__ import annotations

from typing import Optional

from . import images
from .ir import ConfigFile, Endpoint, Health, Listen, Metrics, Mount, ServerPool, Service

ROUTER = "router"
ROUTER_CONFIG = "router/haproxy.cfg"
CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"  # where the official image reads it
FIRST_PORT = 9000  # model k's frontend listens on FIRST_PORT + k
STATS_PORT = 8405  # /metrics (Prometheus) and /healthz
PREFIX_BYTES = 256
STREAM_TIMEOUT_S = 600
BALANCE = {
    "round-robin": ["balance", "roundrobin"],
    "least-load": ["balance", "leastconn"],
}


def wanted(engines: list[Service]) -> dict[str, list[Service]]:
    """Models that get a router: those running more than one replica (or a range)."""
    groups: dict[str, list[Service]] = {}
    for s in engines:
        groups.setdefault(s.group or s.name, []).append(s)
    return {g: members for g, members in groups.items() if len(members) > 1 or members[0].replicas.max > 1}


def router(engines: list[Service], routing: str, session_key: str) -> tuple[Optional[Service], list[ConfigFile], dict[str, Endpoint]]:
    """The router service, its config, and per routed model the endpoint the gateway uses."""
    groups = wanted(engines)
    if not groups:
        return None, [], {}
    sections: list[dict] = [
        {"section": "global", "lines": [["maxconn", "8192"], ["log", "stdout", "format", "raw", "local0", "info"]]},
        {"section": "resolvers system", "lines": [
            # replicas' names resolve at run time: a replica that is not up yet is DOWN, not fatal
            ["parse-resolv-conf"], ["hold", "valid", "10s"]]},
        {"section": "defaults", "lines": [
            ["mode", "http"], ["log", "global"], ["option", "httplog"],
            ["timeout", "connect", "5s"], ["timeout", "http-request", "60s"],
            ["timeout", "client", f"{STREAM_TIMEOUT_S}s"], ["timeout", "server", f"{STREAM_TIMEOUT_S}s"],
            ["retries", "1"], ["option", "redispatch", "1"],
            # the request stays in the buffer, so a 5xx or a dropped connection can be retried
            ["option", "http-buffer-request"],
            ["retry-on", "conn-failure", "empty-response", "500", "502", "503", "504"],
            ["default-server", "init-addr", "last,libc,none", "resolvers", "system",
             "inter", "5s", "fall", "3", "rise", "2"],
        ]},
        {"section": "frontend stats", "lines": [
            ["bind", Listen(STATS_PORT)], ["monitor-uri", "/healthz"],
            ["http-request", "use-service", "prometheus-exporter", "if", "{", "path", "/metrics", "}"]]},
    ]
    endpoints: dict[str, Endpoint] = {}
    for k, (model, replicas) in enumerate(sorted(groups.items())):
        port = FIRST_PORT + k
        endpoints[model] = Endpoint(ROUTER, port, "/v1")
        sections.append({"section": f"frontend {model}", "lines": [["bind", Listen(port)], ["default_backend", model]]})
        sections.append({"section": f"backend {model}", "lines": [
            *_balance(routing, session_key),
            *_health_check(replicas[0].health),
            ServerPool(model, tuple(r.name for r in replicas), replicas[0].port or 0,
                       replicas[0].drain.agent_port if replicas[0].drain else None),
        ]})
    service = Service(
        name=ROUTER, role="router", image=images.ROUTER_HAPROXY, port=STATS_PORT,
        health=Health(STATS_PORT, "/healthz", ("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{STATS_PORT}/healthz")),
        metrics=Metrics(STATS_PORT, "/metrics"), startup_budget_s=30,
        mounts=(Mount("file", ROUTER_CONFIG, CONFIG_PATH, read_only=True),),
    )
    return service, [ConfigFile(ROUTER_CONFIG, "haproxy", sections)], endpoints


def server_line(name: str, address: str, agent_port: Optional[int] = None) -> list[str]:
    """One replica of a backend: health-checked, and with a drain agent on `agent_port` of the
    same address asked each second whether it is stopping (`drain`: no new requests, those open
    finish; an agent that does not answer changes nothing, the health check decides)."""
    line = ["server", name, address, "check"]
    if agent_port:
        line += ["agent-check", "agent-port", str(agent_port), "agent-inter", "1s"]
    return line


def _balance(routing: str, session_key: str) -> list[list]:
    if routing in BALANCE:
        return [BALANCE[routing]]
    consistent = [["hash-type", "consistent", "sdbm", "avalanche"], ["hash-balance-factor", "150"]]
    if routing == "session":
        # no header: round robin
        return [["balance", f"hdr({session_key})"], *consistent]
    # prefix-aware: the first bytes of the first message's content (chat) or of the prompt
    # (completions), wherever the key sits in the JSON body
    prefix = f"bytes(0,{PREFIX_BYTES})"
    return [
        ["http-request", "set-var(txn.prefix)", f"req.body,regsub('^.*?\"content\"[[:space:]]*:[[:space:]]*.',),{prefix}",
         "if", "{", "req.body", "-m", "sub", '"content"', "}"],
        ["http-request", "set-var(txn.prefix)", f"req.body,regsub('^.*?\"prompt\"[[:space:]]*:[[:space:]]*.',),{prefix}",
         "unless", "{", "var(txn.prefix)", "-m", "found", "}"],
        ["balance", "hash", "var(txn.prefix)"], *consistent,
    ]


def _health_check(health: Optional[Health]) -> list[list]:
    if health is None or health.path is None:
        return []
    return [["option", "httpchk", "GET", health.path], ["http-check", "expect", "status", "200"]]
