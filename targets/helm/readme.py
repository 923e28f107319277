"""The README.md next to `values.yaml`: the pinned install command and the secrets to create."""

from __future__ import annotations

from stackc import output

from . import chart
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
    ]
    return "\n".join(lines)
