"""The commands' bodies that need no command-line library: opening a spec, checking the
environment flags, collecting diagnostics, rendering them, and `validate` itself. `cli.py`
wires them into typer; `console.py` runs `validate` straight from here when its arguments are
plain, so the command a pre-commit hook runs on every commit never imports typer and click.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import Optional


class DiagFormat(str, Enum):
    full = "full"
    concise = "concise"
    json = "json"
    github = "github"


class Failure(Exception):
    """A command that cannot go on: its diagnostic, and the exit code (2 usage, 1 otherwise).
    `guarded` renders it in the format the user chose, like every other diagnostic."""

    def __init__(self, diagnostic, exit_code: int = 2, sources: Optional[dict[str, str]] = None):
        super().__init__(diagnostic.message)
        self.diagnostic, self.exit_code, self.sources = diagnostic, exit_code, sources or {}


def usage(message: str, help: Optional[str] = None) -> Failure:
    from .diagnostics import Diagnostic

    return Failure(Diagnostic.error("SC001", message, help=help))


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def print_diagnostics(diags, sources, fmt: DiagFormat, stream) -> None:
    from .diagnostics import render

    if fmt is DiagFormat.json or diags:
        stream.write(render(fmt.value, diags, sources, color=_color(stream)))


def open_file(stack: str):
    from .pipeline import open_spec

    if not os.path.exists(stack):
        raise usage(f"`{stack}` does not exist", help="pass the path of a stack spec (YAML), e.g. `examples/chatbot-8b-l40s.yaml`")
    if os.path.isdir(stack):
        raise usage(f"`{stack}` is a directory", help="pass the stack spec file inside it")
    return open_spec(stack, stack)


def check_env(session, env: Optional[str]) -> None:
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


def both_env_flags(env: Optional[str], all_envs: bool) -> None:
    if env and all_envs:
        raise usage("`--env` and `--all-envs` exclude each other",
                     help="pass `--env NAME` for one environment, or `--all-envs` for all of them")


def collect(session, env, all_envs, include_base, upto="lower"):
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


def internal_error(exc: BaseException):
    """An unexpected exception as the SC000 diagnostic: a bug report, never a traceback."""
    from .diagnostics import Diagnostic

    return Diagnostic.error(
        "SC000", f"internal compiler error: {type(exc).__name__}: {exc}",
        help="this is a bug in stackc; please report it with the spec and the command "
             "(set STACKC_DEBUG=1 for the traceback)")


def validate(stacks: list[str], env: Optional[str], all_envs: bool, fmt: DiagFormat) -> int:
    """Parse, check and plan each spec; print the diagnostics; the exit code."""
    both_env_flags(env, all_envs)
    sessions = [open_file(stack) for stack in stacks]
    all_diags, sources = [], {}
    for session in sessions:
        check_env(session, env)
        _, diags = collect(session, env, all_envs, include_base=True, upto="plan")
        all_diags += diags
        sources.update(session.sources)
    print_diagnostics(all_diags, sources, fmt, sys.stdout)
    return 1 if any(d.is_error for d in all_diags) else 0


def guarded(run, fmt: DiagFormat, stream, passthrough: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command body: a `Failure` rendered in the chosen format with its exit code, any
    other exception (but those in `passthrough`, the command-line library's own) as SC000, exit 1."""
    try:
        return run()
    except passthrough:
        raise
    except Failure as failure:
        print_diagnostics([failure.diagnostic], failure.sources, fmt, stream)
        return failure.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("STACKC_DEBUG"):
            raise
        print_diagnostics([internal_error(exc)], {}, fmt, stream)
        return 1
