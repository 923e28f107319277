"""One diagnostic model and its renderers (full, concise, json, github).

Every problem stackc finds, from a YAML syntax error to a target that cannot express a replica
range, is a `Diagnostic`: a stable code, a severity, a lowercase one-line message with
backticked names, the span it points at and, where a fix is known to hold, a `help:` line.
The long explanation of each code lives in `codes.py` (`stackc explain CODE`).
"""

from __future__ import annotations

import json
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


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None = None
    label: str | None = None
    help: str | None = None
    notes: tuple[str, ...] = field(default=())

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


def render_full(diagnostics: Sequence[Diagnostic], sources: dict[str, str], color: bool = False) -> str:
    """rustc-style: header, location, source line with carets, notes and help."""
    style = _Style(color)
    blocks = [_render_one(d, sources, style) for d in diagnostics]
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


def _render_one(d: Diagnostic, sources: dict[str, str], style: _Style) -> str:
    lines = [f"{style.severity(d.severity, f'{d.severity.value}[{d.code}]')}: {style.bold(d.message)}"]
    span = d.span
    text = sources.get(span.file) if span else None
    if span is not None:
        width = len(str(span.line))
        pad = " " * width
        lines.append(f"{pad}{style.gutter('-->')} {span}")
        source_lines = text.splitlines() if text is not None else []
        if 0 < span.line <= len(source_lines):
            src = source_lines[span.line - 1].rstrip()
            start = span.col
            end = span.end_col if span.end_line == span.line else len(src) + 1
            end = max(min(end, len(src) + 1), start + 1)
            carets = " " * (start - 1) + "^" * (end - start)
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
        where = f"{d.span}: " if d.span else ""
        out.append(f"{where}{d.severity.value}[{d.code}]: {d.message}")
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
