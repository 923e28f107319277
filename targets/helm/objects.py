"""What the chart lacks, as Kubernetes objects for its `extraObjects`: the gateway and the UI (a
Deployment, a Service, their config as a ConfigMap, their state as a claim), the DCGM exporter
as a DaemonSet on the GPU nodes, KEDA ScaledObjects, ServiceMonitors, the Grafana dashboard, and
(only when asked) a Secret with empty values.

Names start with the release name, written as `{{ .Release.Name }}`: the chart passes every
extra object through `tpl`, which fills it in, so any other `{{` is escaped (`escape`).
"""

from __future__ import annotations

import posixpath
from typing import Any, Callable, Optional

from stackc.ir import ConfigFile, Service

from .cluster import ClusterDeployment

from .models import env_var, quantity

RELEASE = "\ue000release\ue000"  # stands for `{{ .Release.Name }}` until `escape` writes it (a private-use
# character: serialisers keep it as it is, and no spec string has a reason to hold it)
NAMESPACE = "\ue000namespace\ue000"
STATE_SIZE = 10 * 2**30  # a claim for a component's state whose size the IR leaves open
MANAGED_BY = {"app.kubernetes.io/managed-by": "Helm"}


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": component, **MANAGED_BY}


def selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": component}


def meta(name: str, component: str, **extra: Any) -> dict[str, Any]:
    return {"name": f"{RELEASE}-{name}", "labels": {**labels(component), **extra}}


