"""The located tree: values that remember where they were written. Every later stage reads
the spec through it (`to_data` for the plain values, `SpanIndex` for the span of a path), so a
diagnostic can point at the exact key or value. `source.py` builds it from ruamel's nodes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic, Span

Path = tuple  # of str keys and int indexes, e.g. ("models", 0, "name")


@dataclass(eq=False)
class YNode:
    """A value in the document with the span it was written at."""

    span: Span


@dataclass(eq=False)
class YScalar(YNode):
    """A scalar of the spec, with where it was written."""

    value: Any


@dataclass(eq=False)
class YSeq(YNode):
    """A sequence of the spec, with where it was written."""

    items: list[YNode] = field(default_factory=list)


@dataclass(eq=False)
class YEntry:
    """One key of a mapping: where the key is, and its value."""

    key: str
    key_span: Span
    value: YNode


@dataclass(eq=False)
class YMap(YNode):
    """A mapping of the spec, its keys in the order written."""

    entries: dict[str, YEntry] = field(default_factory=dict)

    def get(self, key: str) -> YNode | None:
        entry = self.entries.get(key)
        return entry.value if entry else None


def to_data(node: YNode) -> Any:
    """The plain Python value of a node (dicts, lists, scalars)."""
    if isinstance(node, YMap):
        return {k: to_data(e.value) for k, e in node.entries.items()}
    if isinstance(node, YSeq):
        return [to_data(i) for i in node.items]
    return node.value  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Located:
    """Where one path of the document was written: its key (if any) and its value."""

    value: Span
    key: Span | None = None

    @property
    def primary(self) -> Span:
        """The span a diagnostic should underline: a scalar itself, else its key."""
        return self.value if self.key is None or self.value.end_line == self.value.line else self.key


class SpanIndex:
    """Maps a path like ("models", 0, "gpus") to where it was written."""

    def __init__(self, root: YNode):
        self._spans: dict[Path, Located] = {}
        self._walk(root, (), None)

    def _walk(self, node: YNode, path: Path, key: Span | None) -> None:
        self._spans[path] = Located(node.span, key)
        if isinstance(node, YMap):
            for k, e in node.entries.items():
                self._walk(e.value, path + (k,), e.key_span)
        elif isinstance(node, YSeq):
            for i, item in enumerate(node.items):
                self._walk(item, path + (i,), None)

    def exact(self, path: Path) -> Located | None:
        return self._spans.get(tuple(path))

    def nearest(self, path: Path) -> tuple[Located, Path]:
        """The location of `path`, or of its nearest parent that was written."""
        path = tuple(path)
        while path not in self._spans and path:
            path = path[:-1]
        return self._spans[path], path


class SourceError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def mark_span(file: str, start, end) -> Span:
    """The span between two of the parser's marks (libyaml's or ruamel.yaml's: both count from 0)."""
    end_line, end_col = end.line + 1, end.column + 1
    if end.line > start.line and end.column == 0:
        # ruamel puts the end of a block collection at the start of the next line
        end_line, end_col = end.line, 10_000
    return Span(file, start.line + 1, start.column + 1, end_line, max(end_col, start.column + 2))


_LONE_CR = re.compile(r"\r(?!\n)")


def point(file: str, text: str, offset: int) -> Span:
    """The one-character span at `offset`, with lines counted as the parser counts them (`\\n`, `\\r\\n`
    or a lone `\\r`), so that it agrees with the spans of every other diagnostic."""
    offset = max(0, min(offset, len(text)))
    if offset and text[offset - 1] == "\r" and text.startswith("\n", offset):
        offset -= 1  # the `\\n` of a `\\r\\n` pair: the end of the line the `\\r` ends
    line = text.count("\n", 0, offset) + len(_LONE_CR.findall(text, 0, offset)) + 1
    start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    col = offset - start + 1
    return Span(file, line, col, line, col + 1)
