"""Sizes as users write them (`64GiB`, `500GB`) and as the planner counts them (bytes)."""

from __future__ import annotations

import re

GIB = 1024**3
MIB = 1024**2

_UNITS = {
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
}
SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?(KiB|MiB|GiB|TiB|KB|MB|GB|TB)$"
_SIZE = re.compile(SIZE_PATTERN)


def parse_size(text: str) -> int:
    """`64GiB` -> 68719476736. Raises ValueError for anything else."""
    match = _SIZE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(text)
    number = text.strip()[: match.start(2)]
    return int(round(float(number) * _UNITS[match.group(2)]))


def gib(n_bytes: float) -> float:
    return n_bytes / GIB


def format_gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.1f} GiB"


def format_size(n_bytes: int) -> str:
    """The shortest exact binary spelling, e.g. 68719476736 -> `64GiB`."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _UNITS[unit]
        if n_bytes % factor == 0:
            return f"{n_bytes // factor}{unit}"
    return f"{n_bytes / GIB:.2f}GiB"
