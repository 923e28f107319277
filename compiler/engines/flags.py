"""Flag names and values as engines take them on their command line."""

from __future__ import annotations

import json
from typing import Any


def normalise_flag(name: str) -> str:
    """`--max_model_len=4096` and `max-model-len` are the same flag: `max-model-len`."""
    return name.strip().lstrip("-").split("=", 1)[0].replace("_", "-").lower()


def render_args(args: dict[str, Any], negate_prefix: str = "--no-") -> list[str]:
    """engine_args as argv: `true` -> `--flag`, `false` -> `--no-flag`, lists repeat values,
    mappings become JSON (the form vLLM's `--*-config` flags take)."""
    out: list[str] = []
    for key, value in args:
        flag = "--" + key.lstrip("-")
        if value is True or value is None:
            out.append(flag)
        elif value is False:
            out.append(negate_prefix + key.lstrip("-"))
        elif isinstance(value, list):
            out.append(flag)
            out += [json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v) for v in value]
        elif isinstance(value, dict):
            out += [flag, json.dumps(value, sort_keys=True, separators=(",", ":"))]
        else:
            out += [flag, str(value)]
    return out


def set_flag(args: list[str], flag: str, value: str) -> list[str]:
    """`args` with `flag` set to `value`: replaced where it is given (`--flag v` or `--flag=v`), else added."""
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = value
    elif any(a.startswith(flag + "=") for a in out):
        out = [f"{flag}={value}" if a.startswith(flag + "=") else a for a in out]
    else:
        out += [flag, value]
    return out


def listen_on(args: list[str], bind: str, port: int) -> list[str]:
    """`--host bind --port port`, for the engines that take both flags."""
    return set_flag(set_flag(args, "--host", bind), "--port", str(port))
