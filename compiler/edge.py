"""The edge: what clients reach when the spec asks for TLS (`gateway.tls`). One HAProxy process
terminates TLS for the gateway and the chat UI, with the certificate and key the operator placed
on the host (stackc names the files, never reads or writes them), and forwards plain HTTP to
them on the stack's own network. The gateway and the UI are then published only through it.

The edge also keeps the gateway's `/metrics` off the public port: the metrics carry end-user
labels (`end_user`, `user_email`, `hashed_api_key`), and the stack's Prometheus scrapes the
gateway directly, inside the stack.

HAProxy because the stack already runs it as the router (the same pinned image, the same
config writer), it terminates TLS well, and it is packaged everywhere.
"""

from __future__ import annotations

from typing import Optional

from . import images
from .ir import ConfigFile, Credential, Dependency, Health, Listen, Mount, PortBinding, ServerPool, Service
from .routing import STREAM_TIMEOUT_S

EDGE = "edge"
EDGE_CONFIG = "edge/haproxy.cfg"
CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"  # where the official image reads it
CERT = "gateway.pem"  # HAProxy loads `<crt>.key` beside a PEM that holds no key
GATEWAY_TLS_PORT = 8443
UI_TLS_PORT = 8444
# /healthz, inside the stack only; not the router's 8405 (routing.STATS_PORT): on one host they share
# loopback, and two HAProxy processes bound to one port (SO_REUSEPORT) would answer each other's checks
HEALTH_PORT = 8406


def edge(tls, gateway: Service, gateway_port: int, ui: Optional[Service], ui_port: int
         ) -> tuple[Service, list[ConfigFile]]:
    """The edge service and its config, for `tls` (the spec's `gateway.tls`)."""
    assert gateway.port is not None
    tls_bind = ["ssl", "crt", Credential(CERT), "alpn", "http/1.1"]
    sections: list[dict] = [
        {"section": "global", "lines": [
            ["maxconn", "8192"], ["log", "stdout", "format", "raw", "local0", "info"],
            # TLS 1.2 and 1.3 only; no session tickets (their key never rotates in one process)
            ["ssl-default-bind-options", "ssl-min-ver", "TLSv1.2", "no-tls-tickets"]]},
        {"section": "resolvers system", "lines": [["parse-resolv-conf"], ["hold", "valid", "10s"]]},
        {"section": "defaults", "lines": [
            ["mode", "http"], ["log", "global"], ["option", "httplog"], ["option", "forwardfor"],
            ["timeout", "connect", "5s"], ["timeout", "http-request", "60s"],
            ["timeout", "client", f"{STREAM_TIMEOUT_S}s"], ["timeout", "server", f"{STREAM_TIMEOUT_S}s"],
            ["default-server", "init-addr", "last,libc,none", "resolvers", "system"]]},
        {"section": "frontend health", "lines": [
            ["bind", Listen(HEALTH_PORT)], ["monitor-uri", "/healthz"],
            # healthy once the gateway behind it answers: until then a client would get a 503
            ["monitor", "fail", "if", "{", "nbsrv(gateway)", "lt", "1", "}"]]},
        {"section": "frontend gateway", "lines": [
            ["bind", Listen(GATEWAY_TLS_PORT), *tls_bind],
            ["http-request", "set-header", "X-Forwarded-Proto", "https"],
            # the gateway's metrics are for the stack's Prometheus, which scrapes it directly; any
            # path with a `metrics` segment, however it is spelled (`//metrics`, `/v1/../Metrics`)
            ["http-request", "deny", "deny_status", "404", "if", "{", "path_reg", "-i", "(^|/)metrics([/%]|$)", "}"],
            ["default_backend", "gateway"]]},
        {"section": "backend gateway", "lines": [*_checked(gateway), ServerPool(gateway.name, (gateway.name,), gateway.port)]},
    ]
    published = [PortBinding(gateway_port, GATEWAY_TLS_PORT)]
    if ui is not None and ui.port is not None:
        sections += [
            {"section": "frontend ui", "lines": [
                ["bind", Listen(UI_TLS_PORT), *tls_bind],
                ["http-request", "set-header", "X-Forwarded-Proto", "https"],
                ["default_backend", "ui"]]},
            {"section": "backend ui", "lines": [*_checked(ui), ServerPool(ui.name, (ui.name,), ui.port)]},
        ]
        published.append(PortBinding(ui_port, UI_TLS_PORT))
    service = Service(
        name=EDGE, role="edge", image=images.ROUTER_HAPROXY, port=HEALTH_PORT, published=tuple(published),
        health=Health(HEALTH_PORT, "/healthz", ("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{HEALTH_PORT}/healthz")),
        startup_budget_s=30,
        # its health says the gateway behind it answers: it starts once the gateway does
        depends_on=(Dependency(gateway.name, "healthy"),),
        mounts=(Mount("file", EDGE_CONFIG, CONFIG_PATH, read_only=True),
                Mount("credential", tls.cert, CERT, read_only=True),
                Mount("credential", tls.key, CERT + ".key", read_only=True)),
    )
    return service, [ConfigFile(EDGE_CONFIG, "haproxy", sections)]


def _checked(service: Service) -> list[list[str]]:
    """An HTTP health check on the service's own health path: it takes traffic once it answers."""
    if service.health is None or service.health.path is None:
        return []
    return [["option", "httpchk", "GET", service.health.path], ["http-check", "expect", "status", "200"]]
