"""The command line contract of SPEC.md: verbs, flags, output layout and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import MINIMAL, ROOT, run_cli, write_spec


def test_help_and_version():
    assert run_cli("--help").exit_code == 0
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.startswith("stackc ")


def test_validate_clean_warning_and_error_exit_codes(tmp_path):
    assert run_cli("validate", str(write_spec(tmp_path, MINIMAL))).exit_code == 0
    no_key = MINIMAL.replace("gateway: {api_key: {secret: STACK_API_KEY}}\n", "")
    result = run_cli("validate", str(write_spec(tmp_path, no_key)))
    assert result.exit_code == 0 and "warning[SC704]" in result.stdout
    result = run_cli("validate", str(write_spec(tmp_path, MINIMAL.replace("l40s", "l40x"))))
    assert result.exit_code == 1 and "error[SC302]" in result.stdout


@pytest.mark.parametrize("args", [
    ("validate", "does-not-exist.yaml"),
    ("validate", "examples"),
    ("validate", "examples/spec-complete.yaml", "--format", "xml"),
    ("validate", "examples/spec-complete.yaml", "--env", "qa"),
    ("validate", "examples/spec-complete.yaml", "--env", "dev", "--all-envs"),
    ("build", "examples/chatbot-8b-l40s.yaml", "--target", "kubernetes"),
    ("validate", "examples/spec-complete.yaml", "--bogus"),
    ("explain", "SC999"),
])
def test_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_unknown_environment_suggests_the_closest():
    result = run_cli("validate", "examples/spec-complete.yaml", "--env", "prd")
    assert result.exit_code == 2
    assert "error[SC307]: the spec has no environment `prd`" in result.stdout
    assert "--> examples/spec-complete.yaml:96:1" in result.stdout and "= help: did you mean `prod`?" in result.stdout


@pytest.mark.parametrize("args,stream,code", [
    (("validate", "examples/spec-complete.yaml", "--env", "prd"), "stdout", "SC307"),
    (("build", "examples/spec-complete.yaml", "-t", "compose", "--env", "prd"), "stderr", "SC307"),
    (("validate", "does-not-exist.yaml"), "stdout", "SC001"),
    (("build", "examples/chatbot-8b-l40s.yaml", "-t", "kubernetes"), "stderr", "SC001"),
    (("build", "examples/chatbot-8b-l40s.yaml", "-t", "compose", "-e", "a", "--all-envs"), "stderr", "SC001"),
])
def test_command_line_failures_are_diagnostics_in_the_chosen_format(args, stream, code):
    """`--format json` gets one JSON array, `github` annotations: a usage error included."""
    result = run_cli(*args, "--format", "json")
    assert result.exit_code == 2
    items = json.loads(getattr(result, stream))
    assert [i["code"] for i in items] == [code] and items[0]["severity"] == "error" and items[0]["help"]
    lines = getattr(run_cli(*args, "--format", "github"), stream).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"::error") and f"title={code}::" in lines[0]


def test_an_internal_error_is_an_sc000_diagnostic_in_the_chosen_format(monkeypatch):
    import stackc.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("planted fault")

    monkeypatch.setattr(stackc.pipeline, "analyse", broken)
    monkeypatch.delenv("STACKC_DEBUG", raising=False)
    result = run_cli("validate", "examples/chatbot-8b-l40s.yaml", "--format", "json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    [item] = json.loads(result.stdout)
    assert item["code"] == "SC000" and item["message"] == "internal compiler error: RuntimeError: planted fault"
    assert "STACKC_DEBUG=1" in item["help"]
    result = run_cli("build", "examples/chatbot-8b-l40s.yaml", "-t", "compose", "-o", "unused")
    assert result.exit_code == 1 and result.stderr.startswith("error[SC000]: internal compiler error")


def test_a_target_that_returns_no_files_is_sc614(monkeypatch, tmp_path):
    import stackc.pipeline

    monkeypatch.setattr(stackc.pipeline, "emit", lambda unit, target, spec: ({}, []))
    out = tmp_path / "out"
    result = run_cli("build", "examples/chatbot-8b-l40s.yaml", "-t", "compose", "-o", str(out), "-f", "json")
    assert result.exit_code == 1 and not out.exists()
    assert [i["code"] for i in json.loads(result.stderr)] == ["SC614"]


def test_json_diagnostics_have_the_contract_keys():
    result = run_cli("validate", "examples/invalid/sc3-references.yaml", "--format", "json")
    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert items and set(items[0]) >= {"code", "severity", "message", "file", "line", "column", "end_line", "end_column", "help"}
    assert all(i["file"] == "examples/invalid/sc3-references.yaml" for i in items)


def test_clean_json_is_an_empty_array(tmp_path):
    result = run_cli("validate", str(write_spec(tmp_path, MINIMAL)), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_github_annotations():
    result = run_cli("validate", "examples/invalid/sc2-schema.yaml", "--format", "github")
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("::error file=examples/invalid/sc2-schema.yaml,line=") for line in lines)


def test_build_writes_and_records_a_manifest(tmp_path):
    out = tmp_path / "out"
    result = run_cli("build", "examples/chatbot-8b-l40s.yaml", "--target", "compose", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "compose.yaml").exists() and (out / ".env.example").exists()
    manifest = json.loads((out / ".stackc-manifest.json").read_text())
    assert "compose.yaml" in manifest["files"]


def test_build_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert run_cli("build", "examples/assistant-70b-fp8-h200.yaml", "--target", "compose", "-o", str(out)).exit_code == 0
    for path in a.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (b / path.relative_to(a)).read_bytes()


def test_same_bytes_across_hash_seeds(tmp_path):
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run([sys.executable, "-m", "stackc", "build", "examples/spec-complete.yaml", "--target", "compose",
                        "--env", "dev", "-o", str(out)], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        outputs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outputs[0] == outputs[1]


def test_nothing_is_written_on_failure(tmp_path):
    out = tmp_path / "out"
    result = run_cli("build", "examples/invalid/sc4-capacity.yaml", "--target", "compose", "-o", str(out))
    assert result.exit_code == 1 and not out.exists()
    result = run_cli("build", "examples/invalid/sc6-target.yaml", "--target", "compose", "-o", str(out))
    assert result.exit_code == 1 and "error[SC601]" in result.stderr and not out.exists()


def test_failed_build_leaves_previous_output_untouched(tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path, MINIMAL)
    assert run_cli("build", str(spec), "--target", "compose", "-o", str(out)).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    spec.write_text(MINIMAL.replace("max_context: 8192", "max_context: 9999999"))
    assert run_cli("build", str(spec), "--target", "compose", "-o", str(out)).exit_code == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_all_envs_layout_and_check(tmp_path):
    out = tmp_path / "out"
    spec = "examples/environments.yaml"
    result = run_cli("build", spec, "--target", "compose", "--all-envs", "-o", str(out))
    # prod asks for autoscaling on two nodes: compose cannot, so the whole build fails atomically
    assert result.exit_code == 1 and "environment `prod`" in result.stderr and not out.exists()


def test_check_reports_missing_changed_and_stale(tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(MINIMAL + "environments:\n  a: {}\n  b: {}\n")
    out = tmp_path / "out"
    result = run_cli("build", str(spec), "--target", "compose", "--all-envs", "-o", str(out), "--check")
    assert result.exit_code == 3 and "missing: " in result.stdout
    assert run_cli("build", str(spec), "--target", "compose", "--all-envs", "-o", str(out)).exit_code == 0
    assert (out / "a" / "compose.yaml").exists() and (out / "b" / "compose.yaml").exists()
    assert not (out / "compose.yaml").exists()  # the base is built only when there are no environments
    assert run_cli("build", str(spec), "--target", "compose", "--all-envs", "-o", str(out), "--check").exit_code == 0
    (out / "a" / "compose.yaml").write_text("edited\n")
    spec.write_text(MINIMAL + "environments:\n  a: {}\n")
    result = run_cli("build", str(spec), "--target", "compose", "--all-envs", "-o", str(out), "--check")
    assert result.exit_code == 3
    assert f"changed: {out}/a/compose.yaml" in result.stdout and f"stale: {out}/b/compose.yaml" in result.stdout
    # a real build removes what it wrote before and no longer writes
    assert run_cli("build", str(spec), "--target", "compose", "--all-envs", "-o", str(out)).exit_code == 0
    assert not (out / "b").exists() and (out / "a" / "compose.yaml").read_text() != "edited\n"


def test_target_all_writes_one_directory_per_target(tmp_path):
    out = tmp_path / "out"
    result = run_cli("build", "examples/moe-deepseek-r1-8xh200.yaml", "--target", "all", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "compose" / "compose.yaml").exists() and (out / "helm" / "values.yaml").exists()
    assert (out / "systemd" / "install.sh").exists() and (out / "terraform" / "main.tf").exists()
    # a target that cannot express the stack stops the whole build: nothing is written
    assert run_cli("build", "examples/chatbot-8b-l40s.yaml", "--target", "all", "-o", str(tmp_path / "x")).exit_code == 1
    assert not (tmp_path / "x").exists()


def test_plan_json_has_the_contract_keys():
    result = run_cli("plan", "examples/spec-complete.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["stack"] == "acme" and doc["environment"] is None
    keys = {"name", "engine", "engine_version", "quantization", "kv_cache_dtype", "gpu", "tensor_parallel",
            "pipeline_parallel", "replicas", "gpu_memory_utilization", "weights_gib", "kv_cache_gib", "kv_cache_tokens",
            "max_concurrency", "fits", "instance_type", "usd_per_hour"}
    for model in doc["models"]:
        assert keys <= set(model)
    chat = doc["models"][0]
    assert chat["tensor_parallel"] == 4 and chat["fits"] and chat["instance_type"] == "p5.48xlarge"


def test_plan_table():
    result = run_cli("plan", "examples/moe-deepseek-r1-8xh200.yaml")
    assert result.exit_code == 0 and "r1" in result.stdout and "fits" in result.stdout and "p5en.48xlarge" in result.stdout


def test_plan_of_a_spec_that_does_not_fit_exits_1():
    result = run_cli("plan", "examples/invalid/sc4-capacity.yaml")
    assert result.exit_code == 1 and "error[SC401]" in result.stderr


def test_schema_catalog_explain():
    result = run_cli("schema")
    assert result.exit_code == 0 and json.loads(result.stdout)["title"] == "stackc stack spec v1"
    for kind, needle in (("models", "meta-llama/Llama-3.3-70B-Instruct"), ("gpus", "h100-sxm"), ("instances", "p5.48xlarge")):
        result = run_cli("catalog", kind)
        assert result.exit_code == 0 and needle in result.stdout
    result = run_cli("explain", "SC401")
    assert result.exit_code == 0 and result.stdout.startswith("SC401: model does not fit")
    assert run_cli("explain", "sc401").exit_code == 0


def test_no_color_when_not_a_terminal(tmp_path):
    result = run_cli("validate", "examples/invalid/sc1-duplicate-key.yaml")
    assert "\x1b[" not in result.output


def test_build_help_names_every_target():
    """The help text is static (so `--help` imports no target); it must still list them all."""
    from stackc.targets import REGISTRY

    result = run_cli("build", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert all(name in text for name in REGISTRY), text


# `validate` with plain arguments runs without typer (console.py): it must answer exactly as the
# typer command does, and anything it does not parse itself must go to typer
SAME = [
    ("validate", "examples/chatbot-8b-l40s.yaml"),
    ("validate", "examples/environments.yaml", "--all-envs", "-f", "json"),
    ("validate", "examples/environments.yaml", "--env=prod", "--format", "concise"),
    ("validate", "examples/environments.yaml", "-e", "nope", "-f", "github"),
    ("validate", "examples/environments.yaml", "-e", "dev", "--all-envs", "--format=json"),
    ("validate", "examples/invalid/sc2-schema.yaml", "examples/invalid/sc4-capacity.yaml"),
    ("validate", "missing.yaml", "-f", "json"),
    ("validate", "examples"),
]
TYPER_ONLY = [
    ("validate",), ("validate", "--help"), ("validate", "-edev", "examples/environments.yaml"),
    ("validate", "--", "examples/chatbot-8b-l40s.yaml"), ("validate", "x.yaml", "--format", "xml"),
    ("validate", "x.yaml", "--env"), ("validate", "x.yaml", "-e", "a", "-e", "b"), ("validate", "x.yaml", "--bogus"),
    ("build", "x.yaml"), ("--version",),
]


def _console(args, typer_only: bool):
    entry = ("from stackc.cli import app; app()" if typer_only else
             "from stackc.console import main; main()")
    probe = (f"import sys; sys.argv = ['stackc', *{list(args)!r}]\n"
             f"try:\n    {entry}\nfinally:\n    sys.stderr.write('typer loaded: %s' % ('typer' in sys.modules))")
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args", SAME, ids=lambda a: " ".join(a[1:]))
def test_plain_validate_answers_as_the_typer_command(args):
    from stackc.console import plain_validate

    assert plain_validate(list(args)) is not None
    fast, slow = _console(args, typer_only=False), _console(args, typer_only=True)
    assert fast.stderr.endswith("typer loaded: False") and slow.stderr.endswith("typer loaded: True")
    assert (fast.returncode, fast.stdout, fast.stderr[:-5]) == (slow.returncode, slow.stdout, slow.stderr[:-4]), args


@pytest.mark.parametrize("args", TYPER_ONLY, ids=" ".join)
def test_anything_else_goes_to_typer(args):
    from stackc.console import plain_validate

    assert plain_validate(list(args)) is None
