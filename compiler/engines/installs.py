"""What a host installs for an engine that runs from a virtual environment: Python's venv
support, and the venv from the hashed lock stackc ships for the engine's version (or, where it
has none, the top-level pin, which the terraform target refuses with SC612)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import locks
from ..ir_engine import EngineConfig
from ..ir_engine import Install

if TYPE_CHECKING:
    from .base import Engine


def venv_installs(engine: "Engine", ec: EngineConfig, venv: str) -> list[Install]:
    lmcache = ec.kv_mechanism == "lmcache"
    lock = locks.engine_lock(engine.name, ec.version, lmcache)
    return [Install("apt", "python3-venv"),
            Install("venv", venv, lock.file if lock else "", lock.requirement if lock else
                    locks.requirement(engine.pip_package, ec.version, lmcache))]
