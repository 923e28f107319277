"""The documented bound on models per stack: a spec over it is refused with SC206 at the
`models:` key, with a help line that states the bound. (How build time grows up to the bound is
measured by bench/scale.py; no test asserts a timing.)"""

from __future__ import annotations

import json

from stackc.spec import MAX_MODELS, Hardware, Stack

from .conftest import run_cli


def _spec(models: int) -> str:
    lines = ["stack: v1", "name: scale", "hardware: {gpu: h200, gpus_per_node: 64, nodes: 256}", "models:"]
    lines += [f"  - {{name: m{i}, model: meta-llama/Llama-3.1-8B-Instruct}}" for i in range(models)]
    return "\n".join(lines) + "\n"


def _cap(field: str) -> int:
    return next(m.le for m in Hardware.model_fields[field].metadata if getattr(m, "le", None) is not None)


def test_the_bound_is_the_most_gpus_a_stack_can_have():
    assert MAX_MODELS == _cap("gpus_per_node") * _cap("nodes") == 16_384


def test_a_stack_at_the_bound_passes_the_schema():
    models = [{"name": f"m{i}", "model": "meta-llama/Llama-3.1-8B-Instruct"} for i in range(MAX_MODELS)]
    stack = Stack.model_validate({"stack": "v1", "name": "scale", "hardware": {"gpu": "h200"}, "models": models})
    assert len(stack.models) == MAX_MODELS


def test_one_model_over_the_bound_is_sc206_at_the_models_key(tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(_spec(MAX_MODELS + 1))
    result = run_cli("validate", str(spec), "--format", "json")
    assert result.exit_code == 1
    errors = [d for d in json.loads(result.stdout) if d["severity"] == "error"]
    assert [d["code"] for d in errors] == ["SC206"]
    (d,) = errors
    assert (d["line"], d["column"]) == (4, 1)
    assert f"at most {MAX_MODELS} items" in d["message"]
    assert f"at most {MAX_MODELS:,}" in d["help"]
