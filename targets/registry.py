"""Where targets come from: the `stackc.targets` entry-point group, read once. Names are listed
without importing any target; a target's module is imported the first time it is asked for.
This module imports no target and not `base`, so `base` can ask it which targets can do what.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Target

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
def _load(name: str) -> "Target":
    ep = _entry_points()[name]
    try:
        loaded = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plug-in is named, not a traceback
        raise RuntimeError(f"the `{name}` target (`{ep.value}`) could not be imported: {exc}") from exc
    target = loaded() if isinstance(loaded, type) else loaded
    if getattr(target, "name", None) != name or not callable(getattr(target, "emit", None)) \
            or not hasattr(target, "capabilities"):
        raise RuntimeError(f"`{ep.value}` is registered as the `{name}` target but is not a stackc Target named `{name}`")
    return target


class _Registry(Mapping):
    """Target name -> Target, loaded on first use."""

    def __getitem__(self, name: str) -> "Target":
        if name not in _entry_points():
            raise KeyError(name)
        return _load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(_entry_points()))

    def __len__(self) -> int:
        return len(_entry_points())


REGISTRY: Mapping[str, "Target"] = _Registry()


def names() -> list[str]:
    """Every registered target's name, sorted; no target module is imported."""
    return list(REGISTRY)


def targets_that(can) -> list[str]:
    """The registered targets whose capabilities `can` accepts (for a "use a target that does" help line)."""
    return [name for name, t in REGISTRY.items() if can(t.capabilities)]


def reload() -> None:
    """Forget what was found (a test that installs a target into a running interpreter)."""
    _entry_points.cache_clear()
    _load.cache_clear()
