"""vLLM (`vllm serve`, image `vllm/vllm-openai`).

Memory follows vLLM's own accounting (v1 `gpu_worker.determine_available_memory`, read in the
0.10.1, 0.11, 0.20 and 0.33 wheels; facts-catalog section 3):

    KV cache = total x gpu_memory_utilization
               - weights (torch memory after loading)
               - peak activation of the profiling run (a forward pass over
                 max_num_batched_tokens tokens, then the sampler over max_num_seqs rows)
               - non-torch memory (CUDA/cuBLAS workspaces, NCCL and all-reduce buffers)
               - the CUDA-graph estimate (profiled and subtracted from v0.20)

The KV cache is paged in blocks shared by KV-cache groups of equal size (one per attention
type in hybrid models); `Maximum concurrency` is blocks over the blocks one full-length
request pins across all groups, which for sliding-window models is not tokens / context.
"""

from __future__ import annotations

import json
import math
from typing import Optional, TYPE_CHECKING

from .. import images
from ..catalog import GpuInfo
from ..compat import FP8_HELP, GGUF, Rule, Support, cc_below, vendor_is
from ..ir_engine import EngineConfig, EnvValue, KV_DISK_DIR, KvOffload, Resources, SecretRef
from ..ir_engine import Install
from ..memory import KvShape, kv_layer_groups
from .base import (Budget, BudgetInputs, Capacity, Engine, GIB, Release, Version, blocks, forward_activation_bytes,
                   version_text)
from .downloads import adapter_path
from .flags import listen_on, render_args
from .installs import venv_installs

if TYPE_CHECKING:
    from stackc.targets.systemd.options import Systemd

# Bytes per element of the [max_num_seqs, vocab] logits the profiling run pushes through the
# sampler, at its peak. vLLM's own top-k/top-p path (v1 `apply_top_k_top_p`) holds the 16-bit
# logits and their fp32 copy (6), the sorted values and int64 indices (12), the softmax of the
# sorted values (4), the top-p mask (1) and the scattered result (4): about 28 bytes.
# FlashInfer's fused top-k/top-p kernel keeps the fp32 logits and probabilities (8). The v0
# engine's profile run samples nothing beyond the fp32 logits (4).
SAMPLER_NATIVE_BYTES = 28
SAMPLER_FLASHINFER_BYTES = 8
SAMPLER_V0_BYTES = 4

TIERS_SINCE = (0, 14, 0)  # native CPU offloading works (PR #24498), and the release images ship LMCache
NATIVE_OFFLOAD_SHM = (0, 27, 0)  # the CPU tier moved into one /dev/shm file (vLLM PR #50094)
SHUTDOWN_SINCE = (0, 18, 0)  # `--shutdown-timeout` (PRs #34730, #36666); 0, its default, aborts at once
LMCACHE_CHUNK_TOKENS = 256  # LMCache's default chunk, stated so a change of default does not move it
LMCACHE_STAGING_GIB = 5.0  # LMCache's default local CPU buffer, kept for staging when no cpu tier is asked


