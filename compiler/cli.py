"""The `stackc` command line in typer: parse flags, call the library, choose the exit code.
The console script is `console.main`, which runs a plain `validate` without typer; the command
bodies that need no command-line library are in `commands.py`.

Exit codes (SPEC.md): 0 clean or warnings only, 1 errors in the spec, 2 usage errors (an
unknown flag, a missing file, an unknown environment or code), 3 when `build --check` finds
files that differ. Heavy modules are imported inside the commands that need them, so
`stackc --help` stays fast. Bad input never ends in a traceback.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import Optional

import typer
from typer.core import TyperCommand

from . import __version__, commands
from .commands import (DiagFormat, Failure, both_env_flags, check_env, collect, guarded, open_file, print_diagnostics,
                       usage)

app = typer.Typer(
    name="stackc",
    help="A compiler for self-hosted LLM stacks: one spec in, checked at compile time, deployment files out.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class PlanFormat(str, Enum):
    table = "table"
    json = "json"


class CatalogKind(str, Enum):
    models = "models"
    gpus = "gpus"
    instances = "instances"


def _target_names() -> list[str]:
    from stackc.targets import names

    return names() + ["all"]


class _BuildCommand(TyperCommand):
    """`build`: the `--target` help names the registered targets, read from the registry only
    when help is shown, so no file lists them and a build that shows no help reads nothing more."""

    def format_options(self, ctx, formatter) -> None:
        for param in self.params:
            if param.help and "{targets}" in param.help:
                param.help = param.help.replace("{targets}", ", ".join(_target_names()[:-1]))
        super().format_options(ctx, formatter)


def _guard(stream: str = "stderr"):
    """Render a `Failure`, and turn an unexpected exception into an SC000 diagnostic instead of
    a traceback, in the format the command was asked for (`--format`), on the stream where that
    command prints its diagnostics (`commands.guarded`)."""
    import functools

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            fmt = kwargs.get("fmt")
            fmt = fmt if isinstance(fmt, DiagFormat) else DiagFormat.full

            def run() -> int:
                try:
                    fn(*args, **kwargs)
                except typer.Exit as done:
                    return done.exit_code
                return 0

            code = guarded(run, fmt, getattr(sys, stream), passthrough=(typer.Abort,))
            raise typer.Exit(code)

        return wrapper

    return decorate


@app.callback(invoke_without_command=True)
def main_callback(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        typer.echo(f"stackc {__version__}")
        raise typer.Exit(0)


@app.command()
@_guard("stdout")
def validate(
    stacks: list[str] = typer.Argument(..., metavar="STACK...", help="The stack spec(s) (YAML)."),
    env: Optional[str] = typer.Option(None, "--env", "-e", help="Check one environment merged onto the base."),
    all_envs: bool = typer.Option(False, "--all-envs", help="Check the base and every environment."),
    fmt: DiagFormat = typer.Option(DiagFormat.full, "--format", "-f", help="Diagnostics format."),
) -> None:
    """Parse, check and plan the stack; print diagnostics. Exit 0 when clean or warnings only, 1 on errors.

    Several files may be given (as pre-commit does); each is checked on its own."""
    raise typer.Exit(commands.validate(stacks, env, all_envs, fmt))


@app.command(cls=_BuildCommand)
@_guard()
def build(
    stack: str = typer.Argument(..., help="The stack spec (YAML)."),
    target: str = typer.Option(..., "--target", "-t", help="{targets}, or all (one subdirectory per target)."),
    env: Optional[str] = typer.Option(None, "--env", "-e", help="Build one environment."),
    all_envs: bool = typer.Option(False, "--all-envs", help="Build every environment into DIR/<env>/."),
    out: str = typer.Option("out", "--output", "-o", help="Output directory (default: ./out)."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 3 if the files on disk differ."),
    force: bool = typer.Option(False, "--force", help="Also remove stale generated files that were edited by hand."),
    fmt: DiagFormat = typer.Option(DiagFormat.full, "--format", "-f", help="Diagnostics format."),
) -> None:
    """Compile the stack and write the target's files."""
    from .diagnostics import Diagnostic, merge_environments
    from .writer import OutputError, write
    from .pipeline import emit

    names = _target_names()
    if target not in names:
        from .check import did_you_mean

        close = did_you_mean(target, names)
        raise usage(f"no target is named `{target}`",
                     help=(f"did you mean `{close}`? " if close else "") + f"targets: {', '.join(names)}")
    both_env_flags(env, all_envs)
    session = open_file(stack)
    check_env(session, env)
    results, diags = collect(session, env, all_envs, include_base=False)
    targets = [t for t in names if t != "all"] if target == "all" else [target]
    files: dict[str, bytes] = {}
    per_env: list[tuple[Optional[str], list[Diagnostic]]] = []
    nested_env = all_envs and len(results) > 1 or (all_envs and results and results[0].environment is not None)
    spec_name = os.path.basename(stack)
    if results and all(u.ok for u in results):
        for u in results:
            env_diags: list[Diagnostic] = []
            for t in targets:
                artifacts, target_diags = emit(u, t, spec_name)
                env_diags += target_diags
                if artifacts is None:
                    continue
                prefix = "/".join(p for p in ((u.environment if nested_env else None), (t if target == "all" else None)) if p)
                for rel, data in artifacts.items():
                    files[f"{prefix}/{rel}" if prefix else rel] = data
            per_env.append((u.environment, env_diags))
        target_diags_all = merge_environments(per_env) if len(per_env) > 1 else (per_env[0][1] if per_env else [])
        diags = sorted(diags + target_diags_all, key=lambda d: d.sort_key())
    if not any(d.is_error for d in diags) and not files:
        diags.append(Diagnostic.error(
            "SC614", f"the `{target}` target returned no files, so there is nothing to build",
            help="nothing was written; a target from another package did this: report it there"))
    if any(d.is_error for d in diags):
        print_diagnostics(diags, session.sources, fmt, sys.stderr)
        raise typer.Exit(1)
    try:
        if check:
            print_diagnostics(diags, session.sources, fmt, sys.stderr)
            raise typer.Exit(_check(out, files))
        result = write(out, files, force=force)
    except OutputError as exc:
        diags.append(Diagnostic.error(exc.code, exc.message, help=exc.help))
        print_diagnostics(diags, session.sources, fmt, sys.stderr)
        raise typer.Exit(1)
    print_diagnostics(diags + _kept(out, result), session.sources, fmt, sys.stderr)
    _report_write(out, result)
    raise typer.Exit(0)


