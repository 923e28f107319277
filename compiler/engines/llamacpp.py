"""llama.cpp (`llama-server`, image `ghcr.io/ggml-org/llama.cpp:server-*`).

llama.cpp loads GGUF files and keeps the whole context of every slot: `-c` is the total over
`-np` slots, so a replica that must hold `concurrency` sequences of `max_context` tokens gets
`-c max_context x concurrency -np concurrency`. Several GPUs split layers (not tensor parallel).
"""

from __future__ import annotations

import re
from typing import Optional, TYPE_CHECKING

from .. import images
from ..artifacts import Artifact
from ..compat import GGUF, Rule, Support
from ..ir_engine import EngineConfig, Health, Resources
from .base import Budget, BudgetInputs, Engine, GIB, Release, Version, curl_probe
from .downloads import DownloadStep, python_hf_download, sh_quote
from .flags import render_args

if TYPE_CHECKING:
    from stackc.targets.systemd.options import Systemd


class LlamaCpp(Engine):
    name = "llama.cpp"
    title = "llama.cpp"
    loads_from_directory = True
    runs_natively = True
    # llama-server's draft model and LoRA take local GGUF files and are not chosen per request by
    # model name: stackc does not wire them
    support = Support(("nvidia", "amd", "apple"), ("generate", "embed", "rerank"), False, False, True)
    splits_layers = True
    kv_fp8 = False
    quantization_rules = (
        Rule(GGUF + ("mxfp4",), "ok"),
        Rule(None, "error", "SC501", "llama.cpp loads GGUF files, not {quantization} checkpoints",
             "set `quantization: gguf-q4_k_m` (or q5_k_m, q8_0) and `weights: hf.co/<org>/<repo>-GGUF:Q4_K_M`"),
    )
    port = 8080
    images = {"nvidia": images.LLAMA_CPP, "amd": images.LLAMA_CPP_ROCM}
    releases = (Release(since=(0,)),)
    has_memory_share = False
    offloads_layers = True
    # (`llamacpp:kv_cache_usage_ratio` was removed upstream, ggml-org/llama.cpp#13660)
    metrics = {"running": "llamacpp:requests_processing", "waiting": "llamacpp:requests_deferred",
               "generated_tokens": "llamacpp:tokens_predicted_total"}
    flag_aliases = {"-c": "ctx-size", "c": "ctx-size", "-m": "model", "m": "model", "-np": "parallel",
                    "np": "parallel", "-ngl": "n-gpu-layers", "ngl": "n-gpu-layers", "gpu-layers": "n-gpu-layers",
                    "-a": "alias", "a": "alias", "-fa": "flash-attn", "fa": "flash-attn", "-ctk": "cache-type-k",
                    "ctk": "cache-type-k", "-ctv": "cache-type-v", "ctv": "cache-type-v", "-hf": "hf-repo",
                    "hf": "hf-repo", "-hfr": "hf-repo", "-b": "batch-size", "b": "batch-size"}
    supports_prefix_caching = False  # prompt caching is per slot and always on; nothing to switch
    startup_overhead_s = 30
    host_base_bytes = host_per_gpu_bytes = GIB  # one C++ process, no torch

    def version_label(self, version: Version) -> str:
        return f"b{version[0]}"  # llama.cpp numbers builds, not releases

    def activation(self, plan: BudgetInputs) -> float:
        """llama.cpp's compute buffers: a micro-batch of 512 tokens through the graph, with its
        logits, plus a fixed scratch of about 0.3 GiB."""
        m = plan.model
        return 0.3 * GIB + 512 * (m.vocab_size + 4 * m.hidden_size) * 4

    def budget(self, total: float, util: float, weights: float, plan: BudgetInputs) -> Budget:
        # no memory share: every layer is offloaded (-ngl 999); keep ~5% for the CUDA context
        requested = total * 0.95
        compute = self.activation(plan)
        kv = requested - weights - compute
        return Budget(total, requested, weights, compute, 0.0, 0.0, kv)

    def env(self, ec: EngineConfig) -> list[tuple[str, str]]:
        return [("LLAMA_CACHE", f"{ec.cache_dir}/llama.cpp")]

    def entrypoint(self, ec: EngineConfig):
        return ("/bin/sh", "-c")

    def argv(self, ec: EngineConfig) -> list[str]:
        """One shell line: the GGUF file name is only known after the download, so the model
        argument is the first file in the model's directory that matches the quantization."""
        args = [sh_quote(a) for a in self.server_args(ec)]
        if ec.model_file_pattern:
            found = f'"$(find {sh_quote(ec.model)} -ipath {sh_quote(ec.model_file_pattern)} -name \'*.gguf\' | sort | head -n 1)"'
            args[1] = found
        return [" ".join(["exec", "/app/llama-server", *args])]

    def server_args(self, ec: EngineConfig) -> list[str]:
        slots = max(1, ec.concurrency)
        args = ["--model", ec.model, "--alias", ec.served_name, "--host", "0.0.0.0",
                "--port", str(self.port), "--ctx-size", str(ec.max_context * slots), "--parallel", str(slots),
                "--n-gpu-layers", str(ec.gpu_layers if ec.gpu_layers is not None else 999), "--metrics"]
        if ec.kv_cache_dtype == "fp8":
            # llama.cpp has no fp8 KV; q8_0 is its 8-bit cache (quantized V needs flash attention)
            args += ["--flash-attn", "on", "--cache-type-k", "q8_0", "--cache-type-v", "q8_0"]
        if ec.task == "embed":
            args += ["--embedding"]
        elif ec.task == "rerank":
            args += ["--reranking"]
        if ec.max_batched_tokens is not None:
            args += ["--batch-size", str(ec.max_batched_tokens)]
        return args + render_args(ec.extra_args)

    def render_flags(self, ec: EngineConfig) -> list[str]:
        return self.server_args(ec)

    def health(self, ec: EngineConfig) -> Health:
        # /health answers 503 "Loading model" until the weights are in, then 200
        return Health(self.port, "/health", curl_probe(self.port, "/health"))

    def resources(self, ec: EngineConfig) -> Resources:
        return Resources()

    def download(self, ec: EngineConfig, artifact: Artifact, image: str) -> Optional[DownloadStep]:
        if artifact.kind == "local":
            return None
        if artifact.kind == "s3":
            from .downloads import s3_download

            return s3_download(artifact, ec)
        return python_hf_download(ec, artifact)

    # ---- on a host: the `llama-server` binary the operator installed

    def native_command(self, args: list[str], env: list, bind: str, port: int, s: "Systemd") -> tuple[list[str], list]:
        """One shell line that finds the GGUF file after the download, as in the image."""
        line = args[0].replace("/app/llama-server", s.llama_server, 1)
        line = re.sub(r"--host \S+", f"--host {bind}", line)
        line = re.sub(r"--port \S+", f"--port {port}", line)
        return ["/bin/sh", "-c", line], env

    def model_file_pattern(self, artifact: Artifact) -> Optional[str]:
        """It loads one GGUF file: the first shard in the download that names the quant."""
        if artifact.kind == "local" and artifact.ref.endswith(".gguf"):
            return None
        return f"*{artifact.gguf_quant.lower()}*" if artifact.gguf_quant else "*"


ENGINE = LlamaCpp()
