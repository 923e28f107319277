"""One diagnostic model and its renderers (full, concise, json, github).

Every problem stackc finds, from a YAML syntax error to a target that cannot express a replica
range, is a `Diagnostic`: a stable code, a severity, a lowercase one-line message with
backticked names, the span it points at and, where a fix is known to hold, a `help:` line.
The long explanation of each code lives in `codes.py` (`stackc explain CODE`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Iterable, Sequence


@dataclass(frozen=True, order=True)
class Span:
    """A 1-based, end-exclusive region of a source file."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Severity(str, Enum):
    error = "error"
    warning = "warning"


MAX_SHOWN = 80  # characters of one backticked value a diagnostic echoes; the rest becomes `…`
MAX_PATH_SHOWN = 400  # a file path (`/…`, `./…`, `~/…`) is shown whole up to here: it names a file to open
MAX_TEXT = 1000  # characters of a whole message, label, help or note
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff]")
_SHOWN = re.compile("`([^`]*)`")
_PATH = re.compile(r"(?:/|\./|\.\./|~/|[A-Za-z]:[\\/])[^\s`]*")


def _shorten(m: re.Match) -> str:
    value = m[1]
    limit = MAX_PATH_SHOWN if _PATH.fullmatch(value[: MAX_PATH_SHOWN + 1]) else MAX_SHOWN
    return m[0] if len(value) <= limit else f"`{value[:limit - 1]}…`"
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """Control characters, line and paragraph separators, BOMs and lone surrogates as escapes, so
    a diagnostic's text is one line of printable characters whatever value it echoes."""
    def one(m: re.Match) -> str:
        c = m[0]
        return _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _UNPRINTABLE.sub(one, text)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text` escaped, each backticked value cut to MAX_SHOWN characters and the whole to `limit`:
    a 4 MiB value in the spec makes a diagnostic of a few hundred bytes, not megabytes."""
    text = _SHOWN.sub(_shorten, text)
    text = escape(text[: 4 * limit])
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Diagnostic:
    """One finding: a stable code, its severity, what is wrong, where, and how to fix it."""

    code: str
    severity: Severity
    message: str
    span: Span | None = None
    label: str | None = None
    help: str | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # the text is built from values in the spec: it is made safe and short once, here
        for name in ("message", "label", "help"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, clip(str(value)))
        object.__setattr__(self, "notes", tuple(clip(str(n)) for n in self.notes))

    @classmethod
    def error(cls, code: str, message: str, span: Span | None = None, *, label: str | None = None,
              help: str | None = None, notes: Sequence[str] = ()) -> "Diagnostic":
        return cls(code, Severity.error, message, span, label, help, tuple(notes))

    @classmethod
    def warning(cls, code: str, message: str, span: Span | None = None, *, label: str | None = None,
                help: str | None = None, notes: Sequence[str] = ()) -> "Diagnostic":
        return cls(code, Severity.warning, message, span, label, help, tuple(notes))

    def with_note(self, note: str) -> "Diagnostic":
        return self if note in self.notes else replace(self, notes=self.notes + (note,))

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.error

    def sort_key(self):
        span = self.span or Span("", 0, 0, 0, 0)
        return (span.file, span.line, span.col, self.code, self.message)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def merge_environments(per_env: Sequence[tuple[str | None, Sequence[Diagnostic]]]) -> list[Diagnostic]:
    """Fold the diagnostics of several environments into one list.

    A problem in the base document shows up once per environment; the user wants to read it
    once, with the environments it affects named in a note.
    """
    seen: dict[tuple, tuple[Diagnostic, list]] = {}
    for env, diagnostics in per_env:
        for d in diagnostics:
            key = (d.code, d.severity, d.message, d.span, d.label, d.help, d.notes)
            if key not in seen:
                seen[key] = (d, [])
            if env not in seen[key][1]:
                seen[key][1].append(env)
    total = len(per_env)
    result = []
    for d, envs in seen.values():
        if len(envs) < total:
            named = [f"`{e}`" for e in envs if e is not None]
            where = f"environment{'s' if len(named) > 1 else ''} {', '.join(named)}" if named else ""
            if None in envs:
                where = "the base document" + (f" and {where}" if where else "")
            d = d.with_note(f"in {where}")
        result.append(d)
    return sorted(result, key=Diagnostic.sort_key)


# ---------------------------------------------------------------------------------------------
# renderers


class _Style:
    def __init__(self, color: bool):
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def severity(self, sev: Severity, text: str) -> str:
        return self._wrap("1;31" if sev is Severity.error else "1;33", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def gutter(self, text: str) -> str:
        return self._wrap("1;34", text)


_BREAKS = re.compile(r"\r\n|\r|\n")  # the line breaks ruamel counts: spans' line numbers agree with them
SOURCE_WIDTH = 120  # characters of a source line shown; a longer line is shown around the span


class _Lines:
    """Each file's lines, split once however many diagnostics point into it."""

    def __init__(self, sources: dict[str, str]):
        self.sources, self.cache = sources, {}

    def get(self, file: str) -> list[str] | None:
        if file not in self.cache:
            text = self.sources.get(file)
            self.cache[file] = None if text is None else _BREAKS.split(text)
        return self.cache[file]


def _shown_line(src: str, start: int, end: int) -> tuple[str, int, int]:
    """A source line as shown under `-->` (unprintable characters escaped, a long line cut to a
    window around the span) and the 0-based columns of the carets in it."""
    pieces = [escape(c) if _UNPRINTABLE.match(c) else c for c in src[: max(end, start + 1) + SOURCE_WIDTH]]
    offsets = [0]
    for piece in pieces:
        offsets.append(offsets[-1] + len(piece))
    shown = "".join(pieces)
    first = offsets[min(start - 1, len(pieces))]
    last = offsets[min(end - 1, len(pieces))]
    if len(shown) <= SOURCE_WIDTH and len(src) <= len(pieces):
        return shown, first, max(last, first + 1)
    left = max(0, first - SOURCE_WIDTH // 3)
    right = min(len(shown), left + SOURCE_WIDTH)
    cut_left = "…" if left else ""
    cut_right = "…" if right < len(shown) or len(src) > len(pieces) else ""
    window = cut_left + shown[left:right] + cut_right
    first = first - left + len(cut_left)
    last = min(last - left, right - left) + len(cut_left)
    return window, first, max(last, first + 1)


def render_full(diagnostics: Sequence[Diagnostic], sources: dict[str, str], color: bool = False) -> str:
    """rustc-style: header, location, source line with carets, notes and help."""
    style = _Style(color)
    lines = _Lines(sources)
    blocks = [_render_one(d, lines, style) for d in diagnostics]
    return "\n".join(blocks) + ("\n" if blocks else "") + summary(diagnostics, style)


def summary(diagnostics: Sequence[Diagnostic], style: _Style | None = None) -> str:
    style = style or _Style(False)
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    if not diagnostics:
        return ""
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    head = style.severity(Severity.error, "error") if errors else style.severity(Severity.warning, "warning")
    return f"{head}: {', '.join(parts)}\n"


CREDENTIAL_CODES = frozenset({"SC701", "SC702", "SC706", "SC707"})  # their source line is shown masked


def _render_one(d: Diagnostic, sources: _Lines, style: _Style) -> str:
    lines = [f"{style.severity(d.severity, f'{d.severity.value}[{d.code}]')}: {style.bold(d.message)}"]
    span = d.span
    if span is not None:
        width = len(str(span.line))
        pad = " " * width
        lines.append(f"{pad}{style.gutter('-->')} {escape(str(span))}")
        source_lines = sources.get(span.file) or []
        if 0 < span.line <= len(source_lines):
            raw = source_lines[span.line - 1].rstrip()
            start = max(span.col, 1)
            end = span.end_col if span.end_line == span.line else len(raw) + 1
            end = max(min(end, len(raw) + 1), start + 1)
            if d.code in CREDENTIAL_CODES:  # a log of the build must not carry the credential it refused
                raw = raw[:start - 1] + "*" * (len(raw) - start + 1)
            src, first, last = _shown_line(raw, start, end)
            carets = " " * first + "^" * (last - first)
            label = f" {d.label}" if d.label else ""
            lines.append(f"{pad} {style.gutter('|')}")
            lines.append(f"{style.gutter(str(span.line))} {style.gutter('|')} {src}")
            lines.append(f"{pad} {style.gutter('|')} {style.severity(d.severity, carets + label)}")
            lines.append(f"{pad} {style.gutter('|')}")
        elif d.label:
            lines.append(f"{pad} {style.gutter('=')} {d.label}")
        for note in d.notes:
            lines.append(f"{pad} {style.gutter('=')} {style.bold('note')}: {note}")
        if d.help:
            lines.append(f"{pad} {style.gutter('=')} {style.bold('help')}: {d.help}")
    else:
        for note in d.notes:
            lines.append(f"  = note: {note}")
        if d.help:
            lines.append(f"  = help: {d.help}")
    return "\n".join(lines) + "\n"


def render_concise(diagnostics: Sequence[Diagnostic]) -> str:
    """One line each, `file:line:col: severity[CODE]: message`, like ruff's concise output."""
    out = []
    for d in diagnostics:
        where = f"{escape(str(d.span))}: " if d.span else ""
        out.append(f"{where}{d.severity.value}[{d.code}]: {d.message}")  # the message is escaped already
    return "".join(line + "\n" for line in out)


def as_dict(d: Diagnostic) -> dict:
    s = d.span
    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "file": s.file if s else None,
        "line": s.line if s else None,
        "column": s.col if s else None,
        "end_line": s.end_line if s else None,
        "end_column": s.end_col if s else None,
        "help": d.help,
        "notes": list(d.notes),
    }


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([as_dict(d) for d in diagnostics], indent=2) + "\n"


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic."""
    out = []
    for d in diagnostics:
        kind = "error" if d.is_error else "warning"
        props = []
        if d.span:
            s = d.span
            props += [f"file={_gh_escape(s.file, True)}", f"line={s.line}", f"col={s.col}",
                      f"endLine={s.end_line}"]
            if s.end_line == s.line:
                props.append(f"endColumn={s.end_col}")
        props.append(f"title={_gh_escape(d.code, True)}")
        body = d.message + "".join(f"\nnote: {n}" for n in d.notes) + (f"\nhelp: {d.help}" if d.help else "")
        out.append(f"::{kind} {','.join(props)}::{_gh_escape(body)}")
    return "".join(line + "\n" for line in out)


FORMATS = ("full", "concise", "json", "github")


def render(fmt: str, diagnostics: Sequence[Diagnostic], sources: dict[str, str], color: bool = False) -> str:
    if fmt == "concise":
        return render_concise(diagnostics)
    if fmt == "json":
        return render_json(diagnostics)
    if fmt == "github":
        return render_github(diagnostics)
    return render_full(diagnostics, sources, color)
