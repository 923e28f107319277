"""Read a stack spec into a tree of values that remember where they were written.

libyaml (`libyaml.py`) or, where it is absent or refuses the text, ruamel.yaml composes the
document into nodes that carry start and end marks; we walk those nodes ourselves instead of letting a constructor build Python objects. That gives us, in one
pass, every position a diagnostic may point at, duplicate-key detection, a cap on alias
expansion (a YAML bomb is tiny on disk and enormous in memory) and a closed set of tags: only
plain data comes out, never an object a tag asks for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .diagnostics import Diagnostic, Span
from .libyaml import Unsure, compose_all
from .limits import MAX_DEPTH, MAX_NODES, check_expansion, check_flow_depth, span_of, too_deep, too_many
from .located import SourceError, SpanIndex, mark_span, point, YEntry, YMap, YNode, YScalar, YSeq

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DIGITS = 1000  # in an integer literal; a spec's largest number has 16, and Python refuses to print 4,300

@dataclass
class Document:
    """A spec file as read: its text, its located tree and the spans of its values."""

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
        return raw.lower() in ("true", "yes", "y", "on")  # YAML 1.1 (a `%YAML 1.1` file) has the last three
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
    def __init__(self, file: str, text: str = "", libyaml: bool = False):
        self.file = file
        self.text = text
        self.count = 0
        self.libyaml = libyaml

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
        where = span_of(self.file, self.text, found.start(), found.end()) if found else span
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
        """Either parser's nodes: they share `id` (scalar, sequence, mapping), tag, value, style and marks."""
        self.count += 1
        span = mark_span(self.file, node.start_mark, node.end_mark)
        if depth > MAX_DEPTH:  # aliases count where they are used: a chain of them nests too
            raise SourceError(too_deep(self.file, span))
        if self.count > MAX_NODES:
            raise SourceError(too_many(span))
        kind = node.id
        if kind == "scalar":
            if self.libyaml and node.start_mark.index == node.end_mark.index:
                raise Unsure()
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
        if kind == "sequence":
            if node.tag != "tag:yaml.org,2002:seq":
                raise SourceError(_bad_tag(span, node.tag))
            return YSeq(span, [self.build(child, depth=depth + 1) for child in node.value])
        if kind == "mapping":
            if node.tag != "tag:yaml.org,2002:map":
                raise SourceError(_bad_tag(span, node.tag))
            return self._mapping(node, span, depth)
        raise SourceError(_bad_tag(span, getattr(node, "tag", "?")))

    def _mapping(self, node, span: Span, depth: int = 0) -> YMap:
        result = YMap(span)
        merges: list[YMap] = []
        for key_node, value_node in node.value:
            key_span = mark_span(self.file, key_node.start_mark, key_node.end_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if value_node.id == "sequence" else [value_node]
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
            if key_node.id != "scalar":
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
                point(path, partial, len(partial)),
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
                point(path, text, offset),
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
        point(path, text, exc.position),
        label="this character",
        help=f"delete it (editors often show it as nothing at all); a value that needs it writes the escape "
             f"`{escape}` inside double quotes",
    )


def _compose_ruamel(path: str, text: str) -> list:
    """Every document's root node, read by ruamel.yaml: the reader of last resort, whose errors
    become the diagnostics."""
    import warnings

    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = YAML(typ="safe", pure=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a reused anchor: legal YAML, the later one wins
            nodes = list(yaml.compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = point(path, text, 0) if mark is None else Span(
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
    return nodes


def parse(path: str, text: str) -> Document:
    """Parse one YAML document into a located tree; raise SourceError with a diagnostic."""
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
    check_flow_depth(path, text)
    nodes = compose_all(text)
    if nodes is not None:
        try:
            return _document(path, text, nodes, libyaml=True)
        except Unsure:
            pass
    return _document(path, text, _compose_ruamel(path, text))


def _document(path: str, text: str, nodes: list, libyaml: bool = False) -> Document:
    nodes = [n for n in nodes if n is not None]
    if libyaml and (len(nodes) != 1 or nodes[0].id != "mapping"):
        raise Unsure()  # an error either way: ruamel.yaml's marks place it
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
                mark_span(path, second.start_mark, second.start_mark),
                label="a second document starts here",
                help="put one stack in each file; use `environments:` for variants",
            )
        )
    try:
        check_expansion(path, nodes[0])
        root = _Builder(path, text, libyaml).build(nodes[0])
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

