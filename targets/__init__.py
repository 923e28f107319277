"""The back ends, found through one entry-point group, `stackc.targets` (`registry`): the
built-in ones (declared in stackc's own pyproject.toml) and any installed package's, the same
way. The registry is the one list: the CLI's `--target` choices, the spec's target sections,
every "use a target that does" message, the docs and the test matrix all read it.

Adding a target is a folder (a package with a `Target` subclass stating its name, capabilities
and `emit`, and optionally an `options` module with its spec section) and one line under
`[project.entry-points."stackc.targets"]`; docs/architecture.md walks through it.

Names are imported from here lazily: `stackc.targets.registry` and a target's `options` module
are read by `validate`, which must not pay for `base` and the IR.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {"Artifacts": "base", "Capabilities": "base", "Target": "base", "GROUP": "registry",
            "REGISTRY": "registry", "names": "registry", "reload": "registry", "sections": "registry",
            "targets_that": "registry", "Section": "section"}


def get(name: str) -> Any:
    from .registry import REGISTRY

    return REGISTRY[name]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)


__all__ = ["get", *_EXPORTS]
