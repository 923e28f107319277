"""The back ends, found through one entry-point group, `stackc.targets`: the built-in ones
(declared in stackc's own pyproject.toml) and any installed package's, the same way. This
registry is the one list: the CLI's `--target` choices, every "use a target that does"
message, the docs and the test matrix all read it.

Adding a target is a folder (a package whose `Target` subclass states its name, capabilities
and `emit`) and one line under `[project.entry-points."stackc.targets"]`; docs/architecture.md
walks through it. Names are read without importing any target; a target's module is imported
the first time it is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache

from .base import Artifacts, Capabilities, Target

GROUP = "stackc.targets"


@cache
def _entry_points() -> dict:
    from importlib.metadata import entry_points

    found: dict = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        if ep.name in found and found[ep.name].value != ep.value:
            raise RuntimeError(f"two installed packages register the `{ep.name}` target: "
                               f"`{found[ep.name].value}` and `{ep.value}`")
        found.setdefault(ep.name, ep)
    return found


@cache
def _load(name: str) -> Target:
    ep = _entry_points()[name]
    try:
        loaded = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plug-in is named, not a traceback
        raise RuntimeError(f"the `{name}` target (`{ep.value}`) could not be imported: {exc}") from exc
    target = loaded() if isinstance(loaded, type) else loaded
    if not isinstance(target, Target) or target.name != name:
        raise RuntimeError(f"`{ep.value}` is registered as the `{name}` target but is not a stackc Target named `{name}`")
    return target


class _Registry(Mapping):
    """Target name -> Target, loaded on first use."""

    def __getitem__(self, name: str) -> Target:
        if name not in _entry_points():
            raise KeyError(name)
        return _load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(_entry_points()))

    def __len__(self) -> int:
        return len(_entry_points())


REGISTRY: Mapping[str, Target] = _Registry()


def names() -> list[str]:
    """Every registered target's name, sorted; no target module is imported."""
    return list(REGISTRY)


def get(name: str) -> Target:
    return REGISTRY[name]


def reload() -> None:
    """Forget what was found (a test that installs a target into a running interpreter)."""
    _entry_points.cache_clear()
    _load.cache_clear()


__all__ = ["Artifacts", "Capabilities", "Target", "GROUP", "REGISTRY", "get", "names", "reload"]
