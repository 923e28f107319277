"""The back ends, found through one entry-point group, `stackc.targets` (`registry`): the
built-in ones (declared in stackc's own pyproject.toml) and any installed package's, the same
way. The registry is the one list: the CLI's `--target` choices, every "use a target that
does" message, the docs and the test matrix all read it.

Adding a target is a folder (a package whose `Target` subclass states its name, capabilities
and `emit`) and one line under `[project.entry-points."stackc.targets"]`; docs/architecture.md
walks through it.
"""

from __future__ import annotations

from .base import Artifacts, Capabilities, Target
from .registry import GROUP, REGISTRY, names, reload, targets_that


def get(name: str) -> Target:
    return REGISTRY[name]


__all__ = ["Artifacts", "Capabilities", "Target", "GROUP", "REGISTRY", "get", "names", "reload", "targets_that"]
