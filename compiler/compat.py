"""The vocabulary of the engines' support tables: which quantization runs on which GPU, keyed
by engine version (`Rule`), and which GPU vendors, tasks and features an engine serves
(`Support`). Each engine states its own table in its module (`quantization_rules`,
`support`); a row is an error where the engine refuses to start, a warning where it degrades
(FP8 on Ampere runs weight-only in vLLM). Sources: facts-catalog.md section 5 and the vLLM
quantization `get_min_capability` table (section 3.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from .catalog import GpuInfo

if TYPE_CHECKING:
    from .engines.base import Engine

Version = tuple[int, ...]
ANY = None


@dataclass(frozen=True)
class Rule:
    """One row of an engine's table (`Engine.quantization_rules`), read top to bottom: the first
    row that matches decides."""

    quantizations: Optional[tuple[str, ...]]  # None: any
    verdict: str  # ok | warn | error
    code: str = ""
    message: str = ""
    help: str = ""
    gpu: Optional[Callable[[GpuInfo], bool]] = None
    since: Version = (0,)
    until: Optional[Version] = None  # exclusive

    def matches(self, version: Version, quantization: str, gpu: GpuInfo) -> bool:
        return (
            (self.quantizations is None or quantization in self.quantizations)
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

@dataclass(frozen=True)
class Support:
    """What one engine supports: GPU vendors, tasks, speculative decoding, adapters, an FP8 KV cache."""

    vendors: tuple[str, ...]
    tasks: tuple[str, ...]
    speculative: bool
    adapters: bool
    kv_fp8: bool


def check_quantization(engine: "Engine", version: Version, quantization: str, gpu: GpuInfo) -> Optional[Rule]:
    """The first of the engine's rules that matches, unless it says the combination runs."""
    for rule in engine.quantization_rules:
        if rule.matches(version, quantization, gpu):
            return None if rule.verdict == "ok" else rule
    return None


def fill(text: str, **values) -> str:
    return text.format(**values)
