"""Ollama (`ollama serve`, image `ollama/ollama`).

Ollama is configured by environment only. Its image has neither curl nor python, so the health
check is the `ollama` client itself. Models load lazily on the first request; the download
job pulls the tag before the server starts, and `OLLAMA_KEEP_ALIVE=-1` keeps it loaded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, TYPE_CHECKING

from .. import images
from ..artifacts import Artifact
from ..compat import GGUF, Rule, Support
from ..ir_engine import Endpoint, EngineConfig, Health, Resources
from ..ir_engine import Install
from .base import Budget, BudgetInputs, Engine, GIB, Release
from .downloads import DownloadStep, sh_quote

if TYPE_CHECKING:
    from stackc.targets.systemd.options import Systemd


ARCHIVE = "https://github.com/ollama/ollama/releases/download/v{version}/ollama-linux-amd64.tgz"

class Ollama(Engine):
    name = "ollama"
    title = "Ollama"
    registry_tags = True
    weights_required = ("Ollama tag or GGUF repo",
                        "add `weights:` with an Ollama tag (e.g. `qwen2.5:7b-instruct-q4_K_M`) or `hf.co/<org>/<repo>-GGUF:Q4_K_M`")
    runs_natively = True
    support = Support(("nvidia", "amd", "apple"), ("generate", "embed"), False, False, True)
    splits_layers = True
    kv_fp8 = False
    quantization_rules = (
        Rule(GGUF + ("mxfp4", "none"), "ok"),
        Rule(None, "error", "SC501", "Ollama runs GGUF models from its library, not {quantization} checkpoints",
             "set `quantization: gguf-q4_k_m` and `weights:` to an Ollama tag such as `qwen2.5:7b-instruct-q4_K_M`"),
    )
    port = 11434
    images = {"nvidia": images.OLLAMA, "amd": images.OLLAMA_ROCM}
    releases = (Release(since=(0,)),)
    has_memory_share = False
    offloads_layers = True
    metrics_path = None  # no /metrics endpoint (ollama/ollama#3144)
    supports_prefix_caching = False
    startup_overhead_s = 20
    host_base_bytes = host_per_gpu_bytes = GIB  # one C++ process, no torch

    def activation(self, plan: BudgetInputs) -> float:
        from .llamacpp import ENGINE as LLAMA_CPP

        return LLAMA_CPP.activation(plan)  # Ollama runs llama.cpp's engine underneath

    def budget(self, total: float, util: float, weights: float, plan: BudgetInputs) -> Budget:
        requested = total * 0.95
        compute = self.activation(plan)
        kv = requested - weights - compute
        return Budget(total, requested, weights, compute, 0.0, 0.0, kv)

    def entrypoint(self, ec: EngineConfig):
        return None

    def argv(self, ec: EngineConfig) -> list[str]:
        return ["serve"]

    def env(self, ec: EngineConfig) -> list[tuple[str, str]]:
        env = [
            ("OLLAMA_HOST", f"0.0.0.0:{self.port}"),
            ("OLLAMA_MODELS", f"{ec.cache_dir}/ollama"),
            ("OLLAMA_CONTEXT_LENGTH", str(ec.max_context)),
            ("OLLAMA_NUM_PARALLEL", str(max(1, ec.concurrency))),
            ("OLLAMA_MAX_LOADED_MODELS", "1"),
            ("OLLAMA_KEEP_ALIVE", "-1"),
        ]
        if ec.kv_cache_dtype == "fp8":
            # Ollama's 8-bit KV cache is q8_0 and needs flash attention
            env += [("OLLAMA_FLASH_ATTENTION", "1"), ("OLLAMA_KV_CACHE_TYPE", "q8_0")]
        env += [(str(k).upper(), "" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in ec.extra_args]
        return env

    def managed_flags(self, ec: EngineConfig) -> set[str]:
        from .base import probe_configs

        return {k.lower().replace("_", "-") for probe in probe_configs(ec) for k, _ in self.env(probe)}

    def canonical_flag(self, name: str) -> str:
        return name.strip().lstrip("-").split("=", 1)[0].replace("_", "-").lower()

    def served_model(self, ec: EngineConfig) -> str:
        return ec.model  # Ollama answers to the tag

    def health(self, ec: EngineConfig) -> Health:
        # `ollama show TAG` succeeds once the server is up and the tag is in the store
        return Health(self.port, "/", ("ollama", "show", ec.model))

    def resources(self, ec: EngineConfig) -> Resources:
        return Resources()

    def download(self, ec: EngineConfig, artifact: Artifact, image: str) -> Optional[DownloadStep]:
        tag = artifact.ref if artifact.kind == "ollama" else f"hf.co/{artifact.ref}" + (
            f":{artifact.gguf_quant}" if artifact.gguf_quant else "")
        script = (
            "ollama serve >/dev/null 2>&1 & "
            "until ollama list >/dev/null 2>&1; do sleep 1; done; "
            f"ollama pull {sh_quote(tag)}"
        )
        return DownloadStep(image, ("-c", script), entrypoint=("/bin/sh",),
                            env=(("OLLAMA_MODELS", f"{ec.cache_dir}/ollama"),), needs_hf_token=False)

    # ---- on a host: the release archive, unpacked beside the binary's `bin/`

    def native_command(self, args: list[str], env: list, bind: str, port: int, s: "Systemd") -> tuple[list[str], list]:
        return [s.ollama, *args], [(k, f"{bind}:{port}" if k == "OLLAMA_HOST" else v) for k, v in env]

    def host_installs(self, ec: EngineConfig, s: "Systemd") -> list[Install]:
        version = ".".join(map(str, ec.version))
        return [Install("archive", s.ollama.rsplit("/bin/", 1)[0], requirement=ARCHIVE.format(version=version))]

    def model_reference(self, artifact: Artifact, cache_dir: str) -> str:
        """A tag of its library, or a GGUF repo it pulls itself (`hf.co/org/repo:Q4_K_M`)."""
        if artifact.kind == "ollama":
            return artifact.ref
        return f"hf.co/{artifact.ref}" + (f":{artifact.gguf_quant}" if artifact.gguf_quant else "")

    def gateway_upstream(self, ec: EngineConfig, served: str, base: Endpoint) -> dict:
        """Its native API (LiteLLM's `ollama_chat/` for chat, `ollama/` for embeddings), at the server's root."""
        provider = "ollama" if ec.task != "generate" else "ollama_chat"
        return {"model": f"{provider}/{served}", "api_base": replace(base, path="")}


ENGINE = Ollama()
