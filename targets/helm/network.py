"""Who reaches what on the cluster: the gateway's Ingress (`gateway.tls`) and the NetworkPolicies.

- The Ingress routes only the OpenAI API (`/v1`) to the gateway, and `/` to the chat UI where
  there is one. The gateway's `/metrics/`, `/key/*` and the other admin routes are never routed:
  the metrics carry end-user labels, and Prometheus scrapes them inside the cluster.
- The engines answer only the chart's router and the cluster's Prometheus: no other pod can call a
  model and skip the gateway's key, limits and overflow accounting. The router answers only the
  gateway and Prometheus.
- With an Ingress, the gateway and the UI answer only the ingress controller's pods (the UI also
  calls the gateway) and Prometheus. Without one they stay ClusterIP Services that in-cluster
  clients call, so no policy closes them.

Pod labels are the production-stack chart's (its `_helpers.tpl`, chart 0.1.12):
`app.kubernetes.io/instance: <release>` with `app.kubernetes.io/component: serving-engine` on
every engine pod and `router` on the router's.
"""

from __future__ import annotations

from typing import Any, Optional

from stackc.ir import Service
from stackc.routing import STREAM_TIMEOUT_S

from . import chart
from .cluster import ClusterDeployment, Ingress
from .objects import RELEASE, meta, selector

API_PATH = "/v1"  # the OpenAI API's prefix: what clients are given, and all the Ingress routes to the gateway
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server (Kubernetes 1.21+)


def chart_pods(component: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": component}}


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: name}}}


def _backend(s: Service) -> dict[str, Any]:
    return {"service": {"name": f"{RELEASE}-{s.name}", "port": {"number": s.port}}}


def ingress(ing: Ingress, gateway: Service, ui: Optional[Service]) -> dict[str, Any]:
    paths = [{"path": API_PATH, "pathType": "Prefix", "backend": _backend(gateway)}]
    if ui is not None:
        paths.append({"path": "/", "pathType": "Prefix", "backend": _backend(ui)})
    rule: dict[str, Any] = {"host": ing.host} if ing.host else {}
    rule["http"] = {"paths": paths}
    tls: dict[str, Any] = {"hosts": [ing.host]} if ing.host else {}
    tls["secretName"] = ing.secret
    annotations = {
        # ingress-nginx (others ignore these): a streamed answer may take minutes, and a long prompt
        # is larger than its 1 MiB default body
        "nginx.ingress.kubernetes.io/proxy-read-timeout": str(STREAM_TIMEOUT_S),
        "nginx.ingress.kubernetes.io/proxy-send-timeout": str(STREAM_TIMEOUT_S),
        "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-body-size": "64m",
    }
    if ing.issuer:
        annotations["cert-manager.io/cluster-issuer"] = ing.issuer
    spec: dict[str, Any] = {"ingressClassName": ing.class_name} if ing.class_name else {}
    spec.update({"tls": [tls], "rules": [rule]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {**meta(gateway.name, gateway.name), "annotations": annotations}, "spec": spec}


def _policy(name: str, component: str, pods: dict[str, Any], port: int, sources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(name, component),
            "spec": {"podSelector": pods, "policyTypes": ["Ingress"],
                     "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}]}}


def policies(dep: ClusterDeployment, gateway: Optional[Service], ui: Optional[Service]) -> list[dict[str, Any]]:
    """The NetworkPolicies of one deployment: engines, router, and with an Ingress the gateway and UI."""
    assert dep.cluster is not None
    c = dep.cluster
    prometheus = _namespace(c.prometheus_namespace)
    router = {"podSelector": chart_pods("router")}
    callers = [{"podSelector": {"matchLabels": selector(gateway.name)}}] if gateway is not None else []
    out = [
        _policy("engines", "serving-engine", chart_pods("serving-engine"), chart.CONTAINER_PORT, [router, prometheus]),
        _policy("router", "router", chart_pods("router"), chart.ROUTER_CONTAINER_PORT, [*callers, prometheus]),
    ]
    if c.ingress is not None and gateway is not None and gateway.port is not None:
        controller = _namespace(c.ingress_namespace)
        ui_pods = [{"podSelector": {"matchLabels": selector(ui.name)}}] if ui is not None else []
        out.append(_policy(gateway.name, gateway.name, {"matchLabels": selector(gateway.name)}, gateway.port,
                           [controller, *ui_pods, prometheus]))
        if ui is not None and ui.port is not None:
            out.append(_policy(ui.name, ui.name, {"matchLabels": selector(ui.name)}, ui.port, [controller]))
    return out
