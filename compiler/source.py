"""Read a stack spec into a tree of values that remember where they were written.

ruamel.yaml composes the document into nodes that carry start and end marks; we walk those
nodes ourselves instead of letting a constructor build Python objects. That gives us, in one
pass, every position a diagnostic may point at, duplicate-key detection, a cap on alias
expansion (a YAML bomb is tiny on disk and enormous in memory) and a closed set of tags: only
plain data comes out, never an object a tag asks for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic, Span

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000  # values after alias expansion; the largest real spec has a few thousand

Path = tuple  # of str keys and int indexes, e.g. ("models", 0, "name")


@dataclass(eq=False)
class YNode:
    """A value in the document with the span it was written at."""

    span: Span


@dataclass(eq=False)
class YScalar(YNode):
    value: Any


@dataclass(eq=False)
class YSeq(YNode):
    items: list[YNode] = field(default_factory=list)


@dataclass(eq=False)
class YEntry:
    key: str
    key_span: Span
    value: YNode


@dataclass(eq=False)
class YMap(YNode):
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


@dataclass
class Document:
    path: str
    text: str
    root: YMap
    spans: SpanIndex


_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


def _span(file: str, start, end) -> Span:
    end_line, end_col = end.line + 1, end.column + 1
    if end.line > start.line and end.column == 0:
        # ruamel puts the end of a block collection at the start of the next line
        end_line, end_col = end.line, 10_000
    return Span(file, start.line + 1, start.column + 1, end_line, max(end_col, start.column + 2))


def _point(file: str, text: str, offset: int) -> Span:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(file, line, col, line, col + 1)


def _scalar_value(node) -> Any:
    tag, raw = node.tag, node.value
    if tag == "tag:yaml.org,2002:str" or getattr(node, "style", None) in ("'", '"', "|", ">"):
        return raw
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return raw.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        text = raw.replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
            if text.lower().startswith(prefix):
                return sign * int(text[2:], base)
        return sign * int(text)
    if tag == "tag:yaml.org,2002:float":
        text = raw.replace("_", "").lower()
        if text in (".inf", "+.inf"):
            return math.inf
        if text == "-.inf":
            return -math.inf
        if text == ".nan":
            return math.nan
        return float(text)
    return raw  # timestamps stay text: no spec field is a date


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.count = 0

    def build(self, node, anchor_span: Span | None = None) -> YNode:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.count += 1
        span = _span(self.file, node.start_mark, node.end_mark)
        if self.count > MAX_NODES:
            raise SourceError(
                Diagnostic.error(
                    "SC103",
                    f"the document expands to more than {MAX_NODES:,} values",
                    span,
                    label="aliases here multiply the document",
                    help="a stack spec needs no deeply nested aliases; write the values out or use `defaults:`",
                )
            )
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                raise SourceError(_bad_tag(span, node.tag))
            try:
                return YScalar(span, _scalar_value(node))
            except ValueError:
                return YScalar(span, node.value)
        if isinstance(node, SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise SourceError(_bad_tag(span, node.tag))
            return YSeq(span, [self.build(child) for child in node.value])
        if isinstance(node, MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                raise SourceError(_bad_tag(span, node.tag))
            return self._mapping(node, span)
        raise SourceError(_bad_tag(span, getattr(node, "tag", "?")))

    def _mapping(self, node, span: Span) -> YMap:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        result = YMap(span)
        merges: list[YMap] = []
        for key_node, value_node in node.value:
            key_span = _span(self.file, key_node.start_mark, key_node.end_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    built = self.build(source)
                    if not isinstance(built, YMap):
                        raise SourceError(
                            Diagnostic.error(
                                "SC104", "a merge key (`<<`) needs a mapping", key_span,
                                help="merge only mappings, e.g. `<<: *common`",
                            )
                        )
                    merges.append(built)
                continue
            if not isinstance(key_node, ScalarNode) or isinstance(key_node, MappingNode):
                raise SourceError(
                    Diagnostic.error(
                        "SC104", "mapping keys must be plain text", key_span,
                        help="write keys as plain words, e.g. `name:`",
                    )
                )
            key = str(key_node.value)
            if key in result.entries:
                first = result.entries[key].key_span
                raise SourceError(
                    Diagnostic.error(
                        "SC102",
                        f"duplicate key `{key}`",
                        key_span,
                        label="written again here",
                        help=f"`{key}` is first set at line {first.line}; keep one of the two",
                    )
                )
            result.entries[key] = YEntry(key, key_span, self.build(value_node))
        for merged in merges:
            for key, entry in merged.entries.items():
                result.entries.setdefault(key, entry)
        return result


def _bad_tag(span: Span, tag: str) -> Diagnostic:
    short = tag.replace("tag:yaml.org,2002:", "!!")
    return Diagnostic.error(
        "SC109",
        f"unsupported YAML tag `{short}`",
        span,
        help="a stack spec holds plain data only: remove the tag",
    )


def read_text(path: str, data: bytes) -> str:
    """Decode the file, refusing what is clearly not a YAML text file."""
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(
            Diagnostic.error(
                "SC105",
                f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB, the limit for a stack spec",
                Span(path, 1, 1, 1, 2),
                help="is this the right file? a stack spec is a few kilobytes",
            )
        )
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        partial = data[: exc.start].decode("utf-8", errors="replace")
        raise SourceError(
            Diagnostic.error(
                "SC106",
                "the file is not UTF-8 text",
                _point(path, partial, len(partial)),
                label=f"byte 0x{data[exc.start]:02x} here",
                help="save the spec as UTF-8 text",
            )
        ) from None
    if nul >= 0:
        offset = len(data[:nul].decode("utf-8"))
        raise SourceError(
            Diagnostic.error(
                "SC106",
                "the file contains a NUL byte: it looks binary, not YAML",
                _point(path, text, offset),
                help="pass the stack spec (a YAML text file)",
            )
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


_TAB_INDENT = re.compile(r"^\t+", re.M)


def parse(path: str, text: str) -> Document:
    """Parse one YAML document into a located tree; raise SourceError with a diagnostic."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise SourceError(
            Diagnostic.error(
                "SC107",
                "the file is empty",
                Span(path, 1, 1, 1, 2),
                help="start from an example: `stack: v1`, `name:`, `hardware:` and `models:`",
            )
        )
    import warnings

    yaml = YAML(typ="safe", pure=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a reused anchor: legal YAML, the later one wins
            nodes = list(yaml.compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = _point(path, text, 0) if mark is None else Span(
            path, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2
        )
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        help_text = "check the indentation and quoting around this line"
        tab = _TAB_INDENT.search(text)
        if tab and "\t" in problem or (tab and "tab" in problem):
            help_text = "YAML indents with spaces, never tabs"
        elif "found character '\\t'" in str(exc):
            help_text = "YAML indents with spaces, never tabs"
        raise SourceError(
            Diagnostic.error("SC101", f"invalid YAML: {problem}", span, help=help_text)
        ) from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors for text input
        raise SourceError(
            Diagnostic.error("SC101", f"invalid YAML: {exc}", Span(path, 1, 1, 1, 2),
                             help="check the file is valid YAML")
        ) from None
    except RecursionError:
        raise SourceError(
            Diagnostic.error(
                "SC103", "the document nests too deeply", Span(path, 1, 1, 1, 2),
                help="a stack spec is a few levels deep; flatten the structure",
            )
        ) from None
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        raise SourceError(
            Diagnostic.error("SC107", "the file holds no YAML document", Span(path, 1, 1, 1, 2),
                             help="start from an example: `stack: v1`, `name:`, `hardware:` and `models:`")
        )
    if len(nodes) > 1:
        second = nodes[1]
        raise SourceError(
            Diagnostic.error(
                "SC108",
                "the file holds more than one YAML document",
                _span(path, second.start_mark, second.start_mark),
                label="a second document starts here",
                help="put one stack in each file; use `environments:` for variants",
            )
        )
    try:
        root = _Builder(path).build(nodes[0])
    except RecursionError:
        raise SourceError(
            Diagnostic.error("SC103", "the document nests too deeply", Span(path, 1, 1, 1, 2),
                             help="a stack spec is a few levels deep; flatten the structure")
        ) from None
    if not isinstance(root, YMap):
        kind = "a list" if isinstance(root, YSeq) else "a single value"
        raise SourceError(
            Diagnostic.error(
                "SC104",
                f"the document is {kind}, not a mapping",
                root.span,
                help="a stack spec is a mapping that starts with `stack: v1`",
            )
        )
    return Document(path, text, root, SpanIndex(root))


def load(path: str, display: str | None = None) -> Document:
    """Read and parse a file; `display` is the name diagnostics show."""
    name = display or path
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    return parse(name, read_text(name, data))

