"""The systemd target's section of the spec, `systemd:`: where engines are installed, which
systemd the hosts run, the nodes' addresses. A cloud's machines run these units too, so the
terraform target reads it as well."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from stackc.spec_values import _Strict

from ..section import Section

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


SECTION = Section("systemd", Systemd, "Host settings for the systemd target.")
