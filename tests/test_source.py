"""The loader: positions for every key and value, and a diagnostic for every kind of bad file."""

from __future__ import annotations

import pytest

from stackc.located import YMap, YSeq, to_data
from stackc.source import MAX_FILE_BYTES, SourceError, load, parse, read_text


def code_of(text: str) -> str:
    with pytest.raises(SourceError) as exc:
        parse("s.yaml", text)
    return exc.value.diagnostic.code


def test_values_and_positions_are_kept():
    doc = parse("s.yaml", "stack: v1\nmodels:\n  - name: chat\n    gpus: 2\n")
    assert to_data(doc.root) == {"stack": "v1", "models": [{"name": "chat", "gpus": 2}]}
    loc = doc.spans.exact(("models", 0, "gpus"))
    assert (loc.value.line, loc.value.col, loc.value.end_col) == (4, 11, 12)
    assert (loc.key.line, loc.key.col, loc.key.end_col) == (4, 5, 9)


def test_nearest_parent_for_a_missing_path():
    doc = parse("s.yaml", "hardware:\n  gpu: l4\n")
    loc, found = doc.spans.nearest(("hardware", "nodes"))
    assert found == ("hardware",) and loc.key.line == 1


def test_yaml_12_scalars():
    doc = parse("s.yaml", "a: yes\nb: on\nc: 0x10\nd: 1_000\ne: 1.5\nf: null\ng: '2'\nh: true\n")
    assert to_data(doc.root) == {"a": "yes", "b": "on", "c": 16, "d": 1000, "e": 1.5, "f": None, "g": "2", "h": True}


def test_duplicate_key_points_at_the_second_one():
    with pytest.raises(SourceError) as exc:
        parse("s.yaml", "name: a\nstack: v1\nname: b\n")
    d = exc.value.diagnostic
    assert (d.code, d.span.line, d.span.col) == ("SC102", 3, 1)
    assert "line 1" in d.help


def test_syntax_error_has_a_position():
    with pytest.raises(SourceError) as exc:
        parse("s.yaml", "stack: v1\nmodels: [a, b\nname: x\n")
    d = exc.value.diagnostic
    assert d.code == "SC101" and d.span.line >= 2 and d.help


def test_tabs_get_a_specific_help():
    with pytest.raises(SourceError) as exc:
        parse("s.yaml", "stack: v1\nhardware:\n\tgpu: l4\n")
    assert exc.value.diagnostic.code == "SC101"
    assert "tabs" in exc.value.diagnostic.help


def test_billion_laughs_is_stopped():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]")
    assert code_of("\n".join(lines) + "\n") == "SC103"


def test_small_aliases_are_fine():
    doc = parse("s.yaml", "base: &b {engine: vllm}\nother: *b\n")
    assert to_data(doc.root)["other"] == {"engine": "vllm"}


def test_merge_keys_merge():
    doc = parse("s.yaml", "common: &c {engine: vllm, gpus: 1}\nm:\n  <<: *c\n  gpus: 2\n")
    assert to_data(doc.root)["m"] == {"gpus": 2, "engine": "vllm"}


@pytest.mark.parametrize("text,code", [
    ("", "SC107"),
    ("# only a comment\n", "SC107"),
    ("- a\n- b\n", "SC104"),
    ("just text\n", "SC104"),
    ("stack: v1\n---\nstack: v1\n", "SC108"),
    ("stack: !!python/object:os.system x\n", "SC109"),
    ("stack: !include other.yaml\n", "SC109"),
    ("? [a, b]\n: c\n", "SC104"),
])
def test_bad_documents(text, code):
    assert code_of(text) == code


def test_binary_and_non_utf8_files():
    with pytest.raises(SourceError) as exc:
        read_text("s.yaml", b"stack: v1\n\x00\x01\x02")
    assert exc.value.diagnostic.code == "SC106" and exc.value.diagnostic.span.line == 2
    with pytest.raises(SourceError) as exc:
        read_text("s.yaml", b"name: caf\xe9\n")
    assert exc.value.diagnostic.code == "SC106"


def test_too_large_file(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (MAX_FILE_BYTES + 10) + b"\n")
    with pytest.raises(SourceError) as exc:
        load(str(path))
    assert exc.value.diagnostic.code == "SC105"


