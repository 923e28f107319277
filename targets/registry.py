"""Where targets come from: the `stackc.targets` entry-point group, read once. Names are listed
without importing any target; a target's module is imported the first time it is asked for.
Its spec section (`sections()`) is read from the `options` module of its package, without the
translation. This module imports no target and not `base`, so `base` can ask it which targets
can do what, and the spec can ask it for the sections.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Target
    from .section import Section

GROUP = "stackc.targets"


@cache
def _entry_points() -> dict:
    from .entry_points import scan

    found: dict = {}
    for ep in sorted(scan(GROUP), key=lambda e: (e.name, e.value)):
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


@cache
def sections() -> tuple["Section", ...]:
    """Every target's spec section, sorted by key: the `SECTION` of the `options` module in the
    package of the module its entry point names (beside `target.py`, or in the package itself)."""
    from importlib import import_module, util

    from .section import Section

    found: dict[str, tuple["Section", str]] = {}
    for name, ep in _entry_points().items():
        try:
            module = util.find_spec(ep.module)
            package = ep.module if module is not None and module.submodule_search_locations is not None \
                else ep.module.rpartition(".")[0]
            if not package or util.find_spec(f"{package}.options") is None:
                continue
            section = getattr(import_module(f"{package}.options"), "SECTION", None)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is named, not a traceback
            raise RuntimeError(f"the `{name}` target's options (`{package}.options`) could not be imported: {exc}") from exc
        if section is None:
            continue
        if not isinstance(section, Section):
            raise RuntimeError(f"`{package}.options.SECTION` of the `{name}` target is not a stackc Section")
        if section.name in found:
            raise RuntimeError(f"the `{found[section.name][1]}` and `{name}` targets both own the spec's "
                               f"`{section.name}:` section")
        found[section.name] = (section, name)
    return tuple(found[key][0] for key in sorted(found))


def section(key: str) -> "Section | None":
    return next((s for s in sections() if s.name == key), None)


def reload() -> None:
    """Forget what was found (a test that installs a target into a running interpreter)."""
    _entry_points.cache_clear()
    _load.cache_clear()
    sections.cache_clear()
