"""One diagnostic model, four renderers (each snapshot-tested), and a registry of codes."""

from __future__ import annotations

import re

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from stackc.codes import CODES, explain
from stackc.diagnostics import Diagnostic, Span, merge_environments, render

from .conftest import ROOT

SOURCE = "stack: v1\nname: demo\nmodels:\n  - name: chat\n    gpus: 1\n"
SOURCES = {"stack.yaml": SOURCE}
SAMPLE = [
    Diagnostic.error("SC401", "`chat` does not fit on 1 x h100-sxm: 131.4 GiB of weights, the GPU gives 71.2 GiB",
                     Span("stack.yaml", 5, 5, 5, 12), label="one GPU per replica here",
                     help="`gpus: 8` holds 41 sequences of 32768 tokens (32 asked)", notes=("in environment `prod`",)),
    Diagnostic.warning("SC704", "the gateway accepts requests without a key", Span("stack.yaml", 2, 7, 2, 11),
                       help="declare a secret and set `gateway.api_key`"),
    Diagnostic.error("SC105", "the file is larger than 4 MiB, the limit for a stack spec", None,
                     help="is this the right file?"),
]


class TextSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "txt"


@pytest.mark.parametrize("fmt", ["full", "concise", "json", "github"])
def test_renderers(fmt, snapshot):
    assert snapshot.use_extension(TextSnapshot) == render(fmt, SAMPLE, SOURCES)


def test_full_render_has_the_caret_under_the_span():
    text = render("full", SAMPLE[:1], SOURCES)
    lines = text.splitlines()
    src = next(i for i, line in enumerate(lines) if line.startswith("5 |"))
    assert lines[src + 1].index("^") == lines[src].index("gpus")
    assert lines[src + 1].count("^") == len("gpus: 1")


def test_color_only_when_asked():
    assert "\x1b[" not in render("full", SAMPLE, SOURCES)
    assert "\x1b[" in render("full", SAMPLE, SOURCES, color=True)


def test_environment_merge_names_the_environments_a_problem_is_in():
    d = Diagnostic.error("SC404", "bad tp", Span("s", 1, 1, 1, 2))
    e = Diagnostic.error("SC404", "other", Span("s", 2, 1, 2, 2))
    merged = merge_environments([(None, [d]), ("dev", [d]), ("prod", [d, e])])
    assert merged[0].notes == () and merged[1].notes == ("in environment `prod`",)


def test_every_code_used_in_the_source_is_registered_and_explained():
    used = set()
    for path in list((ROOT / "compiler").rglob("*.py")) + list((ROOT / "targets").rglob("*.py")):
        used |= set(re.findall(r'"(SC\d{3})"', path.read_text()))
    assert used - set(CODES) == set()
    for code, (title, text) in CODES.items():
        first = title.split()[0]
        assert first.islower() or first.isupper(), code  # lowercase, or an acronym (KV, GPU)
        assert len(text.strip()) > 40, code
        assert explain(code).startswith(f"{code}: ")


def test_codes_are_grouped_by_family():
    families = {"1": "yaml", "2": "schema", "3": "references", "4": "capacity", "5": "compatibility",
                "6": "target", "7": "security", "0": "internal"}
    assert {c[2] for c in CODES} <= set(families)


def test_messages_are_lowercase_like_a_compiler():
    for d in SAMPLE:
        assert d.message[0].islower() or d.message[0] == "`"


def test_a_long_value_is_echoed_short():
    value = "a" * (4 * 1024 * 1024)
    d = Diagnostic.error("SC207", f"`{value}` is not a valid stack name", Span("s.yaml", 1, 7, 1, 7 + len(value)),
                         label="not a valid name", help=f"did you mean `{value}`?")
    for fmt in ("full", "concise", "json", "github"):
        out = render(fmt, [d], {"s.yaml": "name: " + value + "\n"})
        assert len(out.encode()) < 4096, (fmt, len(out))
    assert "a" * 79 + "…`" in d.message and "a" * 81 not in d.message


def test_concise_is_one_line_per_diagnostic_whatever_the_value():
    d = Diagnostic.error("SC207", "`help\ndesk\r\u2028\x85\x1b[31m` is not a valid name", Span("s.yaml", 4, 7, 4, 8))
    out = render("concise", [d], {})
    assert out.count("\n") == 1 and len(out.splitlines()) == 1
    assert "`help\\ndesk\\r\\u2028\\x85\\x1b[31m`" in out
    assert "\x1b" not in render("full", [d], {"s.yaml": "a\nb\nc\nname: \x1b[31m\n"})


def test_an_unprintable_source_line_is_shown_escaped_with_the_caret_under_it():
    text = render("full", [Diagnostic.error("SC101", "bad", Span("s.yaml", 1, 3, 1, 4))], {"s.yaml": "ab\x07cd\n"})
    src = next(line for line in text.splitlines() if line.startswith("1 |"))
    caret = text.splitlines()[text.splitlines().index(src) + 1]
    assert src.endswith("ab\\x07cd") and caret.index("^") == src.index("\\x07") and caret.count("^") == 4
