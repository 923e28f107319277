"""vLLM (`vllm serve`, image `vllm/vllm-openai`).

Memory accounting follows vLLM's own (facts-catalog.md section 3): the engine may take
`total x gpu_memory_utilization`; from that it subtracts the weights, the activation peak of a
profiling forward pass at `max_num_batched_tokens`, non-torch memory (NCCL and all-reduce
buffers grow with TP) and, from v0.20 on, its CUDA-graph estimate. The rest is KV cache.
"""

from __future__ import annotations

import json
from typing import Optional

from .. import images
from ..catalog import GpuInfo
from ..ir import EngineConfig, Resources
from .base import GIB, Budget, BudgetInputs, Engine, Release, Version, adapter_path, render_args


class Vllm(Engine):
    name = "vllm"
    title = "vLLM"
    port = 8000
    images = {"nvidia": images.VLLM, "amd": images.VLLM_ROCM}
    releases = (
        # before v0.20 the CUDA-graph memory was not profiled: it had to fit in the headroom
        Release(since=(0,), gpu_memory_utilization=0.90, extra={"profiles_cudagraphs": False, "runner_flag": False}),
        Release(since=(0, 10, 0), gpu_memory_utilization=0.90, extra={"profiles_cudagraphs": False, "runner_flag": True}),
        # PR #38284: CUDA-graph memory profiled by default, default utilization raised to 0.92
        Release(since=(0, 20, 0), gpu_memory_utilization=0.92, extra={"profiles_cudagraphs": True, "runner_flag": True}),
    )
    quantization_names = {
        "fp8": "fp8", "awq": "awq_marlin", "gptq": "gptq_marlin", "int8-w8a8": None, "bnb-nf4": "bitsandbytes",
        "mxfp4": "mxfp4", "nvfp4": None, "gguf-q4_k_m": "gguf", "gguf-q5_k_m": "gguf", "gguf-q8_0": "gguf",
    }
    flag_aliases = {
        "-tp": "tensor-parallel-size", "tp": "tensor-parallel-size",
        "-pp": "pipeline-parallel-size", "pp": "pipeline-parallel-size",
        "-q": "quantization", "q": "quantization",
        "-dp": "data-parallel-size", "-ep": "enable-expert-parallel",
        "model": "model", "served-model-name": "served-model-name",
        "no-enable-prefix-caching": "enable-prefix-caching",
        "task": "runner", "no-enable-chunked-prefill": "enable-chunked-prefill",
    }
    startup_overhead_s = 120  # torch.compile and CUDA-graph capture on first start

    def metric_names(self, version: Version) -> dict[str, str]:
        # `vllm:gpu_cache_usage_perc` was renamed `vllm:kv_cache_usage_perc` in v0.10
        kv = "vllm:kv_cache_usage_perc" if version >= (0, 10, 0) else "vllm:gpu_cache_usage_perc"
        return {"running": "vllm:num_requests_running", "waiting": "vllm:num_requests_waiting",
                "kv_usage": kv, "generated_tokens": "vllm:generation_tokens_total"}

    @staticmethod
    def _large(version: Version, gpu: GpuInfo) -> bool:
        # EngineArgs.get_batch_defaults (vLLM PR #12369, v0.8 on): the API server runs 1024
        # sequences and 8192 batched tokens on GPUs of 70 GiB or more that are not A100s,
        # 256 and 2048 elsewhere
        return version >= (0, 8, 0) and gpu.cuda_total_gib >= 70 and not gpu.id.startswith("a100")

    def default_max_num_seqs(self, version: Version, gpu: GpuInfo, task: str) -> int:
        return 1024 if self._large(version, gpu) else 256

    def default_max_batched_tokens(self, version: Version, gpu: GpuInfo, task: str) -> int:
        return 8192 if self._large(version, gpu) else 2048

    def budget(self, total: float, util: float, weights: float, plan: BudgetInputs) -> Budget:
        requested = total * util
        non_torch = 0.25 * GIB + (0.75 * GIB if plan.tp > 1 else 0.0) + (0.25 * GIB if plan.pp > 1 else 0.0)
        profiles = self.release(plan.version).extra.get("profiles_cudagraphs", True)
        cudagraph = plan.cudagraph_bytes if profiles else 0.0
        kv = requested - weights - plan.activation_bytes - non_torch - cudagraph
        return Budget(total, requested, weights, plan.activation_bytes, non_torch, cudagraph, kv)

    def argv(self, ec: EngineConfig) -> list[str]:
        release = self.release(ec.version)
        args = [self.model_arg(ec), "--served-model-name", ec.served_name, "--host", "0.0.0.0", "--port", str(self.port)]
        if ec.revision:
            args += ["--revision", ec.revision]
        if ec.task != "generate":
            if release.extra.get("runner_flag"):
                args += ["--runner", "pooling"]
            else:
                args += ["--task", "embed" if ec.task == "embed" else "score"]
        if ec.quantization_flag:
            args += ["--quantization", ec.quantization_flag]
        if ec.dtype != "auto":
            args += ["--dtype", ec.dtype]
        if ec.kv_cache_dtype == "fp8":
            args += ["--kv-cache-dtype", "fp8"]
        args += ["--max-model-len", str(ec.max_context)]
        if ec.tensor_parallel > 1:
            args += ["--tensor-parallel-size", str(ec.tensor_parallel)]
        if ec.pipeline_parallel > 1:
            args += ["--pipeline-parallel-size", str(ec.pipeline_parallel)]
        if ec.expert_parallel:
            args += ["--enable-expert-parallel"]
        if ec.gpu_memory_utilization is not None:
            args += ["--gpu-memory-utilization", _num(ec.gpu_memory_utilization)]
        if ec.max_num_seqs is not None:
            args += ["--max-num-seqs", str(ec.max_num_seqs)]
        if ec.max_batched_tokens is not None:
            args += ["--max-num-batched-tokens", str(ec.max_batched_tokens)]
        if ec.enforce_eager:
            args += ["--enforce-eager"]
        if ec.task == "generate" and ec.prefix_caching is not None:
            args += ["--enable-prefix-caching" if ec.prefix_caching else "--no-enable-prefix-caching"]
        if ec.speculative:
            draft, tokens = ec.speculative
            config = {"model": draft, "num_speculative_tokens": tokens}
            args += ["--speculative-config", json.dumps(config, sort_keys=True, separators=(",", ":"))]
        if ec.adapters:
            args += ["--enable-lora", "--max-loras", str(len(ec.adapters)), "--lora-modules"]
            args += [f"{name}={adapter_path(source, ec.cache_dir)}" for name, source in ec.adapters]
        return args + render_args(ec.extra_args)

    def resources(self, ec: EngineConfig) -> Resources:
        # PyTorch and NCCL use /dev/shm between ranks; vLLM's docs ask for --ipc=host or a large shm
        shm = 16 * GIB if ec.tensor_parallel * ec.pipeline_parallel > 1 else 4 * GIB
        return Resources(shm_bytes=shm)


def _num(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if "." in text else text + ".0"


ENGINE = Vllm()

