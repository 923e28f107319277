"""Which engine runs which quantization on which GPU for which task, keyed by engine version.

One table, read top to bottom; the first row that matches decides. A row is an error where
the engine refuses to start, a warning where it degrades (FP8 on Ampere runs weight-only in
vLLM). Sources: facts-catalog.md section 5 and the vLLM quantization `get_min_capability`
table (section 3.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .catalog import GpuInfo

Version = tuple[int, ...]
ANY = None


@dataclass(frozen=True)
class Rule:
    engine: str
    quantizations: Optional[tuple[str, ...]]  # None: any
    verdict: str  # ok | warn | error
    code: str = ""
    message: str = ""
    help: str = ""
    gpu: Optional[Callable[[GpuInfo], bool]] = None
    since: Version = (0,)
    until: Optional[Version] = None  # exclusive

    def matches(self, engine: str, version: Version, quantization: str, gpu: GpuInfo) -> bool:
        return (
            self.engine == engine
            and (self.quantizations is None or quantization in self.quantizations)
            and version >= self.since
            and (self.until is None or version < self.until)
            and (self.gpu is None or self.gpu(gpu))
        )


def cc_below(x: float) -> Callable[[GpuInfo], bool]:
    return lambda g: g.vendor == "nvidia" and g.cc < x


def vendor_is(*vendors: str) -> Callable[[GpuInfo], bool]:
    return lambda g: g.vendor in vendors


GGUF = ("gguf-q4_k_m", "gguf-q5_k_m", "gguf-q8_0")
FP8_HELP = "use a GPU with compute capability 8.9 or newer (l4, l40s, h100-sxm, h200), or `quantization: awq`"

QUANTIZATION_RULES: tuple[Rule, ...] = (
    # --- vLLM
    Rule("vllm", GGUF, "error", "SC501", "vLLM {version} no longer loads GGUF (removed after v0.20, RFC #39583)",
         "use `engine: llama.cpp` or `engine: ollama` for GGUF weights, or an `image:` of vLLM v0.20 or older",
         since=(0, 21)),
    Rule("vllm", ("bnb-nf4",), "error", "SC501", "vLLM {version} no longer supports bitsandbytes (removed after v0.20)",
         "use `quantization: awq` or `gptq` with a pre-quantized checkpoint", since=(0, 21)),
    Rule("vllm", ("bnb-nf4",), "error", "SC502", "bitsandbytes in vLLM runs on NVIDIA GPUs only",
         "use `quantization: gptq` on this GPU", gpu=vendor_is("amd")),
    Rule("vllm", ("fp8",), "warn", "SC503",
         "{gpu} (compute capability {cc}) has no FP8 tensor cores: vLLM runs these FP8 weights weight-only through "
         "Marlin, with bf16 compute", FP8_HELP, gpu=cc_below(8.9)),
    Rule("vllm", ("nvfp4",), "warn", "SC503",
         "{gpu} has no FP4 tensor cores: vLLM emulates NVFP4 (weight-only), slower than on Blackwell",
         "use a Blackwell GPU (b200, rtx-5090) for native FP4", gpu=lambda g: g.vendor == "nvidia" and not g.fp4),
    Rule("vllm", ("awq",), "error", "SC502", "vLLM's AWQ kernels do not run on AMD GPUs",
         "use `quantization: gptq` or `fp8` on this GPU", gpu=vendor_is("amd")),
    Rule("vllm", ("mxfp4", "awq", "gptq"), "error", "SC502",
         "{gpu} (compute capability {cc}) is below the 8.0 vLLM's Marlin kernels need", "use an Ampere or newer GPU",
         gpu=cc_below(8.0)),
    # --- SGLang
    Rule("sglang", ("bnb-nf4",), "error", "SC501", "SGLang does not load bitsandbytes weights",
         "use `quantization: awq` or `gptq`"),
    Rule("sglang", ("fp8",), "error", "SC502", "SGLang's FP8 kernels need compute capability 8.9; {gpu} has {cc}",
         FP8_HELP, gpu=cc_below(8.9)),
    Rule("sglang", ("nvfp4",), "error", "SC502", "SGLang runs NVFP4 on Blackwell (SM100+) only",
         "use a b200, or `quantization: fp8`", gpu=lambda g: g.vendor == "nvidia" and g.cc < 10.0),
    Rule("sglang", GGUF, "error", "SC502", "SGLang loads GGUF on CUDA only", "use `engine: llama.cpp` on this GPU",
         gpu=vendor_is("amd")),
    # --- TensorRT-LLM
    Rule("tensorrt-llm", GGUF + ("bnb-nf4",), "error", "SC501", "TensorRT-LLM does not load {quantization} weights",
         "use `quantization: fp8`, `awq` or `gptq` with a ModelOpt or pre-quantized checkpoint"),
    Rule("tensorrt-llm", ("fp8",), "error", "SC502",
         "TensorRT-LLM has no FP8 recipe before compute capability 8.9; {gpu} has {cc}", FP8_HELP, gpu=cc_below(8.9)),
    Rule("tensorrt-llm", ("nvfp4", "mxfp4"), "error", "SC502", "TensorRT-LLM runs {quantization} on Blackwell only",
         "use a b200 or rtx-5090, or `quantization: fp8`", gpu=lambda g: g.cc < 10.0),
    # --- llama.cpp and Ollama load GGUF
    Rule("llama.cpp", GGUF + ("mxfp4",), "ok"),
    Rule("llama.cpp", None, "error", "SC501", "llama.cpp loads GGUF files, not {quantization} checkpoints",
         "set `quantization: gguf-q4_k_m` (or q5_k_m, q8_0) and `weights: hf.co/<org>/<repo>-GGUF:Q4_K_M`"),
    Rule("ollama", GGUF + ("mxfp4", "none"), "ok"),
    Rule("ollama", None, "error", "SC501", "Ollama runs GGUF models from its library, not {quantization} checkpoints",
         "set `quantization: gguf-q4_k_m` and `weights:` to an Ollama tag such as `qwen2.5:7b-instruct-q4_K_M`"),
    # --- TGI
    Rule("tgi", GGUF + ("mxfp4", "nvfp4", "int8-w8a8"), "error", "SC501", "TGI does not serve {quantization} weights",
         "use `quantization: awq`, `gptq`, `fp8` or `bnb-nf4`"),
    Rule("tgi", ("fp8",), "warn", "SC503", "{gpu} (compute capability {cc}) has no FP8 tensor cores: TGI runs FP8 "
         "weight-only through Marlin", FP8_HELP, gpu=cc_below(8.9)),
)


@dataclass(frozen=True)
class Support:
    vendors: tuple[str, ...]
    tasks: tuple[str, ...]
    speculative: bool
    adapters: bool
    kv_fp8: bool


ENGINE_SUPPORT = {
    "vllm": Support(("nvidia", "amd"), ("generate", "embed", "rerank"), True, True, True),
    "sglang": Support(("nvidia", "amd"), ("generate", "embed"), True, True, True),
    # llama-server's draft model and LoRA take local GGUF files and are not chosen per request by
    # model name; TGI picks adapters by `adapter_id`, not by model name: stackc does not wire them
    "llama.cpp": Support(("nvidia", "amd", "apple"), ("generate", "embed", "rerank"), False, False, True),
    "ollama": Support(("nvidia", "amd", "apple"), ("generate", "embed"), False, False, True),
    "tgi": Support(("nvidia", "amd"), ("generate",), False, False, True),
    "tensorrt-llm": Support(("nvidia",), ("generate",), True, False, True),
}

# Engines that can quantize unquantized weights while loading them
ONLINE_QUANTIZATION = {
    "vllm": ("fp8", "bnb-nf4"),
    "sglang": ("fp8",),
    "tgi": ("fp8", "bnb-nf4"),
}


def check_quantization(engine: str, version: Version, quantization: str, gpu: GpuInfo) -> Optional[Rule]:
    for rule in QUANTIZATION_RULES:
        if rule.matches(engine, version, quantization, gpu):
            return None if rule.verdict == "ok" else rule
    return None


def fill(text: str, **values) -> str:
    return text.format(**values)
