"""Shared fixtures: the repository layout, an in-process CLI runner, and the real validators.

A validator that is not installed makes its tests skip with the reason; it never passes
silently. Tests that read `../shared/reference/` skip when it is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
SNAPSHOT_DIR = Path(__file__).resolve().parent / "__snapshots__"


def example_specs() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def invalid_specs() -> list[Path]:
    return sorted((EXAMPLES / "invalid").glob("*.yaml"))


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> Result:
    """Run `stackc` in-process (fast) with the given arguments, from `cwd`."""
    from typer.testing import CliRunner

    from stackc.cli import app

    old = os.getcwd()
    os.chdir(cwd or ROOT)
    try:
        runner = CliRunner()
        result = runner.invoke(app, list(args), env={"NO_COLOR": "1", **(env or {})}, catch_exceptions=False)
    finally:
        os.chdir(old)
    return Result(result.exit_code, result.stdout, result.stderr)


def tool(name: str) -> str:
    """The path of a validator installed with the test extra (next to this Python, or on PATH)."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"`{name}` is not installed (pip install -e '.[test]' installs it)")
    return found


def run_tool(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def shared_reference() -> Path:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"{SHARED_REFERENCE} is absent (the shared reference material sits beside the repository)")
    return SHARED_REFERENCE


def write_spec(tmp_path: Path, text: str, name: str = "stack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def example_builds(target: str) -> list[tuple[str, object, dict[str, bytes]]]:
    """(`<example>-<env or base>`, the analysed unit, files) for every example variant `target` accepts."""
    from stackc.pipeline import analyse, emit, open_spec

    out = []
    for spec in example_specs():
        session = open_spec(str(spec), f"examples/{spec.name}")
        for env in [None, *session.environment_names]:
            unit = analyse(session, env)
            files, _ = emit(unit, target, spec.name)
            if files is not None:
                out.append((f"{spec.stem}-{env or 'base'}", unit, files))
    return out


def compile_spec(tmp_path: Path, text: str, target: str, env: str | None = None):
    """Build a spec for `target`: (files or None, the target's diagnostics, them rendered). The spec must validate."""
    from stackc.diagnostics import render_full
    from stackc.pipeline import analyse, emit, open_spec

    session = open_spec(str(write_spec(tmp_path, text)), "stack.yaml")
    unit = analyse(session, env)
    assert unit.ok, render_full(unit.diagnostics, session.sources)
    files, diags = emit(unit, target, "stack.yaml")
    return files, diags, render_full(diags, session.sources)


MINIMAL = """\
stack: v1
name: demo
hardware: {gpu: l40s, gpus_per_node: 1}
models:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}
gateway: {api_key: {secret: STACK_API_KEY}}
secrets: {STACK_API_KEY: {}}
"""