class Objects:
    """Builds the extra objects of one deployment; `resolve` turns Endpoints and SecretRefs
    into the cluster's form."""

    def __init__(self, dep: ClusterDeployment, resolve: Callable[[Any], Any], files: dict[str, ConfigFile]):
        assert dep.cluster is not None
        self.dep, self.cluster, self.resolve, self.files = dep, dep.cluster, resolve, files
        self.volumes = {v.name: v for v in dep.volumes}

    # ---- a component (gateway, UI) as a Deployment + Service (+ ConfigMap, + claims)

    def workload(self, s: Service, render: Callable[[ConfigFile], str]) -> list[dict]:
        out: list[dict] = []
        container: dict[str, Any] = {"name": s.name, "image": s.image.ref, "imagePullPolicy": "IfNotPresent"}
        if s.entrypoint is not None:
            container["command"] = list(s.entrypoint)
        if s.command:
            container["args"] = list(s.command)
        if s.env:
            container["env"] = [env_var(name, value, self.resolve) for name, value in s.env]
        if s.port is not None:
            container["ports"] = [{"name": "http", "containerPort": s.port}]
        if s.health is not None and s.health.path:
            probe = {"httpGet": {"path": s.health.path, "port": s.health.port}, "periodSeconds": s.health.interval_s,
                     "timeoutSeconds": s.health.timeout_s, "failureThreshold": s.health.retries}
            container["startupProbe"] = {**probe, "failureThreshold": 30}  # a first start may migrate a database
            container["readinessProbe"] = probe
            container["livenessProbe"] = probe
        container["resources"] = {"requests": {"cpu": "250m", "memory": "512Mi"}}
        container["securityContext"] = {"allowPrivilegeEscalation": False}
        mounts, volumes = [], []
        files = [m for m in s.mounts if m.kind == "file"]
        if files:
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(s.name, s.name),
                        "data": {self._key(m.source): render(self.files[m.source]) for m in files}})
            volumes.append({"name": "config", "configMap": {"name": f"{RELEASE}-{s.name}"}})
            mounts += [{"name": "config", "mountPath": m.target, "subPath": self._key(m.source), "readOnly": True} for m in files]
        for m in s.mounts:
            if m.kind == "volume":
                size = self.volumes[m.source].size_bytes or STATE_SIZE
                out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(m.source, s.name),
                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": quantity(size)}},
                                     **({"storageClassName": self.cluster.storage_class} if self.cluster.storage_class else {})}})
                volumes.append({"name": m.source, "persistentVolumeClaim": {"claimName": f"{RELEASE}-{m.source}"}})
                mounts.append({"name": m.source, "mountPath": m.target})
        if mounts:
            container["volumeMounts"] = mounts
        pod: dict[str, Any] = {"containers": [container], "automountServiceAccountToken": False,
                               "securityContext": POD_SECURITY}
        if volumes:
            pod["volumes"] = volumes
        claims = any(m.kind == "volume" for m in s.mounts)
        out.append({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(s.name, s.name),
            "spec": {"replicas": 1, "selector": {"matchLabels": selector(s.name)},
                     # a ReadWriteOnce claim cannot be mounted by the old and the new pod at once
                     "strategy": {"type": "Recreate"} if claims else {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": labels(s.name)}, "spec": pod}},
        })
        if s.port is not None:
            out.append(self.service(s.name, s.port))
        return out

    def service(self, component: str, port: int) -> dict:
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta(component, component),
                "spec": {"type": "ClusterIP", "selector": selector(component),
                         "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}}

    @staticmethod
    def _key(path: str) -> str:
        return path.replace("/", "-")

    # ---- the DCGM exporter: one pod per GPU node

    def gpu_metrics(self, s: Service) -> list[dict]:
        assert s.metrics is not None
        c = self.cluster
        container = {
            "name": "dcgm-exporter", "image": s.image.ref, "imagePullPolicy": "IfNotPresent",
            # it requests no GPU (the engines hold them all) yet watches every GPU on the node
            "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}],
            "ports": [{"name": "metrics", "containerPort": s.metrics.port}],
            "securityContext": {"capabilities": {"add": list(s.resources.cap_add)}, "runAsNonRoot": False},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/health", "port": s.metrics.port}},
        }
        pod: dict[str, Any] = {"containers": [container], "automountServiceAccountToken": False,
                               "securityContext": POD_SECURITY, "tolerations": [GPU_TOLERATION]}
        if c.runtime_class:
            pod["runtimeClassName"] = c.runtime_class
        if c.gpu_label_value:
            pod["nodeSelector"] = {c.gpu_label: c.gpu_label_value}
        return [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("dcgm-exporter", "dcgm-exporter"),
             "spec": {"selector": {"matchLabels": selector("dcgm-exporter")},
                      "template": {"metadata": {"labels": labels("dcgm-exporter")}, "spec": pod}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": meta("dcgm-exporter", "dcgm-exporter"),
             "spec": {"type": "ClusterIP", "selector": selector("dcgm-exporter"),
                      "ports": [{"name": "metrics", "port": s.metrics.port, "targetPort": s.metrics.port, "protocol": "TCP"}]}},
        ]

    # ---- Prometheus Operator and KEDA

    def service_monitor(self, component: str, port: str, path: str) -> dict:
        return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                "metadata": meta(component, component, **dict(self.cluster.monitor_labels)),
                "spec": {"selector": {"matchLabels": selector(component)},
                         "endpoints": [{"port": port, "path": path, "interval": "15s"}]}}

    def scaled_object(self, s: Service) -> dict:
        """KEDA scales the chart's Deployment of the model on the engine's own metric."""
        assert s.autoscale is not None and s.group is not None
        a = s.autoscale
        return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta(f"{s.group}-scaledobject", s.group),
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": f"{RELEASE}-{s.group}-deployment-vllm"},
                         "minReplicaCount": s.replicas.min, "maxReplicaCount": s.replicas.max,
                         "pollingInterval": 15, "cooldownPeriod": 300,
                         "triggers": [{"type": "prometheus", "metadata": {
                             "serverAddress": self.cluster.prometheus_url, "query": a.query,
                             "threshold": _number(a.target), "metricType": "AverageValue"}}]}}

    def dashboard(self, f: ConfigFile, render: Callable[[ConfigFile], str]) -> dict:
        """The Grafana dashboard, for the sidecar of kube-prometheus-stack's Grafana."""
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": meta("dashboards", "grafana", grafana_dashboard="1"),
                "data": {posixpath.basename(f.path): render(f)}}

    def secret_template(self, names: list[str]) -> Optional[dict]:
        if not names:
            return None
        return {"apiVersion": "v1", "kind": "Secret",
                # a pre-install hook is created once and never applied again: an upgrade would
                # otherwise write the empty values over the ones filled in after install
                "metadata": {"name": self.cluster.secret_name, "labels": labels("secrets"),
                             "annotations": {"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-10"}},
                "type": "Opaque", "stringData": {n: "" for n in sorted(names)}}


# the container runtime's default seccomp profile, which docker applies by itself (compose)
POD_SECURITY = {"seccompProfile": {"type": "RuntimeDefault"}}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def escape(data: Any) -> Any:
    """Make every string safe for the chart's `tpl`: a literal `{{` is written `{{ "{{" }}`,
    and the placeholders become the release's name and namespace."""
    if isinstance(data, dict):
        return {escape(k): escape(v) for k, v in data.items()}
    if isinstance(data, list):
        return [escape(v) for v in data]
    if isinstance(data, str):
        return (data.replace("{{", '{{ "{{" }}')
                .replace(RELEASE, "{{ .Release.Name }}").replace(NAMESPACE, "{{ .Release.Namespace }}"))
    return data
