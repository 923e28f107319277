"""One module per inference engine; this registry is the only place that lists them."""

from __future__ import annotations

from .base import Engine, parse_version, version_text
from .llamacpp import ENGINE as LLAMA_CPP
from .ollama import ENGINE as OLLAMA
from .sglang import ENGINE as SGLANG
from .tensorrt_llm import ENGINE as TENSORRT_LLM
from .tgi import ENGINE as TGI
from .vllm import ENGINE as VLLM

REGISTRY: dict[str, Engine] = {e.name: e for e in (VLLM, SGLANG, LLAMA_CPP, OLLAMA, TGI, TENSORRT_LLM)}


def get(name: str) -> Engine:
    return REGISTRY[name]


__all__ = ["Engine", "REGISTRY", "get", "parse_version", "version_text"]
