"""SGLang (`python3 -m sglang.launch_server`, image `lmsysorg/sglang`).

SGLang reserves a static pool of `mem_fraction_static x total` for weights and KV cache;
activations live outside it. So the KV cache is the pool minus the weights.
"""

from __future__ import annotations

from typing import Optional, TYPE_CHECKING

from .. import images
from ..catalog import GpuInfo
from ..compat import FP8_HELP, GGUF, Rule, Support, cc_below, vendor_is
from ..ir_engine import EngineConfig, EnvValue, Health, KV_DISK_DIR, KvOffload, Resources
from ..ir_engine import Install
from .base import Budget, BudgetInputs, Engine, GIB, Release, Version, curl_probe
from .downloads import adapter_path
from .flags import listen_on, render_args
from .installs import venv_installs

if TYPE_CHECKING:
    from stackc.targets.systemd.options import Systemd


class Sglang(Engine):
    name = "sglang"
    title = "SGLang"
    runs_natively = True
    pip_package = "sglang[all]"  # what its venv installs from PyPI
    support = Support(("nvidia", "amd"), ("generate", "embed"), True, True, True)
    online_quantization = ("fp8",)
    pipeline_parallel = True
    shares_gpu = True
    quantization_rules = (
        Rule(("bnb-nf4",), "error", "SC501", "SGLang does not load bitsandbytes weights",
             "use `quantization: awq` or `gptq`"),
        Rule(("fp8",), "error", "SC502", "SGLang's FP8 kernels need compute capability 8.9; {gpu} has {cc}",
             FP8_HELP, gpu=cc_below(8.9)),
        Rule(("nvfp4",), "error", "SC502", "SGLang runs NVFP4 on Blackwell (SM100+) only",
             "use a b200, or `quantization: fp8`", gpu=lambda g: g.vendor == "nvidia" and g.cc < 10.0),
        Rule(GGUF, "error", "SC502", "SGLang loads GGUF on CUDA only", "use `engine: llama.cpp` on this GPU",
             gpu=vendor_is("amd")),
    )
    port = 30000
    images = {"nvidia": images.SGLANG}
    releases = (Release(since=(0,)),)
    pins_defaults = False  # SGLang sizes its own defaults from the GPU at start-up
    quantization_names = {
        "fp8": "fp8", "awq": "awq_marlin", "gptq": "gptq_marlin", "int8-w8a8": "w8a8_int8",
        "mxfp4": "mxfp4", "nvfp4": "modelopt_fp4", "gguf-q4_k_m": "gguf", "gguf-q5_k_m": "gguf", "gguf-q8_0": "gguf",
    }
    metrics = {"running": "sglang:num_running_reqs", "waiting": "sglang:num_queue_reqs",
               "kv_usage": "sglang:token_usage", "generated_tokens": "sglang:generation_tokens_total"}
    flag_aliases = {"tp": "tp-size", "tensor-parallel-size": "tp-size", "pp": "pp-size", "model": "model-path",
                    "mem-fraction": "mem-fraction-static", "ep": "ep-size", "ep-size": "ep-size"}

    def default_memory_share(self, version: Version, gpu: GpuInfo, plan: BudgetInputs) -> float:
        """SGLang's `_handle_gpu_memory_settings`: reserve room outside the static pool for the
        prefill chunk, CUDA graphs and TP buffers (at least 10 GiB on GPUs over 60 GB; 6 GiB more
        for a STANDALONE draft model), and give the rest to weights and KV cache."""
        gpu_mib = gpu.cuda_total_gib * 1024
        cuda_graph_max_bs = 256
        reserved = (512 + max(plan.batched_tokens, 2048) * 1.5 + cuda_graph_max_bs * 2
                    + plan.tp * plan.pp / 8 * 1024 + (6144 if plan.speculative else 0))
        if gpu_mib > 60 * 1024:
            reserved = max(reserved, 10 * 1024)
        return round((gpu_mib - reserved) / gpu_mib, 3)

    def default_max_num_seqs(self, version: Version, gpu: GpuInfo, task: str) -> int:
        return 2048  # SGLang derives it from the KV pool: at least 2048 running requests

    def default_max_batched_tokens(self, version: Version, gpu: GpuInfo, task: str) -> int:
        gib = gpu.cuda_total_gib  # SGLang's chunked_prefill_size default by GPU memory
        return 2048 if gib < 35 else 4096 if gib < 60 else 8192 if gib < 160 else 16384

    def budget(self, total: float, util: float, weights: float, plan: BudgetInputs) -> Budget:
        requested = total * util
        kv = requested - weights
        return Budget(total, requested, weights, self.activation(plan), 0.0, 0.0, kv)

    def entrypoint(self, ec: EngineConfig):
        return ("python3", "-m", "sglang.launch_server")

    # SGLang drains on SIGTERM with no flag and no bound (its health answers 503 meanwhile): the
    # orchestrator's grace period is the bound
    drainable = True

    # ---- KV-cache tiers: the hierarchical cache (host memory, then a storage backend)

    def kv_tier_mechanism(self, version: Version, tiers: tuple[str, ...], vendor: str) -> tuple[Optional[str], str]:
        if "redis" in tiers:
            return None, "SGLang's hierarchical cache has no Redis storage backend"
        if "disk" in tiers and "cpu" not in tiers:
            return None, "SGLang's disk tier sits below its host-memory tier: add a `cpu` tier above it"
        return "hicache", ""

    def kv_tier_help(self, version: Version, tiers: tuple[str, ...], vendor: str) -> str:
        if "redis" in tiers:
            return "remove the `redis` tier, or serve this model with `engine: vllm` (LMCache has a Redis backend)"
        return "add a `cpu` tier above the disk tier, e.g. `{tier: cpu, size: 64GiB}`"

    def tier_host_bytes(self, version: Version, mechanism: Optional[str], tiers: tuple[KvOffload, ...], ranks: int) -> int:
        return ranks * _hicache_gb(tiers, ranks) * 10**9

    def tier_env(self, ec: EngineConfig) -> list[tuple[str, str]]:
        ranks = ec.tensor_parallel * ec.pipeline_parallel
        out = []
        for t in ec.kv_offload:
            if t.tier == "disk":
                # the file backend's LRU cap is per rank, in bytes
                out += [("SGLANG_HICACHE_FILE_BACKEND_STORAGE_DIR", KV_DISK_DIR),
                        ("SGLANG_HICACHE_FILE_BACKEND_MAX_SIZE", str(t.size_bytes // ranks))]
        return out

    def argv(self, ec: EngineConfig) -> list[str]:
        args = ["--model-path", self.model_arg(ec), "--served-model-name", ec.served_name,
                "--host", "0.0.0.0", "--port", str(self.port), "--context-length", str(ec.max_context),
                "--enable-metrics"]
        if ec.revision:
            args += ["--revision", ec.revision]
        if ec.task != "generate":
            args += ["--is-embedding"]
        if ec.quantization_flag:
            args += ["--quantization", ec.quantization_flag]
        if ec.dtype != "auto":
            args += ["--dtype", ec.dtype]
        if ec.kv_cache_dtype == "fp8":
            args += ["--kv-cache-dtype", "fp8_e4m3"]
        if ec.tensor_parallel > 1:
            args += ["--tp-size", str(ec.tensor_parallel)]
        if ec.pipeline_parallel > 1:
            args += ["--pp-size", str(ec.pipeline_parallel)]
        if ec.expert_parallel:
            args += ["--ep-size", str(ec.tensor_parallel)]
        if ec.gpu_memory_utilization is not None:
            args += ["--mem-fraction-static", f"{ec.gpu_memory_utilization:g}"]
        if ec.max_num_seqs is not None:
            args += ["--max-running-requests", str(ec.max_num_seqs)]
        if ec.max_batched_tokens is not None:
            args += ["--chunked-prefill-size", str(ec.max_batched_tokens)]
        if ec.prefix_caching is False and ec.task == "generate":
            args += ["--disable-radix-cache"]
        if ec.enforce_eager:
            args += ["--disable-cuda-graph"]
        if ec.speculative:
            # with top-k 1, SGLang drafts steps + 1 tokens; it asserts on a partial setting
            draft, tokens = ec.speculative
            args += ["--speculative-algorithm", "STANDALONE", "--speculative-draft-model-path", draft,
                     "--speculative-num-steps", str(tokens), "--speculative-eagle-topk", "1",
                     "--speculative-num-draft-tokens", str(tokens + 1)]
        if ec.adapters:
            args += ["--enable-lora", "--lora-paths"]
            args += [f"{name}={adapter_path(source, ec.cache_dir)}" for name, source in ec.adapters]
        if ec.kv_mechanism == "hicache":
            # --hicache-size is whole GB (10^9) per rank and overrides --hicache-ratio
            args += ["--enable-hierarchical-cache", "--hicache-size",
                     str(_hicache_gb(ec.kv_offload, ec.tensor_parallel * ec.pipeline_parallel))]
            if any(t.tier == "disk" for t in ec.kv_offload):
                args += ["--hicache-storage-backend", "file"]
        return args + render_args(ec.extra_args)

    def env(self, ec: EngineConfig) -> list[tuple[str, EnvValue]]:
        return [*super().env(ec), *self.tier_env(ec)]

    def adapter_model(self, ec: EngineConfig, adapter: str) -> str:
        return f"{ec.served_name}:{adapter}"  # SGLang picks a LoRA adapter by `base:adapter`

    def health(self, ec: EngineConfig) -> Health:
        # /health answers 503 until warm-up is done; /v1/models answers earlier (gpustack#6203)
        return Health(self.port, "/health", curl_probe(self.port, "/health"))

    def resources(self, ec: EngineConfig) -> Resources:
        # SGLang's compose file: ipc host, memlock unlimited, 64 MiB stack
        return Resources(shm_bytes=16 * GIB if ec.tensor_parallel > 1 else 4 * GIB,
                         memlock_unlimited=True, stack_bytes=67108864)


    # ---- on a host: the venv stackc installs from a hashed lock

    def native_command(self, args: list[str], env: list, bind: str, port: int, s: "Systemd") -> tuple[list[str], list]:
        return [f"{s.sglang_venv}/bin/python3", "-m", "sglang.launch_server", *listen_on(args, bind, port)], env

    def native_python(self, s: "Systemd") -> str:
        return f"{s.sglang_venv}/bin/python3"

    def host_installs(self, ec: EngineConfig, s: "Systemd") -> list[Install]:
        return venv_installs(self, ec, s.sglang_venv)


def _hicache_gb(tiers, ranks: int) -> int:
    cpu = sum(t.size_bytes for t in tiers if t.tier == "cpu")
    return max(1, cpu // ranks // 10**9)

ENGINE = Sglang()
