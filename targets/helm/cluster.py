"""The helm target's own lowering: `kubernetes:` and the plan, resolved into what a cluster needs
beyond the services (`Cluster`), and the checks that only a cluster has (a node label to place
pods by, a model cache every replica can attach). Computed only when the helm target builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from stackc import storage
from stackc.ir import Deployment, Feature, specialise
from stackc.planner import engine_overhead_s, read_bytes

if TYPE_CHECKING:
    from stackc.plan import Plan

DEFAULT_GPU_LABEL = "nvidia.com/gpu.product"  # the options' default, where the spec has no `kubernetes:`


@dataclass(frozen=True)
class Ingress:
    """How clients reach the gateway from outside the cluster: an Ingress that terminates
    `gateway.tls` with a `kubernetes.io/tls` Secret (the operator's, or cert-manager's)."""

    host: Optional[str]  # None: the rule matches any host
    secret: str
    issuer: Optional[str]  # a cert-manager ClusterIssuer that fills `secret`
    class_name: Optional[str]  # None: the cluster's default IngressClass
    files: tuple[str, str]  # `gateway.tls`'s cert and key: what the README creates the Secret from


@dataclass(frozen=True)
class Cluster:
    """How nodes name the GPU, where model weights are stored, where Prometheus is, which Secret
    holds each declared secret."""

    namespace: str
    gpu_label: str
    gpu_label_value: Optional[str]  # None: neither the catalog nor the spec knows it
    runtime_class: Optional[str]
    storage_class: Optional[str]
    model_cache_claim: Optional[str]
    model_cache_access: str
    prometheus_url: str
    monitor_labels: tuple[tuple[str, str], ...]
    secret_template: bool
    rollout_surge: bool  # enough GPUs stay free to start a new replica before an old one stops
    release: str  # the Helm release name the install README uses
    secret_name: str  # the Secret that holds every declared secret not mapped elsewhere
    startup_budget_s: int = 0  # the slowest model's start with its weights read from the claim's storage
    secret_keys: tuple[tuple[str, tuple[str, str]], ...] = ()  # secret -> (Secret, key), where `secrets.X.k8s` says
    ingress: Optional[Ingress] = None  # only with `gateway.tls`: without it nothing is reachable from outside
    ingress_namespace: str = "ingress-nginx"  # whose pods alone reach the gateway through the Ingress
    prometheus_namespace: str = "monitoring"  # whose pods scrape the engines and the router
    client_key: Optional[str] = None  # the secret clients send the gateway, for the README's example

    def secret_ref(self, name: str) -> tuple[str, str]:
        """The Secret and key a declared secret is read from."""
        return dict(self.secret_keys).get(name, (self.secret_name, name))

    def mapped(self, name: str) -> bool:
        """Whether the spec places this secret in a Secret of its own (not `<stack>-secrets`)."""
        return any(key == name for key, _ in self.secret_keys)


@dataclass(frozen=True)
class ClusterDeployment(Deployment):
    """The deployment as the helm target translates it."""

    cluster: Optional[Cluster] = None


def release_name(stack: str) -> str:
    """The Helm release: not the stack's own name, because the chart creates a Secret
    `<release>-secrets` of its own, and `<stack>-secrets` is the user's (SPEC.md)."""
    return f"{stack}-llm"


def _ingress(spec, k) -> Optional[Ingress]:
    tls = spec.gateway.tls if spec.gateway else None
    if tls is None:
        return None
    return Ingress(host=tls.host, secret=k.tls_secret or f"{spec.name}-gateway-tls", issuer=k.cert_issuer,
                   class_name=k.ingress_class, files=(tls.cert, tls.key))


def prepare(dep: Deployment, plan: "Plan") -> ClusterDeployment:
    stack = plan.stack
    spec, where = stack.spec, stack.where
    assert where is not None
    given = spec.kubernetes
    k = spec.section("kubernetes")
    labels = dict(stack.gpu.node_labels)
    claim = storage.kubernetes_claim(k.storage_read)
    budgets = [storage.startup_budget(claim.seconds(read_bytes(mp)), engine_overhead_s(mp)) for mp in plan.models]
    spare = stack.gpus_per_node * stack.nodes - plan.gpus_needed
    largest = max((mp.gpus_per_replica for mp in plan.models), default=1)
    secret_keys = tuple((name, (decl.k8s.name, decl.k8s.key)) for name, decl in sorted(spec.secrets.items())
                        if decl and decl.k8s)
    cluster = Cluster(
        release=release_name(spec.name), secret_name=f"{spec.name}-secrets",
        namespace=k.namespace or dep.project, gpu_label=k.gpu_label,
        gpu_label_value=k.gpu_label_value or labels.get(k.gpu_label), runtime_class=k.runtime_class,
        storage_class=k.storage_class, model_cache_claim=k.model_cache_claim, model_cache_access=k.model_cache_access,
        prometheus_url=k.prometheus_url, monitor_labels=tuple(sorted(k.service_monitor_labels.items())),
        secret_template=k.secret_template, rollout_surge=spare >= largest, startup_budget_s=max(budgets, default=60),
        secret_keys=secret_keys, ingress=_ingress(spec, k), ingress_namespace=k.ingress_namespace,
        prometheus_namespace=k.prometheus_namespace,
        client_key=spec.gateway.api_key.secret if spec.gateway and spec.gateway.api_key else None,
    )
    found: list[Feature] = []
    unused = [key for key in ("tls_secret", "cert_issuer", "ingress_class") if given and key in given.model_fields_set]
    if cluster.ingress is None and unused:  # set for an Ingress that is not written
        found.append(Feature("k8s-ingress-unused", where("kubernetes", unused[0]), unused[0]))
    if cluster.ingress is not None and cluster.ingress.issuer and cluster.ingress.host is None:
        found.append(Feature("k8s-issuer-without-host", where("kubernetes", "cert_issuer"), cluster.ingress.issuer))
    if cluster.gpu_label_value is None:
        span = where("kubernetes", "gpu_label") if given else where("hardware", "gpu")
        found.append(Feature("k8s-gpu-label-unknown", span, stack.gpu.id, label=k.gpu_label))
    # a ReadWriteOnce claim attaches to one node: replicas of a model (or models sharing one claim)
    # spread over several nodes need ReadWriteMany
    if stack.nodes > 1 and k.model_cache_access != "ReadWriteMany":
        shared = [mp.model.name for mp in plan.models if mp.replicas_max > 1]
        if k.model_cache_claim and len(plan.models) > 1:
            shared = [mp.model.name for mp in plan.models]
        if shared:
            span = where("kubernetes", "model_cache_access") if given and "model_cache_access" in given.model_fields_set \
                else (where("kubernetes", "model_cache_claim") if k.model_cache_claim else where("hardware", "nodes"))
            found.append(Feature("k8s-cache-read-write-once", span, models=tuple(shared), nodes=stack.nodes))
    return specialise(dep, ClusterDeployment, cluster=cluster, features=dep.features + tuple(found))
