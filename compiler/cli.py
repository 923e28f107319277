"""The `stackc` command line: parse flags, call the library, choose the exit code.

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

from . import __version__

app = typer.Typer(
    name="stackc",
    help="A compiler for self-hosted LLM stacks: one spec in, checked at compile time, deployment files out.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class DiagFormat(str, Enum):
    full = "full"
    concise = "concise"
    json = "json"
    github = "github"


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


class Failure(Exception):
    """A command that cannot go on: its diagnostic, and the exit code (2 usage, 1 otherwise).
    `_guard` renders it in the format the user chose, like every other diagnostic."""

    def __init__(self, diagnostic, exit_code: int = 2, sources: Optional[dict[str, str]] = None):
        super().__init__(diagnostic.message)
        self.diagnostic, self.exit_code, self.sources = diagnostic, exit_code, sources or {}


def _usage(message: str, help: Optional[str] = None) -> Failure:
    from .diagnostics import Diagnostic

    return Failure(Diagnostic.error("SC001", message, help=help))


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _print_diagnostics(diags, sources, fmt: DiagFormat, stream) -> None:
    from .diagnostics import render

    if fmt is DiagFormat.json or diags:
        stream.write(render(fmt.value, diags, sources, color=_color(stream)))


def _open(stack: str):
    from .pipeline import open_spec

    if not os.path.exists(stack):
        raise _usage(f"`{stack}` does not exist", help="pass the path of a stack spec (YAML), e.g. `examples/chatbot-8b-l40s.yaml`")
    if os.path.isdir(stack):
        raise _usage(f"`{stack}` is a directory", help="pass the stack spec file inside it")
    return open_spec(stack, stack)


def _check_env(session, env: Optional[str]) -> None:
    if env is None or session.document is None:
        return
    names = session.environment_names
    if env not in names:
        from .check import did_you_mean
        from .diagnostics import Diagnostic, Span

        close = did_you_mean(env, names)
        listed = ", ".join(f"`{n}`" for n in names)
        hint = (f"did you mean `{close}`?" if close else
                f"use one of {listed}" if names else "add it under `environments:`, or build without `--env`")
        entry = session.document.root.entries.get("environments")
        span = entry.key_span if entry else Span(session.display, 1, 1, 1, 1)
        raise Failure(Diagnostic.error("SC307", f"the spec has no environment `{env}`", span,
                                       label="environments defined here" if entry else None, help=hint),
                      sources=session.sources)


def _both_env_flags(env: Optional[str], all_envs: bool) -> None:
    if env and all_envs:
        raise _usage("`--env` and `--all-envs` exclude each other",
                     help="pass `--env NAME` for one environment, or `--all-envs` for all of them")


def _collect(session, env, all_envs, include_base, upto="lower"):
    from .diagnostics import merge_environments
    from .pipeline import analyse, units

    if session.document is None or any(d.is_error for d in session.diagnostics):
        return [], sorted(session.diagnostics, key=lambda d: d.sort_key())
    results = [analyse(session, e, upto) for e in units(session, env, all_envs, include_base)]
    per_env = [(u.environment, session.diagnostics + u.diagnostics) for u in results]
    if len(results) == 1 and results[0].environment is None:
        merged = sorted(per_env[0][1], key=lambda d: d.sort_key())
    else:
        merged = merge_environments(per_env)
    return results, merged


def _guard(stream: str = "stderr"):
    """Render a `Failure`, and turn an unexpected exception into an SC000 diagnostic instead of
    a traceback, in the format the command was asked for (`--format`), on the stream where that
    command prints its diagnostics."""
    import functools

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from .diagnostics import Diagnostic

            fmt = kwargs.get("fmt")
            fmt = fmt if isinstance(fmt, DiagFormat) else DiagFormat.full
            out = getattr(sys, stream)
            try:
                return fn(*args, **kwargs)
            except (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt):
                raise
            except Failure as failure:
                _print_diagnostics([failure.diagnostic], failure.sources, fmt, out)
                raise typer.Exit(failure.exit_code)
            except Exception as exc:  # noqa: BLE001 - the last line of defence
                if os.environ.get("STACKC_DEBUG"):
                    raise
                internal = Diagnostic.error(
                    "SC000", f"internal compiler error: {type(exc).__name__}: {exc}",
                    help="this is a bug in stackc; please report it with the spec and the command "
                         "(set STACKC_DEBUG=1 for the traceback)")
                _print_diagnostics([internal], {}, fmt, out)
                raise typer.Exit(1)

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
    _both_env_flags(env, all_envs)
    sessions = [_open(stack) for stack in stacks]
    all_diags, sources = [], {}
    for session in sessions:
        _check_env(session, env)
        _, diags = _collect(session, env, all_envs, include_base=True, upto="plan")
        all_diags += diags
        sources.update(session.sources)
    _print_diagnostics(all_diags, sources, fmt, sys.stdout)
    raise typer.Exit(1 if any(d.is_error for d in all_diags) else 0)


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
        raise _usage(f"no target is named `{target}`",
                     help=(f"did you mean `{close}`? " if close else "") + f"targets: {', '.join(names)}")
    _both_env_flags(env, all_envs)
    session = _open(stack)
    _check_env(session, env)
    results, diags = _collect(session, env, all_envs, include_base=False)
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
        _print_diagnostics(diags, session.sources, fmt, sys.stderr)
        raise typer.Exit(1)
    try:
        if check:
            _print_diagnostics(diags, session.sources, fmt, sys.stderr)
            raise typer.Exit(_check(out, files))
        result = write(out, files, force=force)
    except OutputError as exc:
        diags.append(Diagnostic.error(exc.code, exc.message, help=exc.help))
        _print_diagnostics(diags, session.sources, fmt, sys.stderr)
        raise typer.Exit(1)
    _print_diagnostics(diags + _kept(out, result), session.sources, fmt, sys.stderr)
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

    session = _open(stack)
    _check_env(session, env)
    results, diags = _collect(session, env, False, include_base=True, upto="plan")
    _print_diagnostics(diags, session.sources, DiagFormat.full, sys.stderr)
    unit = results[0] if results else None
    if unit is None or unit.plan is None:
        raise typer.Exit(1)
    if fmt is PlanFormat.json:
        sys.stdout.write(json.dumps(unit.plan.as_json(), indent=2) + "\n")
    else:
        sys.stdout.write(table(unit.plan))
    raise typer.Exit(1 if any(d.is_error for d in diags) else 0)


@app.command()
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
        raise _usage(f"no diagnostic code is named `{code}`",
                     help=f"did you mean `{close}`?" if close else "docs/diagnostics.md lists every code")
    sys.stdout.write(text)


def main() -> None:
    import gc

    # pydantic looks for plugins in every installed package's metadata the first time it builds
    # a validator (a scan of site-packages, about 20 ms); stackc uses none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # one short run whose data holds no reference cycles: the cyclic collector would only rescan
    # a heap that grows with the spec (5,000 models: 4.8 s with it, 3.7 s without, peak memory
    # 90 MB and 94 MB); reference counting still frees everything as it goes
    gc.disable()
    app()
