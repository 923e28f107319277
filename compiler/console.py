"""The `stackc` console script. `validate` with plain arguments runs straight from
`commands.py`, without the command-line library: it is what a pre-commit hook runs on every
commit, and typer with click costs it a sixth of its time. Any other command, `--help`, or an
argument the plain grammar below does not cover, goes through typer (`cli.py`), which parses it
the same way or says what is wrong with it.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

VALUE_FLAGS = {"-e": "env", "--env": "env", "-f": "fmt", "--format": "fmt"}


def plain_validate(args: list[str]) -> Optional[tuple[list[str], Optional[str], bool, str]]:
    """`validate STACK... [-e ENV | --env[=]ENV] [--all-envs] [-f FMT | --format[=]FMT]` as
    (stacks, env, all_envs, format), or None for anything else (typer then parses it)."""
    if not args or args[0] != "validate":
        return None
    from .commands import DiagFormat

    values: dict[str, str] = {}
    stacks: list[str] = []
    all_envs = False
    rest = iter(args[1:])
    for arg in rest:
        name, _, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg == "--all-envs":
            if all_envs:
                return None
            all_envs = True
        elif name in VALUE_FLAGS:
            value = inline if "=" in arg else next(rest, None)
            if value is None or VALUE_FLAGS[name] in values or (not inline and value.startswith("-")):
                return None
            values[VALUE_FLAGS[name]] = value
        elif arg.startswith("-") or not arg:
            return None  # --help, --, a short flag with its value attached, an unknown flag
        else:
            stacks.append(arg)
    fmt = values.get("fmt", DiagFormat.full.value)
    if not stacks or fmt not in {f.value for f in DiagFormat}:
        return None
    return stacks, values.get("env"), all_envs, fmt


def _no_plugin_loader() -> None:
    """pydantic's plugin loader imports importlib.metadata (with email, zipfile and csv, about
    20 ms, a tenth of `validate`) only to answer "no plugins" when they are all disabled. This
    process disables them all, so a loader that gives that answer directly stands in for it.
    If pydantic renames the module, the stand-in is never asked and only the time comes back."""
    import types

    if "pydantic.plugin._loader" in sys.modules:
        return
    loader = types.ModuleType("pydantic.plugin._loader", "stackc: every pydantic plugin is disabled")
    loader.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules["pydantic.plugin._loader"] = loader


def main() -> None:
    import gc

    # pydantic looks for plugins in every installed package's metadata the first time it builds
    # a validator (a scan of site-packages, about 20 ms); stackc uses none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__":
        _no_plugin_loader()
    # one short run whose data holds no reference cycles: the cyclic collector would only rescan
    # a heap that grows with the spec (5,000 models: 4.8 s with it, 3.7 s without, peak memory
    # 90 MB and 94 MB); reference counting still frees everything as it goes
    gc.disable()
    plain = plain_validate(sys.argv[1:])
    if plain is None:
        from .cli import app

        app()
        return
    from .commands import DiagFormat, guarded, validate

    stacks, env, all_envs, fmt = plain
    try:
        code = guarded(lambda: validate(stacks, env, all_envs, DiagFormat(fmt)), DiagFormat(fmt), sys.stdout)
        sys.stdout.flush()
    except KeyboardInterrupt:  # as click ends an interrupted command
        sys.stderr.write("\nAborted!\n")
        code = 1
    sys.exit(code)