def test_deep_nesting_is_a_diagnostic():
    assert code_of("a: " + "[" * 5000 + "]" * 5000 + "\n") in ("SC103", "SC101")


def test_tree_types():
    doc = parse("s.yaml", "a: {b: [1, {c: d}]}\n")
    a = doc.root.get("a")
    assert isinstance(a, YMap) and isinstance(a.get("b"), YSeq)


def diagnostic_of(text: str):
    with pytest.raises(SourceError) as exc:
        parse("s.yaml", text)
    return exc.value.diagnostic


def test_an_unpaired_surrogate_escape_is_refused_at_the_escape():
    d = diagnostic_of('stack: v1\nname: "demo\\ud83d"\n')
    assert d.code == "SC106" and "surrogate" in d.message and d.help
    assert (d.span.line, d.span.col, d.span.end_col) == (2, 12, 18)  # `\ud83d`
    assert diagnostic_of('"k\\ude00": 1\n').code == "SC106"  # in a key, a low half alone
    assert diagnostic_of('a: "\\ude00\\ud83d"\n').code == "SC106"  # the halves in the wrong order


def test_a_surrogate_pair_a_json_writer_wrote_is_one_character():
    doc = parse("s.yaml", '{"stack": "v1", "d": "hi \\ud83d\\ude00", "e": "\\uD83D\\uDE00"}\n')
    assert to_data(doc.root)["d"] == "hi \U0001F600" and to_data(doc.root)["e"] == "\U0001F600"


@pytest.mark.parametrize("number", ["0x" + "f" * 4000, "9" * 5000, "-" + "1" * 1001, "0b" + "1" * 2000, "1_" * 1200 + "0"])
def test_an_integer_of_thousands_of_digits_is_a_diagnostic(number):
    d = diagnostic_of(f"stack: v1\nmodels:\n  - concurrency: {number}\n")
    assert d.code == "SC110" and (d.span.line, d.span.col) == (3, 18) and d.help
    assert len(d.message) < 100


def test_a_long_integer_below_the_limit_is_a_number():
    assert to_data(parse("s.yaml", "a: " + "9" * 1000 + "\n").root)["a"] == int("9" * 1000)


@pytest.mark.parametrize("char", [chr(c) for c in range(1, 32) if c not in (9, 10, 13)]
                         + ["\x7f", "\x80", "\x9f", "\ufffe", "\uffff"])
def test_a_control_character_points_at_itself(char):
    d = diagnostic_of(f"stack: v1\nmodels:\n  - name: ch{char}at\n")
    assert d.code == "SC101" and (d.span.line, d.span.col) == (3, 13), d.span
    assert "unicode string" not in d.message and "position" not in d.message and "\n" not in d.message
    assert f"U+{ord(char):04X}" in d.message and d.help


def test_lines_are_counted_as_the_parser_counts_them():
    """A lone CR ends a line for ruamel, so it does for every span; U+2028 and NEL do not."""
    assert diagnostic_of("stack: v1\rname: x\x07\n").span.line == 2
    assert diagnostic_of("stack: v1\r\nname: x\x07\n").span.line == 2
    d = diagnostic_of("a: '\u2028\x85'\nb: \x01\n")
    assert (d.span.line, d.span.col) == (2, 4)


def test_nesting_and_alias_chains_stop_at_a_position_quickly():
    import time

    started = time.perf_counter()
    for text in ("a: " + "[" * 3000 + "]" * 3000 + "\n", "a: " + "{b: " * 1000 + "1" + "}" * 1000 + "\n",
                 "".join(f"a{i}: &a{i} [{'*a' + str(i - 1) if i else 'x'}]\n" for i in range(300)),
                 "".join(f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 2) if i else 'x'}]\n" for i in range(30))):
        d = diagnostic_of(text)
        assert d.code == "SC103" and d.span.line >= 1 and d.help
    assert time.perf_counter() - started < 2
    assert diagnostic_of("a: " + "[" * 150 + "]" * 150 + "\n").span.col == 104  # the 101st bracket
    assert diagnostic_of("".join(f"a{i}: &a{i} [{'*a' + str(i - 1) if i else 'x'}]\n" for i in range(150))).span.line > 1
