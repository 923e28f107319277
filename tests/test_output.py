"""The one serialiser: loss-free YAML that every reader takes back as it was written."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from stackc import output

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=40),
    st.sampled_from(["yes", "no", "on", "off", "null", "~", "1e3", "0x10", "08", "1:2", "- a", "#x", "a: b",
                     "@x", "`x`", "!x", "&a", "*a", "%x", "", " lead", "trail ", "multi\nline", "tab\t", "12:30:00",
                     "2024-01-01", ".inf", "-.5", "+1", "True", "NULL", "y", "n"]),
)
keys = st.one_of(st.text(min_size=1, max_size=20), st.sampled_from(["yes", "on", "null", "1", "a: b", "- x"]))
trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


def _load(text: str, typ: str = "safe"):
    return YAML(typ=typ, pure=True).load(text)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_yaml_round_trips_through_a_yaml_12_reader(data):
    assert _load(output.to_yaml(data)) == data


@pytest.mark.parametrize("data", [{"A\n": None}, {"0": None, "A\n": None}, {"k": "a\n"}, ["b\n"]])
def test_a_trailing_newline_is_never_written_plain(data):
    """`$` in Python's patterns also matches before a final newline; plain scalars are checked whole
    (found by hypothesis under CI's seed)."""
    assert _load(output.to_yaml(data)) == data


@pytest.mark.parametrize("value", ["yes", "no", "on", "off", "y", "n", "08", "1:2", "0o7", "12:30"])
def test_yaml_11_readers_do_not_misread_strings(value):
    """PyYAML (what kubernetes-validate and older tools use) reads YAML 1.1: `yes` is a bool there."""
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(output.to_yaml({"k": value})) == {"k": value}


def test_output_is_stable_and_ordered():
    data = {"b": 1, "a": [1, {"z": None, "x": "v", "y": "y"}], "empty": {}, "none": []}
    assert output.to_yaml(data) == output.to_yaml(data)
    assert output.to_yaml(data) == 'b: 1\na:\n  - 1\n  - z: null\n    x: v\n    "y": "y"\nempty: {}\nnone: []\n'


def test_unresolved_objects_are_refused():
    with pytest.raises(TypeError):
        output.to_yaml({"a": object()})