class Vllm(Engine):
    name = "vllm"
    title = "vLLM"
    runs_natively = True
    pip_package = "vllm"  # what its venv installs from PyPI
    support = Support(("nvidia", "amd"), ("generate", "embed", "rerank"), True, True, True)
    online_quantization = ("fp8", "bnb-nf4")
    pipeline_parallel = True
    shares_gpu = True
    quantization_rules = (
        Rule(GGUF, "error", "SC501", "vLLM {version} no longer loads GGUF (removed after v0.20, RFC #39583)",
             "use `engine: llama.cpp` or `engine: ollama` for GGUF weights, or an `image:` of vLLM v0.20 or older",
             since=(0, 21)),
        Rule(("bnb-nf4",), "error", "SC501", "vLLM {version} no longer supports bitsandbytes (removed after v0.20)",
             "use `quantization: awq` or `gptq` with a pre-quantized checkpoint", since=(0, 21)),
        Rule(("bnb-nf4",), "error", "SC502", "bitsandbytes in vLLM runs on NVIDIA GPUs only",
             "use `quantization: gptq` on this GPU", gpu=vendor_is("amd")),
        Rule(("fp8",), "warn", "SC503",
             "{gpu} (compute capability {cc}) has no FP8 tensor cores: vLLM runs these FP8 weights weight-only through "
             "Marlin, with bf16 compute", FP8_HELP, gpu=cc_below(8.9)),
        Rule(("nvfp4",), "warn", "SC503",
             "{gpu} has no FP4 tensor cores: vLLM emulates NVFP4 (weight-only), slower than on Blackwell",
             "use a Blackwell GPU (b200, rtx-5090) for native FP4", gpu=lambda g: g.vendor == "nvidia" and not g.fp4),
        Rule(("awq",), "error", "SC502", "vLLM's AWQ kernels do not run on AMD GPUs",
             "use `quantization: gptq` or `fp8` on this GPU", gpu=vendor_is("amd")),
        Rule(("mxfp4", "awq", "gptq"), "error", "SC502",
             "{gpu} (compute capability {cc}) is below the 8.0 vLLM's Marlin kernels need", "use an Ampere or newer GPU",
             gpu=cc_below(8.0)),
    )
    port = 8000
    images = {"nvidia": images.VLLM, "amd": images.VLLM_ROCM}
    releases = (
        # the v0 engine: profiles one prefill of max_num_batched_tokens (the whole context when
        # chunked prefill is off), samples with its own sampler; graphs fit in the headroom
        Release(since=(0,), gpu_memory_utilization=0.90,
                extra={"engine": "v0", "sampler": SAMPLER_V0_BYTES, "profiles_cudagraphs": False,
                       "runner_flag": False, "tokens": "blocks"}),
        # v1 (default from v0.8): FlashInfer top-k/top-p sampling whenever FlashInfer is
        # installed (the release images ship it; VLLM_USE_FLASHINFER_SAMPLER unset means on)
        Release(since=(0, 8, 0), gpu_memory_utilization=0.90,
                extra={"engine": "v1", "sampler": SAMPLER_FLASHINFER_BYTES, "profiles_cudagraphs": False,
                       "runner_flag": False, "tokens": "blocks"}),
        Release(since=(0, 10, 0), gpu_memory_utilization=0.90,
                extra={"engine": "v1", "sampler": SAMPLER_FLASHINFER_BYTES, "profiles_cudagraphs": False,
                       "runner_flag": True, "tokens": "blocks"}),
        # v0.20: CUDA-graph memory profiled and subtracted by default, utilization 0.92
        # (PR #38284); FlashInfer sampling becomes opt-in, so the native sampler runs
        Release(since=(0, 20, 0), gpu_memory_utilization=0.92,
                extra={"engine": "v1", "sampler": SAMPLER_NATIVE_BYTES, "profiles_cudagraphs": True,
                       "runner_flag": True, "tokens": "blocks"}),
        # the token count became group-aware (max concurrency x max_model_len); seen in 0.24 logs
        Release(since=(0, 24, 0), gpu_memory_utilization=0.92,
                extra={"engine": "v1", "sampler": SAMPLER_NATIVE_BYTES, "profiles_cudagraphs": True,
                       "runner_flag": True, "tokens": "concurrency"}),
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
    image_entrypoint = ("vllm", "serve")
    drainable = True

    # ---- KV-cache tiers

    def kv_tier_mechanism(self, version: Version, tiers: tuple[str, ...], vendor: str) -> tuple[Optional[str], str]:
        """A CPU tier alone runs on vLLM's native offloading (`--kv-offloading-size`, working
        from 0.14: in 0.11.1-0.13 the flag exists but the CPU block count is never set). Disk
        and Redis tiers run on LMCache inside the engine, which the CUDA release images ship
        from 0.14 (built with INSTALL_KV_CONNECTORS); the ROCm images do not."""
        if version < TIERS_SINCE:
            return None, f"vLLM runs KV-cache tiers from {version_text(TIERS_SINCE)}"
        if set(tiers) <= {"cpu"}:
            return "native", ""
        if vendor != "nvidia":
            return None, "vLLM runs disk and Redis tiers on LMCache, which its ROCm image does not ship"
        return "lmcache", ""

    def kv_tier_help(self, version: Version, tiers: tuple[str, ...], vendor: str) -> str:
        if version < TIERS_SINCE:
            pinned = self.default_image(vendor) or images.VLLM
            return f"remove `image:` to run the pinned `{pinned.ref}`, or pin {version_text(TIERS_SINCE)} or later"
        return "keep only the `cpu` tier on AMD GPUs"

    def tier_host_bytes(self, version: Version, mechanism: Optional[str], tiers: tuple[KvOffload, ...], ranks: int) -> int:
        cpu = sum(t.size_bytes for t in tiers if t.tier == "cpu")
        if mechanism == "lmcache":
            # each rank pins LMCACHE_MAX_LOCAL_CPU_SIZE; without a cpu tier LMCache still
            # stages disk and Redis transfers through its default buffer
            return cpu if cpu else ranks * LMCACHE_STAGING_GIB * GIB
        if mechanism == "native" and version < NATIVE_OFFLOAD_SHM:
            # each worker pins its share through PyTorch, which rounds pinned blocks up to a power of two
            share = cpu / ranks / GIB
            return ranks * int(2 ** math.ceil(math.log2(max(share, 1)))) * GIB
        return cpu

    def metric_names(self, version: Version) -> dict[str, str]:
        # `vllm:gpu_cache_usage_perc` was renamed `vllm:kv_cache_usage_perc` in v0.10
        kv = "vllm:kv_cache_usage_perc" if version >= (0, 10, 0) else "vllm:gpu_cache_usage_perc"
        return {"running": "vllm:num_requests_running", "waiting": "vllm:num_requests_waiting",
                "kv_usage": kv, "generated_tokens": "vllm:generation_tokens_total", "requests": "vllm:request_success_total"}

    # ---- defaults

    def _v0(self, version: Version, gpu: GpuInfo) -> bool:
        """The v0 engine runs before v0.8, and on GPUs v1 did not support yet (compute < 8.0)."""
        return version < (0, 8, 0) or (version < (0, 10, 0) and gpu.vendor == "nvidia" and gpu.cc < 8.0)

    def _large(self, version: Version, gpu: GpuInfo) -> bool:
        # EngineArgs.get_batch_defaults (v1): the API server runs 1024 sequences and 8192
        # batched tokens on GPUs of 70 GiB or more that are not A100s, 256 and 2048 elsewhere
        return not self._v0(version, gpu) and gpu.cuda_total_gib >= 70 and not gpu.id.startswith("a100")

    def default_max_num_seqs(self, version: Version, gpu: GpuInfo, task: str) -> int:
        return 1024 if self._large(version, gpu) else 256

    def default_max_batched_tokens(self, version: Version, gpu: GpuInfo, task: str) -> int:
        return 8192 if self._large(version, gpu) else 2048

    def profiled_tokens(self, plan: BudgetInputs) -> int:
        """Tokens of the profiling forward pass. v0 without chunked prefill (contexts up to 32K)
        prefills a whole sequence in one step: max(max_model_len, the batched-token setting)."""
        if self._v0(plan.version, plan.gpu) and plan.max_context <= 32768:
            return max(plan.max_context, plan.batched_tokens)
        if plan.task != "generate":
            return max(plan.max_context, plan.batched_tokens)  # pooling: no chunked prefill
        return plan.batched_tokens

    # ---- memory

    def activation(self, plan: BudgetInputs) -> float:
        release = self.release(plan.version)
        m = plan.model
        forward = forward_activation_bytes(m, self.profiled_tokens(plan), plan.tp)
        if plan.task != "generate":
            return forward  # the pooler runs instead of the sampler
        rows = min(plan.max_num_seqs, plan.batched_tokens)
        if self._v0(plan.version, plan.gpu):
            per_element = SAMPLER_V0_BYTES
        elif plan.gpu.vendor != "nvidia":
            per_element = SAMPLER_NATIVE_BYTES  # FlashInfer is CUDA-only
        else:
            per_element = release.extra["sampler"]
        return forward + rows * m.vocab_size * per_element

    def cudagraph(self, plan: BudgetInputs) -> float:
        """CUDA-graph pool: grows with the layers captured and the batch sizes captured (up to
        512 sequences); nothing when graphs are off."""
        if plan.enforce_eager:
            return 0.0
        captured = min(plan.max_num_seqs, 512) / 256
        return 0.007 * GIB * plan.model.layers / plan.pp * captured

    def non_torch(self, plan: BudgetInputs) -> float:
        """Memory outside torch's allocator: cuBLAS and attention workspaces, plus NCCL and the
        custom all-reduce buffers once there is more than one rank."""
        return (0.2 + (0.3 if plan.tp > 1 else 0.0) + (0.2 if plan.pp > 1 else 0.0)) * GIB

    def budget(self, total: float, util: float, weights: float, plan: BudgetInputs) -> Budget:
        requested = total * util
        profiles = self.release(plan.version).extra["profiles_cudagraphs"]
        cudagraph = self.cudagraph(plan) if profiles else 0.0
        activation, non_torch = self.activation(plan), self.non_torch(plan)
        kv = requested - weights - activation - non_torch - cudagraph
        return Budget(total, requested, weights, activation, non_torch, cudagraph, kv)

    def block_size(self, plan: BudgetInputs) -> int:
        """16 tokens, except MLA backends: FlashMLA (Hopper) pages in 64, CUTLASS MLA (Blackwell) in 128."""
        if plan.model.attention.is_mla and plan.gpu.vendor == "nvidia":
            return 128 if plan.gpu.cc >= 10.0 else 64 if plan.gpu.cc >= 9.0 else 16
        return 16

    def capacity(self, kv_bytes: float, shape: KvShape, plan: BudgetInputs) -> Capacity:
        """vLLM's KV-cache groups: layers of one attention type form groups of equal size, every
        group pages the same number of blocks, and a request at max_model_len pins blocks in
        every group (kv_cache_planning.py, kv_cache_utils.py)."""
        if shape.per_token == 0:
            return Capacity(0, None)
        if shape.per_layer <= 0:
            return super().capacity(kv_bytes, shape, plan)
        block = self.block_size(plan)
        groups = kv_layer_groups(shape)
        group_layers = max(size for _, size, _ in groups)
        page = block * shape.per_layer
        num_blocks = int(kv_bytes // (page * group_layers))
        length, batch = plan.max_context, plan.batched_tokens
        per_request = 0
        for kind, _, count in groups:
            if kind == "full":
                need = blocks(length, block)
            elif kind == "sliding":
                need = blocks(min(shape.window - 1 + batch, length), block) + 1
            else:  # chunked local attention
                need = blocks(min(shape.chunk + batch, length), block)
            per_request += need * count
        concurrency = num_blocks / per_request
        if self.release(plan.version).extra["tokens"] == "concurrency":
            tokens = int(concurrency * length)
        else:
            tokens = num_blocks // sum(count for _, _, count in groups) * block
        return Capacity(tokens, concurrency)

    # ---- rendering

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
        if ec.kv_mechanism == "native":
            cpu = sum(t.size_bytes for t in ec.kv_offload if t.tier == "cpu")
            args += ["--kv-offloading-size", _num(cpu / GIB), "--kv-offloading-backend", "native"]
        elif ec.kv_mechanism == "lmcache":
            args += ["--kv-transfer-config", json.dumps({"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"},
                                                        sort_keys=True, separators=(",", ":"))]
        return args + self.shutdown_flags(ec) + render_args(ec.extra_args)

    def shutdown_flags(self, ec: EngineConfig) -> list[str]:
        """On SIGTERM vLLM stops taking new requests (they get an immediate abort, not an error a
        router would retry: the drain wrapper keeps them away first) and lets those in flight,
        streams included, finish for this long."""
        if ec.shutdown_timeout_s and ec.version >= SHUTDOWN_SINCE:
            return ["--shutdown-timeout", str(ec.shutdown_timeout_s)]
        return []

    def env(self, ec: EngineConfig) -> list[tuple[str, EnvValue]]:
        env: list[tuple[str, EnvValue]] = list(super().env(ec))
        if ec.kv_mechanism == "lmcache":
            env += lmcache_env(ec)
        return env

    def resources(self, ec: EngineConfig) -> Resources:
        # PyTorch and NCCL use /dev/shm between ranks; vLLM's docs ask for --ipc=host or a large shm
        shm = 16 * GIB if ec.tensor_parallel * ec.pipeline_parallel > 1 else 4 * GIB
        if ec.kv_mechanism == "native":
            # from 0.27 the CPU tier is one file in /dev/shm, registered with CUDA; vLLM refuses
            # to start when the shm is smaller
            shm += sum(t.size_bytes for t in ec.kv_offload if t.tier == "cpu")
        return Resources(shm_bytes=shm)


    # ---- on a host: the venv stackc installs from a hashed lock

    def native_command(self, args: list[str], env: list, bind: str, port: int, s: "Systemd") -> tuple[list[str], list]:
        return [f"{s.vllm_venv}/bin/vllm", "serve", *listen_on(args, bind, port)], env

    def native_python(self, s: "Systemd") -> str:
        return f"{s.vllm_venv}/bin/python3"

    def host_installs(self, ec: EngineConfig, s: "Systemd") -> list[Install]:
        return venv_installs(self, ec, s.vllm_venv)


def lmcache_env(ec: EngineConfig) -> list[tuple[str, EnvValue]]:
    """LMCache configured through its environment only: a config file could not hold the
    Redis URL without writing the secret into it. LMCache sizes are GiB per rank (worker
    process), the spec's per replica."""
    ranks = ec.tensor_parallel * ec.pipeline_parallel
    cpu = sum(t.size_bytes for t in ec.kv_offload if t.tier == "cpu")
    env: list[tuple[str, EnvValue]] = [
        ("LMCACHE_CHUNK_SIZE", str(LMCACHE_CHUNK_TOKENS)),
        ("LMCACHE_LOCAL_CPU", "True" if cpu else "False"),
        ("LMCACHE_MAX_LOCAL_CPU_SIZE", _num(cpu / ranks / GIB) if cpu else _num(LMCACHE_STAGING_GIB)),
    ]
    for t in ec.kv_offload:
        if t.tier == "disk":
            env += [("LMCACHE_LOCAL_DISK", f"file://{KV_DISK_DIR}/"),
                    ("LMCACHE_MAX_LOCAL_DISK_SIZE", _num(t.size_bytes / ranks / GIB))]
        elif t.tier == "redis":
            env += [("LMCACHE_REMOTE_URL", SecretRef(t.url_secret)), ("LMCACHE_REMOTE_SERDE", "naive")]
    return env


def _num(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if "." in text else text + ".0"

ENGINE = Vllm()
