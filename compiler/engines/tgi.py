"""Hugging Face Text Generation Inference (`text-generation-launcher`), in maintenance mode.

TGI sizes its KV cache from what is free after a warm-up at `--max-batch-prefill-tokens`; we
model it like vLLM with TGI's default memory fraction, and say the figures are estimates.
"""

from __future__ import annotations

from typing import Optional

from .. import images
from ..artifacts import Artifact
from ..compat import FP8_HELP, GGUF, Rule, Support, cc_below
from ..ir_engine import EngineConfig, Health, Resources
from .base import Engine, GIB, Release, curl_probe
from .downloads import DownloadStep, adapter_path
from .flags import render_args


class Tgi(Engine):
    name = "tgi"
    title = "TGI"
    # TGI picks adapters by `adapter_id`, not by model name: stackc does not wire them
    support = Support(("nvidia", "amd"), ("generate",), False, False, True)
    online_quantization = ("fp8", "bnb-nf4")
    quantization_rules = (
        Rule(GGUF + ("mxfp4", "nvfp4", "int8-w8a8"), "error", "SC501", "TGI does not serve {quantization} weights",
             "use `quantization: awq`, `gptq`, `fp8` or `bnb-nf4`"),
        Rule(("fp8",), "warn", "SC503", "{gpu} (compute capability {cc}) has no FP8 tensor cores: TGI runs FP8 "
             "weight-only through Marlin", FP8_HELP, gpu=cc_below(8.9)),
    )
    port = 80  # the image sets PORT=80
    images = {"nvidia": images.TGI}
    releases = (Release(since=(0,), gpu_memory_utilization=1.0),)
    quantization_names = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "bnb-nf4": "bitsandbytes-nf4"}
    metrics = {"running": "tgi_batch_current_size", "waiting": "tgi_queue_size",
               "generated_tokens": "tgi_request_generated_tokens_sum"}
    flag_aliases = {"model": "model-id", "num-shard": "num-shard", "p": "port"}
    estimate_only = True
    pins_defaults = False  # TGI picks its prefill budget from the GPU's FLOPs at start-up

    def default_max_num_seqs(self, version, gpu, task) -> int:
        return 128

    def default_max_batched_tokens(self, version, gpu, task) -> int:
        return 4096  # TGI's fallback; it usually picks a compute-optimal value at start-up

    def argv(self, ec: EngineConfig) -> list[str]:
        args = ["--model-id", self.model_arg(ec), "--hostname", "0.0.0.0", "--port", str(self.port),
                "--huggingface-hub-cache", f"{ec.cache_dir}/hf/hub",
                "--max-input-tokens", str(ec.max_context - 1), "--max-total-tokens", str(ec.max_context)]
        if ec.revision:
            args += ["--revision", ec.revision]
        if ec.quantization_flag:
            args += ["--quantize", ec.quantization_flag]
        if ec.dtype != "auto":
            args += ["--dtype", ec.dtype]
        if ec.kv_cache_dtype == "fp8":
            args += ["--kv-cache-dtype", "fp8_e4m3fn"]
        if ec.tensor_parallel > 1:
            args += ["--num-shard", str(ec.tensor_parallel)]
        if ec.gpu_memory_utilization is not None:
            args += ["--cuda-memory-fraction", f"{ec.gpu_memory_utilization:g}"]
        if ec.max_num_seqs is not None:
            args += ["--max-concurrent-requests", str(ec.max_num_seqs)]
        if ec.max_batched_tokens is not None:
            args += ["--max-batch-prefill-tokens", str(ec.max_batched_tokens)]
        if ec.adapters:
            args += ["--lora-adapters", ",".join(f"{n}={adapter_path(s, ec.cache_dir)}" for n, s in ec.adapters)]
        return args + render_args(ec.extra_args)

    def env(self, ec: EngineConfig) -> list[tuple[str, str]]:
        env = [("HF_HOME", f"{ec.cache_dir}/hf"), ("HF_HUB_OFFLINE", "1")]
        if ec.prefix_caching is False:
            env.append(("PREFIX_CACHING", "0"))
        return env

    def health(self, ec: EngineConfig) -> Health:
        return Health(self.port, "/health", curl_probe(self.port, "/health"))

    def resources(self, ec: EngineConfig) -> Resources:
        return Resources(shm_bytes=16 * GIB if ec.tensor_parallel > 1 else 1 * GIB)

    def download(self, ec: EngineConfig, artifact: Artifact, image: str) -> Optional[DownloadStep]:
        if artifact.kind != "hf":
            from .downloads import default_download

            return default_download(ec, artifact, image, hf_cli=("hf",))
        cmd = ["download-weights", artifact.ref]
        if ec.revision:
            cmd += ["--revision", ec.revision]
        return DownloadStep(image, tuple(cmd), entrypoint=("text-generation-server",),
                            env=(("HF_HOME", f"{ec.cache_dir}/hf"),))


ENGINE = Tgi()
