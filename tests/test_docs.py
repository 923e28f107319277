"""The README's two commands, CI, the docs and the pre-commit hooks say the same thing as the code."""

from __future__ import annotations

import re
import shlex

from ruamel.yaml import YAML

from stackc.codes import markdown

from .conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()


def _two_commands() -> list[str]:
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_two_commands_and_ci_runs_the_second_one():
    first, second = _two_commands()
    assert "stackc build examples/" in first and "--target compose" in first
    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci, "CI must run the README's test command verbatim"
    assert "pip install -e '.[test]'" in second and "pytest" in second


def test_readme_first_command_builds_its_example(tmp_path):
    first = _two_commands()[0]
    build = shlex.split(first.split("&&")[-1])
    example = next(arg for arg in build if arg.startswith("examples/"))
    assert (ROOT / example).exists()
    result = run_cli("build", example, "--target", "compose", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output


def test_readme_and_docs_links_exist():
    for doc in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / link).exists(), (doc.name, link)


def test_diagnostics_catalogue_is_generated_from_the_code_registry():
    assert (ROOT / "docs" / "diagnostics.md").read_text() == markdown(), (
        "docs/diagnostics.md is stale: python -c 'from stackc.codes import markdown; print(markdown(), end=\"\")' "
        "> docs/diagnostics.md")


def test_pre_commit_hooks_run():
    hooks = {h["id"]: h for h in YAML(typ="safe", pure=True).load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"stackc-validate", "stackc-check"}
    validate = shlex.split(hooks["stackc-validate"]["entry"])
    assert validate[0] == "stackc"
    # pre-commit appends the changed file names
    ok = run_cli(*validate[1:], "examples/chatbot-8b-l40s.yaml", "examples/spec-complete.yaml")
    assert ok.exit_code == 0, ok.output
    bad = run_cli(*validate[1:], "examples/chatbot-8b-l40s.yaml", "examples/invalid/sc3-references.yaml")
    assert bad.exit_code == 1 and "error[SC3" in bad.stdout
    assert re.search(hooks["stackc-validate"]["files"], "deploy/prod.stack.yaml")
    check = shlex.split(hooks["stackc-check"]["entry"])
    assert check[:3] == ["stackc", "build", "--check"] and hooks["stackc-check"]["pass_filenames"] is False


def test_ci_recipe_in_the_docs_uses_real_flags(tmp_path):
    recipe = (ROOT / "docs" / "ci.md").read_text()
    for line in re.findall(r"run: (stackc .+)", recipe):
        args = shlex.split(line)[1:]
        args = ["examples/spec-complete.yaml" if a == "deploy/stack.yaml" else a for a in args]
        args = [str(tmp_path / a.replace("/", "-")) if a.startswith("deploy/") else a for a in args]
        if "build" in args:  # the example environment each target can express
            args = [a if a != "--all-envs" else "--env" for a in args]
            args.insert(args.index("--env") + 1, "prod" if "helm" in args else "dev")
        result = run_cli(*args)
        assert result.exit_code in (0, 3), (line, result.output)  # 3: nothing built yet


def test_readme_plan_output_is_what_stackc_prints():
    block = README.split("```sh\nstackc plan examples/spec-complete.yaml\n```\n```\n", 1)[1].split("```", 1)[0]
    result = run_cli("plan", "examples/spec-complete.yaml")
    assert result.exit_code == 0
    assert result.stdout.strip() == block.strip(), "README's plan output is stale: paste `stackc plan examples/spec-complete.yaml`"
