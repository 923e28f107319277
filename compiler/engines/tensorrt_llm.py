"""TensorRT-LLM (`trtllm-serve`, NVIDIA's NGC image), PyTorch backend.

TensorRT-LLM gives the KV cache `kv_cache_free_gpu_memory_fraction` (0.9) of what is free
after the weights and a warm-up; our figures for it are estimates. KV-cache dtype and block
reuse (prefix caching) are set in the extra LLM-API options file, not on the command line.
"""

from __future__ import annotations

from typing import Optional

from .. import images
from ..artifacts import Artifact
from ..compat import FP8_HELP, GGUF, Rule, Support, cc_below
from ..ir_engine import EngineConfig, Resources
from .base import Budget, BudgetInputs, Engine, GIB, Release, Version
from .downloads import DownloadStep, hf_download_command, hf_patterns, local_dir
from .flags import render_args


class TensorRtLlm(Engine):
    name = "tensorrt-llm"
    title = "TensorRT-LLM"
    loads_from_directory = True
    support = Support(("nvidia",), ("generate",), True, False, True)
    pipeline_parallel = True
    quantization_rules = (
        Rule(GGUF + ("bnb-nf4",), "error", "SC501", "TensorRT-LLM does not load {quantization} weights",
             "use `quantization: fp8`, `awq` or `gptq` with a ModelOpt or pre-quantized checkpoint"),
        Rule(("fp8",), "error", "SC502",
             "TensorRT-LLM has no FP8 recipe before compute capability 8.9; {gpu} has {cc}", FP8_HELP, gpu=cc_below(8.9)),
        Rule(("nvfp4", "mxfp4"), "error", "SC502", "TensorRT-LLM runs {quantization} on Blackwell only",
             "use a b200 or rtx-5090, or `quantization: fp8`", gpu=lambda g: g.cc < 10.0),
    )
    port = 8000
    images = {"nvidia": images.TENSORRT_LLM}
    releases = (Release(since=(0,), gpu_memory_utilization=0.9),)
    metrics = {}  # trtllm-serve's /metrics is iteration stats in JSON, not Prometheus text
    metrics_path = None
    flag_aliases = {"tp": "tp-size", "pp": "pp-size", "ep": "ep-size"}
    estimate_only = True
    options_path = "/etc/stackc/trtllm-options.yaml"

    def default_max_num_seqs(self, version, gpu, task) -> int:
        return 2048

    def budget(self, total: float, util: float, weights: float, plan: BudgetInputs) -> Budget:
        activation = self.activation(plan)
        free = total - weights - activation - 0.5 * GIB
        kv = free * util
        return Budget(total, weights + activation + kv, weights, activation, 0.5 * GIB, 0.0, kv, estimate_only=True)

    def model_arg(self, ec: EngineConfig) -> str:
        return ec.model

    def argv(self, ec: EngineConfig) -> list[str]:
        args = ["trtllm-serve", self.model_arg(ec), "--host", "0.0.0.0", "--port", str(self.port),
                "--backend", "pytorch", "--max_seq_len", str(ec.max_context),
                "--tp_size", str(ec.tensor_parallel), "--pp_size", str(ec.pipeline_parallel)]
        if ec.expert_parallel:
            args += ["--ep_size", str(ec.tensor_parallel)]
        if ec.max_num_seqs is not None:
            args += ["--max_batch_size", str(ec.max_num_seqs)]
        if ec.max_batched_tokens is not None:
            args += ["--max_num_tokens", str(ec.max_batched_tokens)]
        if self.options(ec):
            args += ["--extra_llm_api_options", self.options_path]
        return args + render_args(ec.extra_args)

    def options(self, ec: EngineConfig) -> dict:
        # the options file replaces the CLI's whole kv_cache_config, so the memory fraction
        # goes here too (a `--kv_cache_free_gpu_memory_fraction` beside it would be lost)
        kv: dict = {}
        if ec.gpu_memory_utilization is not None:
            kv["free_gpu_memory_fraction"] = ec.gpu_memory_utilization
        if ec.kv_cache_dtype == "fp8":
            kv["dtype"] = "fp8"
        if ec.prefix_caching is not None and ec.task == "generate":
            kv["enable_block_reuse"] = bool(ec.prefix_caching)
        if ec.kv_mechanism == "host-cache":
            # evicted reusable blocks go to host memory: bytes per rank
            cpu = sum(t.size_bytes for t in ec.kv_offload if t.tier == "cpu")
            kv["host_cache_size"] = cpu // (ec.tensor_parallel * ec.pipeline_parallel)
        return {"kv_cache_config": kv} if kv else {}

    def kv_tier_mechanism(self, version: Version, tiers: tuple[str, ...], vendor: str) -> tuple[Optional[str], str]:
        if set(tiers) <= {"cpu"}:
            return "host-cache", ""
        return None, "TensorRT-LLM offloads the KV cache to host memory only (a `cpu` tier)"

    def kv_tier_help(self, version: Version, tiers: tuple[str, ...], vendor: str) -> str:
        return "keep only the `cpu` tier, or serve this model with `engine: vllm` (LMCache runs disk and Redis tiers)"

    def managed_flags(self, ec: EngineConfig) -> set[str]:
        return super().managed_flags(ec) | {"extra-llm-api-options"}

    def canonical_flag(self, name: str) -> str:
        return super().canonical_flag(name).replace("_", "-")

    def resources(self, ec: EngineConfig) -> Resources:
        return Resources(shm_bytes=16 * GIB, memlock_unlimited=True, stack_bytes=67108864)

    def download(self, ec: EngineConfig, artifact: Artifact, image: str) -> Optional[DownloadStep]:
        if artifact.kind != "hf":
            from .downloads import default_download

            return default_download(ec, artifact, image, hf_cli=("hf",))
        # trtllm-serve takes no revision: fetch a pinned snapshot into a directory and serve that
        include, exclude = hf_patterns(ec, artifact)
        cmd = list(hf_download_command(artifact.ref, ec.revision, ec.cache_dir, include, exclude=exclude)) + [
            "--local-dir", local_dir(ec, artifact)]
        return DownloadStep(image, tuple(cmd[1:]), entrypoint=tuple(cmd[:1]), env=(("HF_HOME", f"{ec.cache_dir}/hf"),))


ENGINE = TensorRtLlm()
