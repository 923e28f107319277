"""No literal credential reaches any output: every injection the attacker's report found, in every
field it rode in, crossed with every target. Each must stop the build with a positioned SC70x error
and leave nothing written; the same spec without it builds on every target, so the field is one
that reaches the generated files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from stackc import credentials

from .conftest import run_cli

CANARY = "Zq7CanaryValue9xWv3"
TARGETS = ["compose", "helm", "systemd", "terraform"]
BASE = {
    "stack": "v1", "name": "canary",
    "hardware": {"gpu": "h100-sxm", "gpus_per_node": 8, "provider": "gcp", "region": "us-central1"},
    "models": [{"name": "chat", "model": "meta-llama/Llama-3.1-8B-Instruct", "max_context": 8192, "gpus": 1}],
    "tiering": {"overflow": [{"name": "burst", "base_url": "https://api.together.xyz/v1",
                              "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                              "api_key": {"secret": "BURST_API_KEY"}, "when": ["error"]}]},
    "gateway": {"api_key": {"secret": "STACK_API_KEY"}, "tls": {}},  # on a cloud's public address: HTTPS only
    "secrets": {"HF_TOKEN": {}, "STACK_API_KEY": {}, "BURST_API_KEY": {}},
}


def _model(doc):
    return doc["models"][0]


INJECTIONS = {  # name: (the change, the code it must raise)
    "userinfo in base_url": (lambda d: d["tiering"]["overflow"][0].update(
        base_url=f"https://user:{CANARY}@api.together.xyz/v1"), "SC706"),
    "api_key query in base_url": (lambda d: d["tiering"]["overflow"][0].update(
        base_url=f"https://api.together.xyz/v1?api_key={CANARY}"), "SC706"),
    "userinfo in image": (lambda d: _model(d).update(image=f"user:{CANARY}@docker.io/vllm/vllm-openai:v0.11.0"), "SC706"),
    "userinfo in adapter source": (lambda d: _model(d).update(adapters=[
        {"name": "sql", "source": f"https://u:{CANARY}@example.com/adapter"}]), "SC706"),
    "URL inside engine_args": (lambda d: _model(d).update(engine_args={
        "kv-transfer-config": f'{{"url": "redis://:{CANARY}@cache:6379"}}'}), "SC706"),
    "secret flag with a number": (lambda d: _model(d).update(engine_args={"api-key": 123456789012}), "SC702"),
    "secret flag with a list": (lambda d: _model(d).update(engine_args={"api-key": [CANARY]}), "SC702"),
    "value inside the key": (lambda d: _model(d).update(engine_args={f"--hf-token=hf_{CANARY}abc": True}), "SC707"),
    "flag without a trigger word before": (lambda d: _model(d).update(engine_args={"hf-auth": CANARY}), "SC702"),
    "JSON blob with a secret key": (lambda d: _model(d).update(engine_args={
        "model-loader-extra-config": f'{{"aws_secret_access_key": "{CANARY}"}}'}), "SC707"),
    "token-shaped served name": (lambda d: _model(d).update(served_names=[f"sk-proj-{CANARY}"]), "SC707"),
    "token-shaped revision": (lambda d: _model(d).update(revision=f"ghp_{CANARY}abcd"), "SC707"),
    "AWS key id in a served name": (lambda d: _model(d).update(served_names=["AKIA" + CANARY.upper()[:16]]), "SC707"),
    "token in an environment override": (lambda d: d.update(environments={"prod": {"models": [
        {"name": "chat", "served_names": [f"hf_{CANARY}abcdefgh"]}]}}), "SC707"),
    "token in defaults": (lambda d: d.update(defaults={"engine_args": {"served-model-name": f"sk-{CANARY}abcd"}}), "SC707"),
}


def _write(tmp_path: Path, doc: dict, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(doc, indent=2) + "\n")  # JSON is YAML, and keeps every position exact
    return path


@pytest.mark.parametrize("target", TARGETS)
def test_the_spec_without_injections_builds(tmp_path, target):
    result = run_cli("build", str(_write(tmp_path, BASE, "base")), "--target", target, "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("injection", sorted(INJECTIONS))
def test_a_literal_credential_stops_the_build(tmp_path, injection, target):
    change, code = INJECTIONS[injection]
    doc = copy.deepcopy(BASE)
    change(doc)
    spec, out = _write(tmp_path, doc, "spec"), tmp_path / "out"
    args = ["build", str(spec), "--target", target, "-o", str(out)] + (["--all-envs"] if "environments" in doc else [])
    result = run_cli(*args, "--format", "json")
    assert result.exit_code == 1, result.output
    diags = json.loads(result.stderr)
    hits = [d for d in diags if d["code"] == code]
    assert hits, diags
    assert all(d["line"] and d["column"] and d["help"] for d in hits)
    assert CANARY.lower()[:16] in spec.read_text().splitlines()[hits[0]["line"] - 1].lower() or code == "SC702"
    assert not out.exists()


@pytest.mark.parametrize("text", [
    "meta-llama/Llama-3.1-8B-Instruct", "hf://org/repo", "ghcr.io/org/img:v1", "vllm/vllm-openai@sha256:" + "a" * 64,
    "registry:5000/img:tag", "https://api.together.xyz/v1", "https://host/v1?model=x&page=2",
    '{"max_tokens": 512, "temperature": 0.2}', "--tokenizer-mode=auto", "--max-num-batched-tokens=8192",
    '{"api_key": "os.environ/OPENAI_API_KEY"}', "skeleton-key", "sk-short", "ask-me-anything-model-1",
    "3f1c0e7d1b2a4c5d6e7f8091a2b3c4d5e6f70819",
])
def test_ordinary_values_are_not_taken_for_credentials(text):
    assert credentials.finding(text) is None


def test_the_rendered_diagnostic_masks_the_credential(tmp_path):
    """A CI log of the refused build must not carry the credential either: the source line is shown
    masked from the flagged span to its end."""
    doc = copy.deepcopy(BASE)
    INJECTIONS["token-shaped served name"][0](doc)
    INJECTIONS["flag without a trigger word before"][0](doc)
    result = run_cli("validate", str(_write(tmp_path, doc, "spec")))
    assert result.exit_code == 1 and "error[SC707]" in result.stdout
    assert CANARY.lower()[:16] not in result.output.lower() and "****" in result.stdout