def _check(out: str, files: dict[str, bytes]) -> int:
    """`build --check`: name every file that differs from what this build writes, and exit 3."""
    from .writer import compare

    result = compare(out, files)
    for label, paths in (("missing", result.missing), ("changed", result.changed), ("stale", result.stale),
                         ("left over", result.leftover), ("unsafe", result.unsafe)):
        for p in paths:
            sys.stdout.write(f"{label}: {os.path.join(out, p)}\n")
    if result.leftover:
        sys.stderr.write("note: an interrupted build left files behind; the next `stackc build` finishes or removes them\n")
    if result.unsafe:
        sys.stderr.write("note: a symbolic link stands where a generated file or directory belongs; stackc never "
                         "writes through one\n")
    if not result.clean:
        count = sum(map(len, (result.missing, result.changed, result.stale, result.leftover, result.unsafe)))
        sys.stderr.write(f"error: {count} generated file(s) in `{out}` are out of date; run `stackc build` "
                         "without --check\n")
        return 3
    sys.stdout.write(f"{len(files)} files in `{out}` are up to date\n")
    return 0


def _kept(out: str, result) -> list:
    """SC715 for each stale file the build kept because a person edited it."""
    from .diagnostics import Diagnostic

    return [Diagnostic.warning(
        "SC715", f"kept `{os.path.join(out, p)}`: it was edited after stackc wrote it, and this build would have "
        "removed it", help="delete it if the edits are no longer needed, or build with `--force` to remove it")
        for p in result.kept + result.recovered.kept]


def _report_write(out: str, result) -> None:
    found = result.recovered
    if found.journal:
        sys.stdout.write(f"finished the build that was interrupted in {out}\n")
    if found.staging:
        sys.stdout.write(f"removed what an interrupted build had staged in {out}\n")
    for p in result.removed:
        sys.stdout.write(f"removed {os.path.join(out, p)}\n")
    sys.stdout.write(f"wrote {len(result.written)} files to {out}\n")


@app.command()
@_guard()
def plan(
    stack: str = typer.Argument(..., help="The stack spec (YAML)."),
    env: Optional[str] = typer.Option(None, "--env", "-e", help="Plan one environment."),
    fmt: PlanFormat = typer.Option(PlanFormat.table, "--format", "-f", help="table or json."),
) -> None:
    """Show the capacity plan: GPUs per replica, weights and KV cache per GPU, KV tokens, concurrency, cost."""
    import json

    from .plan_report import table

    session = open_file(stack)
    check_env(session, env)
    results, diags = collect(session, env, False, include_base=True, upto="plan")
    print_diagnostics(diags, session.sources, DiagFormat.full, sys.stderr)
    unit = results[0] if results else None
    if unit is None or unit.plan is None:
        raise typer.Exit(1)
    if fmt is PlanFormat.json:
        sys.stdout.write(json.dumps(unit.plan.as_json(), indent=2) + "\n")
    else:
        sys.stdout.write(table(unit.plan))
    raise typer.Exit(1 if any(d.is_error for d in diags) else 0)


@app.command()
@_guard()
def schema() -> None:
    """Print the JSON Schema of the stack spec."""
    import json

    from .spec_file import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
@_guard()
def catalog(kind: CatalogKind = typer.Argument(..., help="models, gpus or instances.")) -> None:
    """List what the built-in catalog knows (extend it with STACKC_CATALOG=file.json)."""
    from .plan_report import catalog_table

    sys.stdout.write(catalog_table(kind.value))


@app.command()
@_guard()
def explain(code: str = typer.Argument(..., help="A diagnostic code, e.g. SC401.")) -> None:
    """Print the long explanation of a diagnostic code."""
    from .check import did_you_mean
    from .codes import CODES, explain as explain_code

    text = explain_code(code)
    if text is None:
        close = did_you_mean(code.upper(), list(CODES))
        raise usage(f"no diagnostic code is named `{code}`",
                     help=f"did you mean `{close}`?" if close else "docs/diagnostics.md lists every code")
    sys.stdout.write(text)


__all__ = ["Failure", "app"]  # the console script is `console.main`
