"""The helm target's section of the spec, `kubernetes:`: how the cluster names GPUs, stores
models and scrapes metrics."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from stackc.spec_values import K8sName, Rate, _Strict

from ..section import Section

LabelKey = Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
                                max_length=253)]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", max_length=63)]


class Kubernetes(_Strict):
    """Settings only the helm target reads: how the cluster names GPUs, stores models, scrapes metrics."""

    namespace: Optional[K8sName] = Field(None, description="The namespace the README's `helm install` uses; default: the stack's name.")
    gpu_label: LabelKey = Field(
        "nvidia.com/gpu.product",
        description="The node label that names the GPU model: `nvidia.com/gpu.product` (GPU feature discovery, the "
        "NVIDIA GPU Operator), `cloud.google.com/gke-accelerator` on GKE; its value comes from the catalog.")
    gpu_label_value: Optional[LabelValue] = Field(
        None, description="The label's value for this GPU, when the catalog has none for `gpu_label`.")
    runtime_class: Optional[K8sName] = Field(
        "nvidia", description="The RuntimeClass of GPU pods (the GPU Operator's `nvidia`); `null` where the cluster has none (GKE).")
    storage_class: Optional[K8sName] = Field(None, description="The StorageClass of the model-cache claims; default: the cluster's default.")
    model_cache_claim: Optional[K8sName] = Field(
        None, description="An existing PersistentVolumeClaim every model reads its weights from, instead of one claim per model.")
    storage_read: Optional[Rate] = Field(
        None, gt=0, description="How fast the model-cache claims read (network storage in most clusters), e.g. "
        "`500MB/s`: the startup probe allows for reading the weights at this rate. Default 125 MiB/s (gp3's, "
        "and about a balanced persistent disk's).",
    )
    model_cache_access: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        "ReadWriteOnce", description="The access mode of the model-cache claims (the existing one's, or the ones stackc asks "
        "for); a claim that replicas on several nodes share must be `ReadWriteMany`.")
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[A-Za-z0-9._~:/%-]+$", max_length=300)] = Field(
        "http://prometheus-operated.monitoring.svc:9090", description="The Prometheus KEDA queries for autoscaling.")
    service_monitor_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Labels your Prometheus selects ServiceMonitors by, e.g. `{release: kube-prometheus-stack}`.")
    tls_secret: Optional[K8sName] = Field(
        None, description="The `kubernetes.io/tls` Secret the gateway's Ingress serves (`gateway.tls`); default "
        "`<stack>-gateway-tls`, which the README creates from `gateway.tls.cert` and `key`, or cert-manager fills.")
    cert_issuer: Optional[K8sName] = Field(
        None, description="A cert-manager ClusterIssuer that issues `tls_secret` for `gateway.tls.host` (needs the "
        "host); without it the operator creates the Secret.")
    ingress_class: Optional[K8sName] = Field(
        None, description="The IngressClass of the gateway's Ingress; default: the cluster's default class.")
    ingress_namespace: K8sName = Field(
        "ingress-nginx", description="The namespace of the ingress controller's pods: with `gateway.tls`, only they "
        "(and the chat UI) may reach the gateway.")
    prometheus_namespace: K8sName = Field(
        "monitoring", description="The namespace of the Prometheus that scrapes the stack: the only pods beside the "
        "router and the gateway that may reach the engines' port (it serves their metrics).")
    secret_template: bool = Field(
        False, description="Also emit the Secret `<stack>-secrets` with every declared key and empty values, to fill in after install.")


SECTION = Section("kubernetes", Kubernetes, "Cluster settings for the helm target.")
