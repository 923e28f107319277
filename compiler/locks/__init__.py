"""Hashed pip locks for every virtual environment a host installs: the engines that run
natively (vLLM, with LMCache where its connector is configured; SGLang) and the gateway.

Each lock pins every package to one version and the sha256 of each file a CPython 3.12 on
Linux x86_64 (glibc 2.39, Ubuntu 24.04, the clouds' boot images) can install; a first boot
runs `pip install --require-hashes --no-deps -r LOCK`, so nothing floats with the day of the
boot. `regenerate.sh` (beside this file) rebuilds them from the top-level pins; the pins must
be the versions `images.py` pins (a test holds them together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import images
from ..engines.base import Version, version_text

PYTHON = (3, 12)  # the interpreter every lock is resolved for


@dataclass(frozen=True)
class Lock:
    """A hashed pip lock shipped with stackc, for one virtual environment a host installs."""

    file: str  # the lock's file name, in this package and in the output
    requirement: str  # its top-level pins, for messages and docs
    requires_python: tuple[tuple[int, ...], tuple[int, ...]]  # [lowest, above-highest) of the top-level pins

    def text(self) -> bytes:
        from importlib import resources  # with tempfile, shutil and the archive modules: only a build reads a lock

        return resources.files(__package__).joinpath(self.file).read_bytes()

    def admits(self, python: tuple[int, int]) -> bool:
        low, high = self.requires_python
        return low <= python < high


LMCACHE = "lmcache==0.5.6"  # what vLLM 0.33.0's release image installs (requirements/kv_connectors.txt)
# Requires-Python from PyPI's index: vllm 0.33.0 `<3.15,>=3.11`, lmcache 0.5.6 `<3.14,>=3.10`,
# sglang 0.5.21 `>=3.10`, litellm 1.104.2 `<3.15,>=3.10`
_LOCKS = {
    ("vllm", (0, 33, 0), False): Lock("vllm-0.33.0.txt", "vllm==0.33.0", ((3, 11), (3, 15))),
    ("vllm", (0, 33, 0), True): Lock("vllm-0.33.0-lmcache.txt", f"vllm==0.33.0 {LMCACHE}", ((3, 11), (3, 14))),
    ("sglang", (0, 5, 21), False): Lock("sglang-0.5.21.txt", "sglang[all]==0.5.21", ((3, 10), (4,))),
}
# the gateway, with what its image ships beside `litellm[proxy]`: the Prometheus client
# (`callbacks: [prometheus]`) and prisma (a bad key answers 401)
GATEWAY = Lock("litellm-1.104.2-gateway.txt",
               f"{images.GATEWAY_LITELLM_PYPI} prometheus-client==0.26.0 prisma==0.15.0", ((3, 10), (3, 15)))


def engine_lock(engine: str, version: Version, lmcache: bool) -> Optional[Lock]:
    """The lock for an engine's virtual environment, or None where stackc has none (a version
    other than the pinned one)."""
    return _LOCKS.get((engine, tuple(version), lmcache))


def requirement(package: str, version: Version, lmcache: bool) -> str:
    """What a lock of `package` (the engine's `pip_package`) would pin at top level: for
    messages where there is no lock."""
    return f"{package}=={version_text(version)}" + (f" {LMCACHE}" if lmcache else "")


def all_locks() -> list[Lock]:
    return [*_LOCKS.values(), GATEWAY]


def by_file(name: str) -> Lock:
    return next(lock for lock in all_locks() if lock.file == name)
