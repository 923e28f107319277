"""Every example, every environment, every target: a snapshot of what a user would read.

Where the target accepts the stack, the snapshot is the files it writes, one after another
with a `==> path <==` header (as `tail` prints several files); where it does not, it is the
rendered SC6xx diagnostics. Invalid examples snapshot their rendered diagnostics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from stackc.diagnostics import render_full
from stackc.pipeline import analyse, emit, open_spec
from stackc.targets import REGISTRY

from .conftest import EXAMPLES, example_specs, invalid_specs, run_cli


class TextSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "txt"


@pytest.fixture
def text_snapshot(snapshot):
    return snapshot.use_extension(TextSnapshot)


def _variants() -> list[tuple[Path, str | None]]:
    out = []
    for spec in example_specs():
        session = open_spec(str(spec), f"examples/{spec.name}")
        out.append((spec, None))
        out += [(spec, env) for env in session.environment_names]
    return out


CASES = [(spec, env, target) for spec, env in _variants() for target in sorted(REGISTRY)]


def _id(case) -> str:
    spec, env, target = case
    return f"{spec.stem}-{env or 'base'}-{target}"


def bundle(files: dict[str, bytes]) -> str:
    return "".join(f"==> {path} <==\n{_shown(path, data)}\n" for path, data in sorted(files.items()))


def _shown(path: str, data: bytes) -> str:
    """A hashed lock (a copy of compiler/locks/, checked by test_locks) as its header and a digest:
    the thousand lines of hashes say nothing a reviewer reads."""
    text = data.decode()
    if "requirements/" not in path:
        return text
    import hashlib

    header = [line for line in text.splitlines() if line.startswith("# ")][:3]
    pins = sum(1 for line in text.splitlines() if "==" in line and not line.startswith(("#", " ")))
    return "\n".join(header) + f"\n# ... {pins} pinned packages, sha256 {hashlib.sha256(data).hexdigest()}\n"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_example_builds(case, text_snapshot):
    spec, env, target = case
    display = f"examples/{spec.name}"
    session = open_spec(str(spec), display)
    unit = analyse(session, env)
    assert unit.ok, render_full(unit.diagnostics, session.sources)  # every example validates
    files, diags = emit(unit, target, spec.name)
    if files is None:
        assert diags and all(d.code.startswith("SC6") for d in diags if d.is_error)
        assert text_snapshot == render_full(diags, session.sources)
    else:
        assert "compose.yaml" in files if target == "compose" else files
        assert text_snapshot == bundle(files)


def test_spec_example_validates_with_all_environments():
    result = run_cli("validate", "examples/spec-complete.yaml", "--all-envs")
    assert result.exit_code == 0, result.output


def test_every_example_builds_somewhere():
    """Each scenario has at least one variant a user can deploy with some target (the bare-metal
    example spans two hosts, which compose cannot)."""
    for spec in example_specs():
        session = open_spec(str(spec), spec.name)
        built = [(env, t) for env in [None, *session.environment_names] for t in sorted(REGISTRY)
                 if emit(analyse(session, env), t, spec.name)[0]]
        assert built, spec.name


@pytest.mark.parametrize("spec", invalid_specs(), ids=[p.stem for p in invalid_specs()])
def test_invalid_examples(spec, text_snapshot):
    """One spec per diagnostic family, with its rendered diagnostics."""
    rel = f"examples/invalid/{spec.name}"
    if spec.name.startswith("sc6"):
        assert run_cli("validate", rel).exit_code == 0
        result = run_cli("build", rel, "--target", "compose", "-o", "/nonexistent/never-written")
    else:
        result = run_cli("validate", rel)
    assert result.exit_code == 1
    family = spec.name[:3].upper()
    assert f"error[{family}" in result.output
    assert text_snapshot == result.stdout + result.stderr


def test_examples_directory_has_the_promised_scenarios():
    names = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert {"spec-complete.yaml", "chatbot-8b-l40s.yaml", "assistant-70b-fp8-h200.yaml", "moe-deepseek-r1-8xh200.yaml",
            "workstation-ollama-4090.yaml", "environments.yaml"} <= names
    families = {p.name[:3] for p in (EXAMPLES / "invalid").glob("*.yaml")}
    assert families == {"sc1", "sc2", "sc3", "sc4", "sc5", "sc6", "sc7"}
