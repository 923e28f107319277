"""The back ends. This registry is the one list: the CLI's `--target` choices, the docs and
the test matrix all derive from it."""

from __future__ import annotations

from .base import Artifacts, Capabilities, Target
from .compose import ComposeTarget
from .helm import HelmTarget
from .systemd import SystemdTarget
from .terraform import TerraformTarget

REGISTRY: dict[str, Target] = {t.name: t for t in (ComposeTarget(), HelmTarget(), SystemdTarget(), TerraformTarget())}


def get(name: str) -> Target:
    return REGISTRY[name]


__all__ = ["Artifacts", "Capabilities", "Target", "REGISTRY", "get"]
