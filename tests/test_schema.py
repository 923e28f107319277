"""The checked-in JSON Schema is `stackc schema`'s output, describes every field, and accepts
every example (so editors and check-jsonschema agree with stackc on valid specs)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ruamel.yaml import YAML

from stackc.spec_file import json_schema

from .conftest import ROOT, example_specs, run_cli, run_tool, tool

SCHEMA_FILE = ROOT / "schemas" / "stack.schema.json"


def test_checked_in_schema_has_not_drifted():
    assert SCHEMA_FILE.read_text() == run_cli("schema").stdout, (
        "schemas/stack.schema.json is stale: run `stackc schema > schemas/stack.schema.json`")


def _properties(schema: dict, where: str = "$"):
    for name, prop in schema.get("properties", {}).items():
        yield f"{where}.{name}", prop
    for def_name, definition in schema.get("$defs", {}).items():
        yield from _properties(definition, f"$defs.{def_name}")


def test_every_field_has_a_description():
    schema = json_schema()
    missing = [path for path, prop in _properties(schema) if not prop.get("description")]
    assert missing == []


def test_schema_is_a_valid_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("spec", example_specs(), ids=[p.stem for p in example_specs()])
def test_examples_validate_against_the_schema(spec):
    data = YAML(typ="safe", pure=True).load(spec.read_text())
    jsonschema.Draft202012Validator(json_schema()).validate(data)


def test_check_jsonschema_agrees(tmp_path):
    spec = example_specs()[0]
    result = run_tool(tool("check-jsonschema"), "--schemafile", str(SCHEMA_FILE), str(spec))
    assert result.returncode == 0 and "ok -- validation done" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("stack: v1\nname: x\nhardware: {gpu: l4}\nmodels: [{name: a, model: b/c, gpuz: 1}]\n")
    result = run_tool(tool("check-jsonschema"), "--schemafile", str(SCHEMA_FILE), str(bad))
    assert result.returncode == 1 and "gpuz" in result.stdout


def test_examples_point_editors_at_the_schema():
    for spec in example_specs():
        assert spec.read_text().startswith("# yaml-language-server: $schema=../schemas/stack.schema.json"), spec.name
