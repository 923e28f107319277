"""Where a pydantic error is in the spec: the path of the value it is about (pydantic's `loc`
names union members and tags the spec never wrote), the model that describes that path, and
how a diagnostic names it (`models[1]` is `` `chat` ``)."""

from __future__ import annotations

import typing
from typing import Any, Sequence

from pydantic import BaseModel


def data_path(data: Any, loc: Sequence) -> tuple:
    """Drop pydantic's own segments (union members, `[key]`) from an error location."""
    path: list = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif (isinstance(node, dict) and isinstance(part, str) and i == len(loc) - 1 and part != "[key]"):
            path.append(part)  # a missing or unknown key: it is the subject of the error
            node = None
        # anything else is pydantic's own (a union member, a validator), not a place in the file
    return tuple(path)


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated/list/dict."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        out = []
        for arg in typing.get_args(annotation):
            out += _unwrap(arg)
        return out
    return [annotation]


def _pick(annotation: Any, value: Any) -> Any:
    """Follow one step into an annotation, choosing the union member the value is meant for."""
    candidates = []
    for t in _unwrap(annotation):
        origin = typing.get_origin(t)
        if origin in (list, tuple):
            inner = typing.get_args(t)[0] if typing.get_args(t) else Any
            candidates.append(("list", inner))
        elif origin is dict:
            candidates.append(("dict", typing.get_args(t)[1] if typing.get_args(t) else Any))
        elif isinstance(t, type) and issubclass(t, BaseModel):
            candidates.append(("model", t))
    for kind, t in candidates:
        if kind == "model" and isinstance(value, dict):
            return t
    for kind, inner in candidates:
        if kind in ("list", "dict"):
            return _Container(kind, inner)
    return None


class _Container:
    def __init__(self, kind: str, inner: Any):
        self.kind, self.inner = kind, inner


def model_at_path(root: type[BaseModel], data: Any, path: Sequence) -> type[BaseModel] | None:
    cls: Any = root
    node = data
    for part in path:
        if isinstance(cls, _Container):
            members = [t for t in _unwrap(cls.inner) if isinstance(t, type) and issubclass(t, BaseModel)]
            child = node[part] if isinstance(node, (list, dict)) and _has(node, part) else None
            cls = _choose_member(members, child)
            node = child
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or not isinstance(part, str):
            return None
        field = cls.model_fields.get(part)
        if field is None:
            return None
        child = node.get(part) if isinstance(node, dict) else None
        cls = _pick(field.annotation, child)
        node = child
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return part in node


def _choose_member(members: list[type[BaseModel]], value: Any) -> type[BaseModel] | None:
    if not members:
        return None
    if len(members) == 1 or not isinstance(value, dict):
        return members[0]
    for m in members:  # discriminated by a Literal `tier`-like field
        for name, f in m.model_fields.items():
            args = typing.get_args(f.annotation)
            if typing.get_origin(f.annotation) is typing.Literal and value.get(name) in args:
                return m
    return members[0]


def describe(path: Sequence, data: Any) -> str:
    """A phrase that tells the user which part of the spec a path is in."""
    if not path:
        return "at the top level"
    if path[0] == "models" and len(path) >= 2 and isinstance(path[1], int):
        name = _name_of(data, path[:2])
        inner = ".".join(str(p) for p in path[2:-1])
        where = f"model `{name}`" if name else f"`models[{path[1]}]`"
        return f"in {where}" + (f" (`{inner}`)" if inner else "")
    if path[0] == "environments" and len(path) >= 2:
        rest = describe(path[2:], value_at(data, path[:2]) or {})
        return f"in environment `{path[1]}`" + ("" if rest == "at the top level" else f", {rest}")
    parent = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path[:-1]).replace(".[", "[")
    return f"in `{parent}`" if parent else "at the top level"


def value_at(data: Any, path: Sequence) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _name_of(data: Any, path: Sequence) -> str | None:
    node = value_at(data, path)
    name = node.get("name") if isinstance(node, dict) else None
    return name if isinstance(name, str) else None


def dotted(path: Sequence) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out or "the document"
