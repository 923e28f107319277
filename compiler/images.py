"""Every container image stackc emits, pinned, in one place.

Tags are the newest releases we found published evidence for (docs/components.md lists the
evidence); `:latest` and floating tags never appear. Engines take their default from here
and read their version from the tag, so a user's older `image:` plans for that version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Image:
    """A pinned container image: repository, tag, and the digest where it is published."""

    repository: str
    tag: str
    digest: str = ""  # where we have the published digest: the tag names it, the digest pins it

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    @property
    def pinned_tag(self) -> str:
        """The tag with its digest (`v0.33.0@sha256:...`), for fields that take the part after `:`."""
        return self.tag + (f"@{self.digest}" if self.digest else "")


def parse(ref: str) -> Image:
    """`[registry[:port]/]repository[:tag][@digest]`, split once here for every reader (the
    engine version comes from the tag; the helm chart takes repository and tag apart)."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    repository, tag = (name.rsplit(":", 1) if ":" in last else (name, ""))
    return Image(repository, tag, digest)


# inference engines (NVIDIA builds; ROCm builds where the project publishes them)
VLLM = Image("vllm/vllm-openai", "v0.33.0")
VLLM_ROCM = Image("vllm/vllm-openai-rocm", "v0.31.0")
SGLANG = Image("lmsysorg/sglang", "v0.5.21")
LLAMA_CPP = Image("ghcr.io/ggml-org/llama.cpp", "server-cuda-b11459")
LLAMA_CPP_ROCM = Image("ghcr.io/ggml-org/llama.cpp", "server-rocm-b11312")
OLLAMA = Image("ollama/ollama", "0.35.1")
OLLAMA_ROCM = Image("ollama/ollama", "0.35.1-rocm")
TGI = Image("ghcr.io/huggingface/text-generation-inference", "3.3.7")
TENSORRT_LLM = Image("nvcr.io/nvidia/tensorrt-llm/release", "1.2.1")

# the stack around the engines
GATEWAY_LITELLM = Image("ghcr.io/berriai/litellm", "v1.104.2",
                        "sha256:3d88bd757134a00e8c00237b85a021ab1f6d54abb9c1df750f411dbe7256a500")
GATEWAY_LITELLM_PYPI = "litellm[proxy]==1.104.2"  # the same release, installed with hashes in the tests
ROUTER_HAPROXY = Image("haproxy", "2.6.32-alpine")  # the 2.6 LTS branch Debian 12 packages (2.6.12)
# the vLLM production-stack chart the helm target writes values for, and the router image its
# release workflow (scheduled-release.yml) pushes with the chart's version as the tag
HELM_CHART = ("vllm-stack", "0.1.12", "https://vllm-project.github.io/production-stack")
ROUTER_PRODUCTION_STACK = Image("lmcache/lmstack-router", "v0.1.12")
PROMETHEUS = Image("prom/prometheus", "v3.15.0")
GRAFANA = Image("grafana/grafana", "13.2.3")
DCGM_EXPORTER = Image("nvcr.io/nvidia/k8s/dcgm-exporter", "4.6.1-4.8.4-distroless")
OPEN_WEBUI = Image("ghcr.io/open-webui/open-webui", "v0.11.4")

# one-shot downloaders for artifacts an engine image cannot fetch itself
PYTHON = Image("python", "3.12.15-slim")
HUGGINGFACE_HUB_VERSION = "1.33.0"  # the `hf` CLI, installed into PYTHON at download time
AWS_CLI = Image("amazon/aws-cli", "2.37.12")

ALL = {
    name: value for name, value in sorted(globals().items()) if isinstance(value, Image)
}
