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
MAX_DEPTH = 100  # collections inside one another; a real spec nests fewer than 10
MAX_DIGITS = 1000  # in an integer literal; a spec's largest number has 16, and Python refuses to print 4,300

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


_LONE_CR = re.compile(r"\r(?!\n)")


def _point(file: str, text: str, offset: int) -> Span:
    """The one-character span at `offset`, with lines counted as the parser counts them (`\\n`, `\\r\\n`
    or a lone `\\r`), so that it agrees with the spans of every other diagnostic."""
    offset = max(0, min(offset, len(text)))
    if offset and text[offset - 1] == "\r" and text.startswith("\n", offset):
        offset -= 1  # the `\\n` of a `\\r\\n` pair: the end of the line the `\\r` ends
    line = text.count("\n", 0, offset) + len(_LONE_CR.findall(text, 0, offset)) + 1
    start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    col = offset - start + 1
    return Span(file, line, col, line, col + 1)


_SURROGATE = re.compile("[\ud800-\udfff]")
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


class _TooManyDigits(ValueError):
    def __init__(self, digits: int):
        super().__init__(digits)
        self.digits = digits


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
        digits = len(text) - (2 if text[:2].lower() in ("0x", "0o", "0b") else 0)
        if digits > MAX_DIGITS:
            raise _TooManyDigits(digits)
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
    def __init__(self, file: str, text: str = ""):
        self.file = file
        self.text = text
        self.count = 0

    def _unicode(self, node, value: str, span: Span) -> str:
        """Text with no half of a UTF-16 surrogate pair in it.

        JSON writers escape a character above U+FFFF as a pair (`"\\ud83d\\ude00"` for an emoji) and YAML
        reads each escape as a character of its own: a pair is joined into the one character it
        encodes; a half without its partner is no character at all, and no UTF-8 file or output
        can hold it, so it is an error at the escape that wrote it."""
        if not _SURROGATE.search(value):
            return value
        value = _PAIR.sub(lambda m: m[0].encode("utf-16-le", "surrogatepass").decode("utf-16-le"), value)
        lone = _SURROGATE.search(value)
        if lone is None:
            return value
        code = ord(lone[0])
        escape = re.compile(rf"\\(?:u|U0000){code:04x}", re.I)
        found = escape.search(self.text, node.start_mark.index, node.end_mark.index + 1)
        where = _span_of(self.file, self.text, found.start(), found.end()) if found else span
        partner = "a low surrogate (`\\udc00`-`\\udfff`) after it" if code < 0xDC00 else "a high surrogate before it"
        raise SourceError(
            Diagnostic.error(
                "SC106",
                f"the escape `\\u{code:04x}` is half of a UTF-16 surrogate pair, without {partner}: "
                "it is not a character, and UTF-8 text cannot hold it",
                where,
                label="unpaired surrogate escape",
                help="write the character itself (the file is UTF-8), or its code point as one escape "
                     "(`\\U0001F600`, not `\\ud83d\\ude00`); a JSON writer with `ensure_ascii=False` writes it plainly",
            )
        )

    def build(self, node, anchor_span: Span | None = None, depth: int = 0) -> YNode:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.count += 1
        span = _span(self.file, node.start_mark, node.end_mark)
        if depth > MAX_DEPTH:  # aliases count where they are used: a chain of them nests too
            raise SourceError(_too_deep(self.file, span))
        if self.count > MAX_NODES:
            raise SourceError(_too_many(span))
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                raise SourceError(_bad_tag(span, node.tag))
            if isinstance(node.value, str):
                node.value = self._unicode(node, node.value, span)
            try:
                return YScalar(span, _scalar_value(node))
            except _TooManyDigits as exc:
                raise SourceError(
                    Diagnostic.error(
                        "SC110",
                        f"the integer has {exc.digits:,} digits; stackc reads at most {MAX_DIGITS:,}",
                        span,
                        label="this number",
                        help="no spec field takes a number this long: write the value the field needs "
                             "(`stackc schema` gives each field's range)",
                    )
                ) from None
            except ValueError:
                return YScalar(span, node.value)
        if isinstance(node, SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise SourceError(_bad_tag(span, node.tag))
            return YSeq(span, [self.build(child, depth=depth + 1) for child in node.value])
        if isinstance(node, MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                raise SourceError(_bad_tag(span, node.tag))
            return self._mapping(node, span, depth)
        raise SourceError(_bad_tag(span, getattr(node, "tag", "?")))

    def _mapping(self, node, span: Span, depth: int = 0) -> YMap:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        result = YMap(span)
        merges: list[YMap] = []
        for key_node, value_node in node.value:
            key_span = _span(self.file, key_node.start_mark, key_node.end_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    built = self.build(source, depth=depth + 1)
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
            key = self._unicode(key_node, str(key_node.value), key_span)
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
            result.entries[key] = YEntry(key, key_span, self.build(value_node, depth=depth + 1))
        for merged in merges:
            for key, entry in merged.entries.items():
                result.entries.setdefault(key, entry)
        return result


def _too_many(span: Span) -> Diagnostic:
    return Diagnostic.error(
        "SC103",
        f"the document expands to more than {MAX_NODES:,} values",
        span,
        label="aliases here multiply the document",
        help="a stack spec needs no deeply nested aliases; write the values out or use `defaults:`",
    )


def _check_expansion(file: str, root) -> None:
    """Count the values the document expands to and how deep it nests, each node once however
    many aliases use it, and refuse a YAML bomb or an alias chain before building it: at the
    innermost collection that by itself expands or nests past the limit."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    sizes: dict[int, tuple[int, int]] = {}  # id -> (values, levels), each capped just past its limit

    def children(node) -> list:
        if isinstance(node, SequenceNode):
            return node.value
        if isinstance(node, MappingNode):
            return [v for _, v in node.value]
        return []

    def measure(node) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is None:
            sizes[id(node)] = (1, 1)  # a node inside itself (never from the composer) counts once
            inner = [measure(c) for c in children(node)]
            known = sizes[id(node)] = (min(1 + sum(n for n, _ in inner), MAX_NODES + 1),
                                       min(1 + max((d for _, d in inner), default=0), MAX_DEPTH + 2))
        return known

    values, levels = measure(root)
    for limit, index, problem in ((MAX_NODES, 0, _too_many), (MAX_DEPTH + 1, 1, None)):
        if (values, levels)[index] <= limit:
            continue
        node = root
        while True:
            big = next((c for c in children(node) if measure(c)[index] > limit), None)
            if big is None:
                span = _span(file, node.start_mark, node.end_mark)
                raise SourceError(problem(span) if problem else _too_deep(file, span))
            node = big


def _too_deep(file: str, span: Span) -> Diagnostic:
    return Diagnostic.error(
        "SC103", f"the document nests more than {MAX_DEPTH} levels deep", span,
        label="this value is too deep inside the others",
        help="a stack spec is a few levels deep; flatten the structure (and check that no alias holds itself)",
    )


_FLOW = re.compile(r"[\[\]{}\"'#\n\\]")


def _check_flow_depth(path: str, text: str) -> None:
    """Refuse flow collections nested deeper than MAX_DEPTH before the parser reads them: its
    scanner takes time in the square of the depth (seconds at a thousand), for no real spec.

    A rough scan (quotes, comments, brackets) is enough: a plain scalar with a bracket in it
    at worst counts one level too many, and a spec 100 levels deep is not a real one."""
    depth, quote, comment, skip = 0, "", False, -1
    for m in _FLOW.finditer(text):
        c, i = m[0], m.start()
        if comment:
            comment = c != "\n"
        elif quote == '"':
            if c == "\\" and i != skip:
                skip = i + 1
            elif c == '"' and i != skip:
                quote = ""
        elif quote:
            quote = "" if c == "'" else quote
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            comment = True
        elif c in "\"'":
            j = i - 1
            while j >= 0 and text[j] in " \t":
                j -= 1
            if j < 0 or text[j] in ":-?,[{\n" or depth:
                quote = c
        elif c in "[{" and (depth or i == 0 or text[i - 1] in " \t\n:-?,"):
            depth += 1
            if depth > MAX_DEPTH:
                raise SourceError(_too_deep(path, _point(path, text, i)))
        elif c in "]}" and depth:
            depth -= 1


def _span_of(file: str, text: str, start: int, end: int) -> Span:
    first = _point(file, text, start)
    return Span(file, first.line, first.col, first.line, first.col + max(1, end - start))


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
_C0 = ("NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC "
       "FS GS RS US").split()


def _bad_character(path: str, text: str, exc) -> Diagnostic:
    """A character the YAML reader refuses (a control character, U+FFFE/U+FFFF), where it is."""
    char = exc.character
    if isinstance(char, str):
        char = ord(char[:1] or "\0")
    if not isinstance(char, int) or not isinstance(exc.position, int):  # pragma: no cover - bytes input only
        return Diagnostic.error("SC101", "invalid YAML: a character YAML does not allow", Span(path, 1, 1, 1, 2),
                                help="save the spec as plain UTF-8 text")
    name = f"U+{char:04X}" + (f" ({_C0[char]})" if char < 32 else " (DEL)" if char == 0x7F else "")
    kind = "noncharacter" if char in (0xFFFE, 0xFFFF) else "control character"
    escape = f"\\x{char:02x}" if char < 0x100 else f"\\u{char:04x}"
    return Diagnostic.error(
        "SC101",
        f"invalid YAML: the {kind} {name} is not allowed in a YAML file",
        _point(path, text, exc.position),
        label="this character",
        help=f"delete it (editors often show it as nothing at all); a value that needs it writes the escape "
             f"`{escape}` inside double quotes",
    )


def parse(path: str, text: str) -> Document:
    """Parse one YAML document into a located tree; raise SourceError with a diagnostic."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

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

    _check_flow_depth(path, text)
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
    except ReaderError as exc:  # a character YAML does not allow anywhere in a file, before any parsing
        raise SourceError(_bad_character(path, text, exc)) from None
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
        _check_expansion(path, nodes[0])
        root = _Builder(path, text).build(nodes[0])
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

