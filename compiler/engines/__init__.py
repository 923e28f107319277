"""One module per inference engine; this registry is the only place that lists them.

Adding an engine is its module (an `Engine` subclass and `ENGINE = ...`) and one line here. The
spec's `engine:` values are these names (`spec.Engine`); a module is imported the first time
its engine is asked for, so `stackc validate` loads only the engines the spec uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from importlib import import_module

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Engine

MODULES = {  # name -> module under stackc.engines, in the order the docs list them
    "vllm": "vllm",
    "sglang": "sglang",
    "llama.cpp": "llamacpp",
    "ollama": "ollama",
    "tgi": "tgi",
    "tensorrt-llm": "tensorrt_llm",
}


def names() -> tuple[str, ...]:
    """Every registered engine's name, in the registry's order; no engine module is imported."""
    return tuple(MODULES)


@cache
def _load(name: str) -> "Engine":
    where = MODULES[name]  # a module of this package, or a dotted path to one of another
    engine = import_module(where if "." in where else f"{__name__}.{where}").ENGINE
    assert engine.name == name, f"{where} defines `{engine.name}`, registered as `{name}`"
    return engine


class _Registry(Mapping):
    """Engine name -> Engine, imported on first use."""

    def __getitem__(self, name: str) -> "Engine":
        if name not in MODULES:
            raise KeyError(name)
        return _load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(MODULES)

    def __len__(self) -> int:
        return len(MODULES)


REGISTRY: Mapping[str, "Engine"] = _Registry()


def get(name: str) -> "Engine":
    return REGISTRY[name]


def __getattr__(name: str):
    if name in ("Engine", "parse_version", "version_text"):  # the base module, imported only when used
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Engine", "MODULES", "REGISTRY", "get", "names", "parse_version", "version_text"]
