"""Entry points read from the installed distributions' metadata without importlib.metadata.

Its import (email, zipfile, csv and their dependencies, about 20 ms) was a tenth of a plain
`stackc validate`, which only needs the few lines of `[stackc.targets]`. The reading follows
importlib.metadata's: each sys.path folder in order, its `*.dist-info` and `*.egg-info` folders,
the first distribution of a (normalized) name wins. tests/test_registry.py holds the two readers
to the same answer.
"""

from __future__ import annotations

import os
import re
import sys


class EntryPoint:
    """What the registry needs of an entry point: its name, its `module:attr` value, and load()."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: str):
        self.name, self.value = name, value

    @property
    def module(self) -> str:
        return self.value.split("[")[0].partition(":")[0].strip()

    def load(self):
        from importlib import import_module

        found = import_module(self.module)
        for attr in filter(None, self.value.split("[")[0].partition(":")[2].strip().split(".")):
            found = getattr(found, attr)
        return found


def _normalized(dist_dir: str) -> str:
    """`Foo.Bar-1.0.dist-info` -> `foo_bar`: the key importlib.metadata tells distributions apart by."""
    return re.sub(r"[-_.]+", "_", os.path.splitext(dist_dir)[0].partition("-")[0]).lower()


def scan(group: str) -> list[EntryPoint]:
    """The `group` entry points of every installed distribution. A zip on sys.path (which this
    reader does not open) hands the question to importlib.metadata itself."""
    if any(os.path.isfile(entry) for entry in sys.path if entry):
        from importlib.metadata import entry_points

        return [EntryPoint(ep.name, ep.value) for ep in entry_points(group=group)]
    seen: set[str] = set()
    found: list[EntryPoint] = []
    header = f"[{group}]"
    for entry in sys.path:
        try:
            children = os.listdir(entry or ".")
        except OSError:
            continue
        for child in children:
            if not child.lower().endswith((".dist-info", ".egg-info")) or _normalized(child) in seen:
                continue
            seen.add(_normalized(child))
            try:
                with open(os.path.join(entry or ".", child, "entry_points.txt"), encoding="utf-8") as text:
                    lines = [line.strip() for line in text]
            except OSError:
                continue
            section = None
            for line in lines:
                if not line or line.startswith("#"):
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line
                elif section == header and "=" in line:
                    name, _, value = line.partition("=")
                    found.append(EntryPoint(name.strip(), value.strip()))
    return found
