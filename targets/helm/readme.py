"""The README.md next to `values.yaml`: the pinned install command and the secrets to create."""

from __future__ import annotations

from stackc import output

from . import chart, network
from .cluster import ClusterDeployment


def render(dep: ClusterDeployment, spec_name: str, secrets: list[tuple[str, str]]) -> str:
    c = dep.cluster
    assert c is not None
    by_secret: dict[str, list[str]] = {}
    for name, key in secrets:
        by_secret.setdefault(name, []).append(key)
    decl = {c.secret_ref(d.name): d for d in dep.secrets}
    lines = [
        f"# {dep.project}: install on Kubernetes",
        "",
        f"{output.generated_by(spec_name, dep.environment)} for the `{chart.NAME}` chart {chart.VERSION}.",
        "Edit the spec and rebuild; do not edit these files.",
        "",
        "## 1. Prerequisites",
        "",
        "- NVIDIA GPU nodes labelled " + (f"`{c.gpu_label}={c.gpu_label_value}`" if c.gpu_label_value else f"`{c.gpu_label}`")
        + (f", the `{c.runtime_class}` RuntimeClass" if c.runtime_class else "")
        + " and the `nvidia.com/gpu` resource (the NVIDIA GPU Operator provides all three).",
        "- The Prometheus Operator CRDs (`ServiceMonitor`) where monitoring is on, and KEDA where a model autoscales"
        f" (it queries `{c.prometheus_url}`).",
        "",
        "## 2. Secrets",
        "",
    ]
    if by_secret:
        lines += ["Create them before installing, from environment variables of the same names; stackc writes no",
                  "values anywhere.", "", "```sh"]
        lines.append(f"kubectl create namespace {c.namespace}")
        for name, keys in sorted(by_secret.items()):
            lines.append(f"kubectl -n {c.namespace} create secret generic {name} \\")
            for i, key in enumerate(keys):
                end = " \\" if i < len(keys) - 1 else ""
                var = decl[(name, key)].name if (name, key) in decl else key
                lines.append(f"  --from-literal={key}=\"${{{var}:?}}\"{end}")
        lines += ["```", ""]
        for name, keys in sorted(by_secret.items()):
            for key in keys:
                d = decl.get((name, key))
                text = " ".join((d.description if d else "").split())
                lines.append(f"- `{name}/{key}`" + (f": {text}" if text else ""))
        lines.append("")
    else:
        lines += ["This stack reads no secrets.", ""]
    lines += [
        "## 3. Install or upgrade",
        "",
        "```sh",
        f"helm repo add {chart.REPO_ALIAS} {chart.REPOSITORY}",
        f"helm upgrade --install {c.release} {chart.REPO_ALIAS}/{chart.NAME} --version {chart.VERSION} \\",
        f"  --namespace {c.namespace} --create-namespace -f values.yaml",
        "```",
        "",
        f"The release name `{c.release}` is the one the secrets and this README assume; the objects stackc adds are",
        "named after whatever release name you use.",
        "",
        *_reach(dep),
    ]
    return "\n".join(lines)


def _reach(dep: ClusterDeployment) -> list[str]:
    """How clients reach the gateway, and what else can reach what (network.py)."""
    c = dep.cluster
    assert c is not None
    gateway = next(s for s in dep.services if s.role == "gateway")
    inside = f"http://{c.release}-{gateway.name}.{c.namespace}.svc:{gateway.port}{network.API_PATH}"
    lines = ["## 4. Reach the gateway", ""]
    if c.ingress is None:
        lines += [
            "The gateway is a ClusterIP Service, and nothing is reachable from outside the cluster. Pods in",
            f"the cluster call `{inside}`; to try it from your machine:",
            "",
            "```sh",
            f"kubectl -n {c.namespace} port-forward svc/{c.release}-{gateway.name} {dep.gateway_port}:{gateway.port}",
            "curl " + (f"-H \"Authorization: Bearer ${c.client_key}\" " if c.client_key else "")
            + f"http://127.0.0.1:{dep.gateway_port}{network.API_PATH}/models",
            "```",
            "",
            "To serve it outside the cluster, add `gateway.tls` to the spec: stackc then writes an Ingress",
            "that terminates TLS.",
            "",
        ]
    else:
        ing = c.ingress
        ui = " and `/` to the chat UI" if any(s.role == "ui" for s in dep.services) else ""
        lines += [f"Clients use `https://{ing.host or '<the Ingress address>'}{network.API_PATH}`. The Ingress terminates TLS with the",
                  f"Secret `{ing.secret}` and routes only `{network.API_PATH}` to the gateway{ui}; the gateway's metrics",
                  "and admin routes are not routed.", ""]
        if ing.issuer:
            lines += [f"cert-manager issues `{ing.secret}` for `{ing.host}` from the ClusterIssuer `{ing.issuer}`.",
                      "Point the name at the Ingress's address first, or the issuer's challenge fails.", ""]
        else:
            lines += ["Create the Secret from the certificate and key before installing (stackc never reads them):", "",
                      "```sh",
                      f"kubectl -n {c.namespace} create secret tls {ing.secret} --cert={ing.files[0]} --key={ing.files[1]}",
                      "```", ""]
        lines += [f"Inside the cluster the gateway is `{inside}`, but only the ingress controller",
                  f"(namespace `{c.ingress_namespace}`), the chat UI and Prometheus may reach it.", ""]
    lines += [f"Only the chart's router and Prometheus (namespace `{c.prometheus_namespace}`) may reach the engines,",
              "and only the gateway and Prometheus the router: NetworkPolicies, enforced where the cluster's",
              "network plugin enforces them (Calico, Cilium; not flannel alone).", ""]
    return lines
