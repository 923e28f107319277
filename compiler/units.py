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
