"""libyaml's fast path reads every spec exactly as ruamel.yaml does: the same values, the same
spans, the same diagnostics. ruamel.yaml stays the reader of last resort; these tests hold the
two to one answer, on the repository's YAML files, on generated scalars and on fuzzed text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackc import libyaml, source
from stackc.located import SourceError, YMap, YSeq

ROOT = Path(__file__).resolve().parent.parent
HAS_LIBYAML = libyaml.available()
needs_libyaml = pytest.mark.skipif(not HAS_LIBYAML, reason="PyYAML without libyaml: every spec takes ruamel.yaml's path")


def _tree(node):
    if isinstance(node, YMap):
        return ("map", node.span, [(k, e.key_span, _tree(e.value)) for k, e in node.entries.items()])
    if isinstance(node, YSeq):
        return ("seq", node.span, [_tree(item) for item in node.items])
    return ("scalar", node.span, type(node.value).__name__, repr(node.value))


def _read(text: str, fast: bool, monkeypatch) -> tuple:
    """The located tree, or the diagnostic, from one of the two readers."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(source, "compose_all", lambda text: None)
        try:
            return _tree(source.parse("spec.yaml", text).root)
        except SourceError as exc:
            return ("error", exc.diagnostic)


def _yaml_files() -> list[Path]:
    def ours(path: Path) -> bool:  # not a virtual environment's, git's or a tool's
        return not any(part.startswith(".") or part == "node_modules" for part in path.relative_to(ROOT).parts)

    return sorted(p for p in ROOT.rglob("*.y*ml") if ours(p))


@needs_libyaml
def test_every_yaml_file_reads_the_same(monkeypatch):
    files = _yaml_files()
    assert len(files) > 20  # the examples, the fixtures and the snapshots of YAML outputs
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert _read(text, True, monkeypatch) == _read(text, False, monkeypatch), path


@needs_libyaml
def test_the_examples_take_the_fast_path():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        assert libyaml.compose_all(path.read_text(encoding="utf-8")) is not None, path


_SCALARS = st.one_of(
    st.text(alphabet="0123456789+-._eExXoObB:TtZz ~nNulLaAfrsFRSE<=", max_size=12),
    st.sampled_from(["true", "True", "TRUE", "tRue", "yes", "on", "null", "~", "", "<<", "=", "0o17", "017", "0x_F",
                     "1_000", ".5", "-.inf", ".NaN", "1e5", "1.5e-3", ".5e+3", "2026-12-02", "2026-1-2 3:04:05.5 +1",
                     "2026-12-02T10:00:00Z", "1:30", "hf://org/name"]),
)


@given(_SCALARS)
@settings(max_examples=500, deadline=None)
def test_plain_scalars_resolve_as_ruamel_resolves_them(value):
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    expected = str(VersionedResolver(version=(1, 2)).resolve(ScalarNode, value, (True, False)))
    assert libyaml.resolve_plain(value) == expected


_TOKENS = st.sampled_from([
    "a", "b", "name", ":", ": ", " ", "  ", "\n", "\n  ", "\n- ", "- ", "-", "[", "]", "{", "}", ", ", ",",
    "'", '"', "''", "#", " # c", "&x ", "*x", "<<: ", "1", "1.5", "true", "~", "null", "hf://x", "\t", "|", ">",
    "? ", "!!str ", "!!int ", "---", "...", "%", "@", "`", "=", "\r\n", "\r", "\x85", "\u2028", "\u2029",
    "\ufeff", "\x7f", "\xa0", "é", "😀", "\\", "\\u00e9", "\\x85", "\\N", "\\_", "\\L", "\\P", "\\/",
    "\\e", "\\ ", '\\"', "\\U0001F600",
])
_KEYS = st.sampled_from(["stack", "name", "models", "gpu", "max_context", "hf://org/m", "a b", "ключ"])
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, width=32),
              st.text(max_size=20), _SCALARS),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
)


@needs_libyaml
@given(st.lists(_TOKENS, min_size=1, max_size=30).map(lambda tokens: "".join(tokens) + "\n"))
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_text_reads_the_same(monkeypatch, text):
    assert _read(text, True, monkeypatch) == _read(text, False, monkeypatch)


@needs_libyaml
@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=5), st.sampled_from([False, True, None]),
       st.sampled_from([2, 4]), st.integers(20, 80))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_written_specs_read_the_same(monkeypatch, data, flow, indent, width):
    """Specs as a YAML writer writes them, block, flow and mixed, folded at several widths."""
    import yaml

    text = yaml.safe_dump(data, default_flow_style=flow, indent=indent, width=width, allow_unicode=True)
    assert _read(text, True, monkeypatch) == _read(text, False, monkeypatch)


@needs_libyaml
def test_what_libyaml_refuses_goes_to_ruamel(monkeypatch):
    """A duplicate anchor (legal YAML: the later one wins), a `%YAML 1.1` directive and a syntax
    error each leave the fast path, and the answer is ruamel.yaml's."""
    cases = (  # each ends the fast path before libyaml reads it, or in libyaml
        "a: &x 1\nb: &x 2\nc: *x\n",
        "%YAML 1.1\n---\na: yes\n",
        "a: [1, 2\n",
        "a:\tb\n",
        "a: \"x\u2028y\"\n",
        "a: 1",
    )
    for text in cases:
        assert libyaml.compose_all(text) is None, text
        assert _read(text, True, monkeypatch) == _read(text, False, monkeypatch)
    for text in ("a:\nb: 1\n", "- a\n", "a: 1\n---\nb: 2\n"):  # read by libyaml, placed by ruamel.yaml
        assert libyaml.compose_all(text) is not None, text
        assert _read(text, True, monkeypatch) == _read(text, False, monkeypatch)
    assert _read("%YAML 1.1\n---\na: yes\nb: yes\n", True, monkeypatch)[2][0][2][3] == "True"  # 1.1's `yes` (read as false before)
