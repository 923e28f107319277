"""Overlays (SPEC.md, "Overlays") and `defaults:`, applied on the located tree."""

from __future__ import annotations

from stackc import environments, located, source

BASE = """\
stack: v1
name: demo
defaults: {max_context: 8192, engine: vllm}
hardware: {gpu: h100-sxm, gpus_per_node: 8, region: us-east-1, provider: aws}
models:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, gpus: 2, engine_args: {a: 1}}
  - {name: embed, model: BAAI/bge-m3, task: embed}
tiering: {routing: least-load}
"""


def resolved(overlay: str, env: str = "e"):
    doc = source.parse("s.yaml", BASE + "environments:\n  e:\n" + overlay)
    merged, diags = environments.apply_environment(doc.root, env)
    return located.to_data(environments.apply_defaults(merged)), diags


def test_mappings_merge_key_by_key():
    data, diags = resolved("    hardware: {nodes: 2}\n")
    assert data["hardware"] == {"gpu": "h100-sxm", "gpus_per_node": 8, "region": "us-east-1", "provider": "aws", "nodes": 2}
    assert diags == []


def test_null_deletes_a_key():
    data, _ = resolved("    hardware: {region: null, provider: on-prem}\n    tiering: null\n")
    assert "region" not in data["hardware"] and "tiering" not in data


def test_models_merge_by_name():
    data, _ = resolved("    models:\n      - {name: chat, gpus: 4}\n")
    chat = data["models"][0]
    assert chat["gpus"] == 4 and chat["engine_args"] == {"a": 1} and chat["model"].startswith("meta-llama")


def test_changing_the_engine_replaces_the_entry():
    data, diags = resolved("    models:\n      - {name: chat, model: Qwen/Qwen2.5-7B-Instruct, engine: ollama,"
                           " weights: 'qwen2.5:7b'}\n")
    chat = data["models"][0]
    assert diags == [] and "engine_args" not in chat and "gpus" not in chat
    assert chat["max_context"] == 8192  # defaults still fill the new entry


def test_changing_the_engine_without_a_model_is_reported():
    data, diags = resolved("    models:\n      - {name: chat, engine: ollama}\n")
    assert [d.code for d in diags] == ["SC305"] and "replaces the whole entry" in diags[0].message


def test_enabled_false_keeps_the_entry_for_checking_and_defaults_do_not_enable_it():
    data, _ = resolved("    models:\n      - {name: embed, enabled: false}\n")
    assert [m.get("enabled", True) for m in data["models"]] == [True, False]


def test_unknown_model_in_an_overlay_suggests_the_closest():
    _, diags = resolved("    models:\n      - {name: chta, gpus: 1}\n")
    assert diags[0].code == "SC305" and diags[0].help == "did you mean `chat`?"
    assert diags[0].span.line == 12


def test_a_complete_new_model_is_added():
    data, diags = resolved("    models:\n      - {name: extra, model: Qwen/Qwen3-8B}\n")
    assert diags == [] and [m["name"] for m in data["models"]] == ["chat", "embed", "extra"]


def test_lists_replace():
    data, _ = resolved("    tiering: {overflow: []}\n")
    assert data["tiering"] == {"routing": "least-load", "overflow": []}


def test_defaults_fill_only_unset_fields():
    data, _ = resolved("    models:\n      - {name: chat, max_context: 4096}\n")
    assert data["models"][0]["max_context"] == 4096 and data["models"][1]["max_context"] == 8192
    assert "defaults" not in data and "environments" not in data


def test_spans_come_from_where_values_were_written():
    doc = source.parse("s.yaml", BASE + "environments:\n  e:\n    hardware: {nodes: 2}\n")
    merged, _ = environments.apply_environment(doc.root, "e")
    spans = located.SpanIndex(merged)
    assert spans.exact(("hardware", "nodes")).value.line == 11
    assert spans.exact(("hardware", "gpu")).value.line == 4


def test_environment_names():
    doc = source.parse("s.yaml", BASE + "environments:\n  b: {}\n  a: {}\n")
    assert environments.environment_names(doc.root) == ["b", "a"]
