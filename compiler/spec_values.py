"""The spec's value types, each with its own error message (check.py turns them into
diagnostics): DNS labels, safe references, sizes, rates, secret names; and the base every
model of the spec shares."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from .units import SIZE_PATTERN, parse_size


DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SECRET_NAME = r"^[A-Z][A-Z0-9_]*$"
# Identifiers that end up in argv, configs and unit files: no whitespace, quotes or shell syntax.
SAFE_REF = r"^[A-Za-z0-9._~+=@:/-]+$"
_dns = re.compile(DNS_LABEL)
_safe = re.compile(SAFE_REF)


def _label(max_len: int, what: str):
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("stackc_type", "expected text, found {found}", {"found": _kind(value)})
        if len(value) > max_len or not _dns.match(value):
            raise PydanticCustomError(
                "stackc_dns_label",
                "`{value}` is not a valid {what}: use lowercase letters, digits and `-`, start with a "
                "letter, end with a letter or digit, at most {max} characters",
                {"value": value, "what": what, "max": max_len},
            )
        return value

    return Annotated[
        str,
        BeforeValidator(check),
        WithJsonSchema({"type": "string", "pattern": DNS_LABEL, "maxLength": max_len}),
    ]


def _safe_text(what: str, max_len: int = 300):
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("stackc_type", "expected text, found {found}", {"found": _kind(value)})
        if not value or len(value) > max_len or not _safe.match(value):
            raise PydanticCustomError(
                "stackc_unsafe_text",
                "`{value}` is not a valid {what}: only letters, digits and `._~+=@:/-` are allowed",
                {"value": value[:80], "what": what},
            )
        return value

    return Annotated[
        str, BeforeValidator(check), WithJsonSchema({"type": "string", "pattern": SAFE_REF, "maxLength": max_len})
    ]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"the number `{value}`"
    if isinstance(value, str):
        return f"the text `{value[:60]}`"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise PydanticCustomError("stackc_size", "expected a size like `64GiB`, found {found}", {"found": _kind(value)})
    try:
        return parse_size(value)
    except ValueError:
        raise PydanticCustomError(
            "stackc_size", "`{value}` is not a size: write a number and a unit, like `64GiB` or `500GB`",
            {"value": value},
        ) from None


Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema({"type": "string", "pattern": SIZE_PATTERN, "examples": ["64GiB", "500GB"]}),
]


def _rate(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str) or not value.strip().endswith("/s"):
        raise PydanticCustomError("stackc_rate", "expected a rate like `500MB/s` or `2GiB/s`, found {found}",
                                  {"found": _kind(value)})
    try:
        return parse_size(value.strip()[:-2])
    except ValueError:
        raise PydanticCustomError(
            "stackc_rate", "`{value}` is not a rate: write a size per second, like `500MB/s` or `2GiB/s`",
            {"value": value},
        ) from None


Rate = Annotated[
    int,
    BeforeValidator(_rate),
    WithJsonSchema({"type": "string", "pattern": SIZE_PATTERN[:-1] + "/s$", "examples": ["500MB/s", "2GiB/s"]}),
]

StackName = _label(30, "stack name")
ModelName = _label(20, "model name")
EnvName = _label(30, "environment name")
OverflowName = _label(30, "overflow name")
ServedName = _safe_text("served model name", 200)
ModelRef = _safe_text("model reference", 300)
ImageRef = _safe_text("image reference", 300)
Revision = _safe_text("revision", 100)
HostPath = _safe_text("path on the host", 1000)  # a file the operator places; stackc names it, never reads it

SecretName = Annotated[str, Field(pattern=SECRET_NAME, max_length=64)]
K8sName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
# a fully qualified host name, as a certificate and an Ingress rule name it (RFC 1123, lower case)
HostName = Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)]


class _Strict(BaseModel):
    """Unknown keys are errors. Validators are built on first use (`defer_build`): only for the
    top-level model a spec is checked against, and the file-level models only for a file that
    has `defaults:` or `environments:`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False, str_strip_whitespace=False, defer_build=True)
