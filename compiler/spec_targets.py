"""The spec's sections for one kind of target: `kubernetes:` (the helm target), `systemd:` (hosts
without an orchestrator: the systemd target and a cloud's machines) and `terraform:` (the
clouds). Each is read by the targets that express it; the rest of the spec never looks inside."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .spec_values import K8sName, Rate, _Strict

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
    secret_template: bool = Field(
        False, description="Also emit the Secret `<stack>-secrets` with every declared key and empty values, to fill in after install.")


HostPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/+-]*$", max_length=200)]
IPv4 = Annotated[str, Field(pattern=r"^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$")]


class Systemd(_Strict):
    """Settings only the systemd target reads: where engines are installed, which systemd the hosts
    run, and the nodes' private addresses."""

    systemd_version: Annotated[int, Field(ge=252, le=999)] = Field(
        252, description="The oldest systemd on the hosts; no newer directive is emitted (252: Debian 12).")
    user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,30}$")] = Field(
        "stackc", description="The system user every service runs as; it owns the model cache.")
    vllm_venv: HostPath = Field("/opt/stackc/vllm", description="The virtual environment vLLM is installed in.")
    sglang_venv: HostPath = Field("/opt/stackc/sglang", description="The virtual environment SGLang is installed in.")
    gateway_venv: HostPath = Field(
        "/opt/stackc/litellm", description="The virtual environment of the gateway (`litellm[proxy]`, the release the images pin).")
    llama_server: HostPath = Field("/usr/local/bin/llama-server", description="The `llama-server` binary.")
    ollama: HostPath = Field("/usr/local/bin/ollama", description="The `ollama` binary.")
    container_runtime: Literal["podman", "docker"] = Field(
        "podman", description="Runs what does not ship natively (TGI, TensorRT-LLM, download jobs, Grafana, the DCGM exporter, Open WebUI).")
    node_addresses: list[IPv4] = Field(
        default_factory=list, description="The nodes' private addresses, node-0 first: required for more than one node.")


class Terraform(_Strict):
    """Settings only the terraform target reads."""

    subnet_cidr: Annotated[str, Field(pattern=r"^10\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.0/(1[6-9]|2[0-4])$")] = Field(
        "10.42.0.0/24", description="The nodes' subnet (created by the module, or the existing one its variables name); "
        "node i gets the address .10+i in it.")
    root_volume_gib: Annotated[int, Field(ge=50, le=16384)] = Field(
        100, description="Disk for the system, engines and their caches, before the model cache and the KV-cache disk tier are added.")
    boot: Literal["systemd", "compose"] = Field(
        "systemd", description="What each machine runs: the systemd target's units (engines installed natively), or "
        "the compose target's stack (one machine only; engines in their pinned images).")
