"""Deterministic serialisation: the one emitter of each format the targets write.

One YAML emitter for every target (block style, keys in the order the target built them,
strings quoted whenever a YAML 1.1 or 1.2 reader could take them for anything else), and the
writers of HAProxy configurations, unit files and HCL. Files are written by `writer.py`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}


_NON_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def _quote(text: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes, plus what YAML reads as a line break or not printable."""
    return _NON_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("non-finite number in output")
        text = repr(value)
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(value, str):
        if value and _PLAIN.fullmatch(value) and value.lower() not in _RESERVED and not value.endswith((".", "/")) \
                and not re.match(r"^[0-9._+-]", value):
            return value
        return _quote(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to YAML; resolve it first")


def to_yaml(data: Any) -> str:
    """Block-style YAML for dicts, lists and scalars; deterministic and loss-free."""
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(data: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(data, dict):
        if not data:
            lines.append(pad + "{}")
            return
        for key, value in data.items():
            k = scalar(str(key))
            if isinstance(value, dict) and value:
                lines.append(f"{pad}{k}:")
                _emit(value, indent + 2, lines)
            elif isinstance(value, list) and value:
                lines.append(f"{pad}{k}:")
                _emit(value, indent + 2, lines)
            elif _literal(value):
                lines.append(f"{pad}{k}: |" + ("" if value.endswith("\n") else "-"))
                lines.extend(f"{pad}  {line}" if line else "" for line in value.splitlines())
            else:
                lines.append(f"{pad}{k}: {_inline(value)}")
        return
    if isinstance(data, list):
        if not data:
            lines.append(pad + "[]")
            return
        for item in data:
            if isinstance(item, dict) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                lines.extend(sub)
            elif isinstance(item, list) and item:
                lines.append(pad + "-")
                _emit(item, indent + 2, lines)
            else:
                lines.append(f"{pad}- {_inline(item)}")
        return
    lines.append(pad + scalar(data))


def _literal(value: Any) -> bool:
    """A multi-line text (a config file in a ConfigMap) reads best as a literal block, when
    the block keeps it byte for byte: printable lines, no leading blank or indented first line,
    at most one final newline."""
    if not isinstance(value, str) or "\n" not in value.rstrip("\n") or value.endswith("\n\n"):
        return False
    if value[0] in " \t\n" or "\r" in value or _NON_PRINTABLE.search(value):
        return False
    return all(line.isprintable() or line.replace("\t", "").isprintable() for line in value.splitlines())


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_haproxy(sections: list[dict]) -> str:
    """An HAProxy configuration from `{section, lines}` records, each line a list of words."""
    out: list[str] = []
    for section in sections:
        out.append(section["section"])
        lines = []
        for line in section["lines"]:  # a resolved server pool is several lines
            lines += line if line and isinstance(line[0], list) else [line]
        for words in lines:
            if any(not isinstance(w, str) or not w or "\n" in w for w in words):
                raise ValueError(f"cannot write {words!r} into an HAProxy configuration")
            out.append("  " + " ".join(words))
        out.append("")
    return "\n".join(out)


_UNIT_PLAIN = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")


def unit_word(word: str) -> str:
    """One word of a systemd command line or setting, quoted so systemd reads it back as it
    is: no variable (`$`) or specifier (`%`) expansion, no splitting."""
    if "\n" in word or "\r" in word or "\x00" in word:
        raise ValueError(f"cannot write {word!r} into a unit file")
    word = word.replace("%", "%%").replace("$", "$$")
    if word and _UNIT_PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_unit(sections: list[tuple[str, list[tuple[str, str]]]], header: str = "") -> str:
    """A unit file from `(section, [(key, value)])`; values are already quoted where they must be."""
    out = [header.rstrip("\n")] if header else []
    for name, entries in sections:
        if out:
            out.append("")
        out.append(f"[{name}]")
        for key, value in entries:
            if key.startswith("#"):
                out.append(key)  # a comment that explains the setting after it
                continue
            if "\n" in value:
                raise ValueError(f"cannot write {value!r} into a unit file")
            out.append(f"{key}={value}")
    return "\n".join(out) + "\n"


def config_text(f: Any, resolver: Callable[[Any], Any]) -> str:
    """A config file (ir.ConfigFile) with its symbolic values resolved, in its own format."""
    content = resolve(f.content, resolver)
    if f.format == "yaml":
        return to_yaml(content)
    if f.format == "json":
        return to_json(content)
    if f.format == "haproxy":
        return to_haproxy(content)
    return str(content)


def resolve(data: Any, resolver: Callable[[Any], Any]) -> Any:
    """Replace symbolic values (Endpoints, SecretRefs) everywhere in a data tree."""
    if isinstance(data, dict):
        return {k: resolve(v, resolver) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve(v, resolver) for v in data]
    if isinstance(data, (str, int, float, bool)) or data is None:
        return data
    return resolver(data)


# ---------------------------------------------------------------------------------------------
# HCL (Terraform), written as `terraform fmt` writes it


@dataclass(frozen=True)
class Raw:
    """An HCL expression written as is: a reference, a function call (`var.region`, `file(...)`)."""

    text: str


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...] = ()
    body: tuple[Any, ...] = ()  # (name, value) attributes, Blocks, Comment, BLANK


@dataclass(frozen=True)
class Comment:
    text: str


BLANK = Comment("")


def hcl_string(text: str) -> str:
    """A quoted HCL string: JSON's escapes, and `${`/`%{` kept literal."""
    out = json.dumps(text, ensure_ascii=False)
    return out.replace("${", "$${").replace("%{", "%%{")


def _hcl_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else hcl_string(key)


def _hcl_inline(value: Any) -> Optional[str]:
    """A value on one line, or None when it spans lines (a non-empty object)."""
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, (list, tuple)):
        items = [_hcl_inline(v) for v in value]
        if all(i is not None for i in items):
            return "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
        return None
    if isinstance(value, dict):
        return "{}" if not value else None
    raise TypeError(f"cannot write {type(value).__name__} as HCL")


def _hcl_body(items: list, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        out.extend(f"{pad}{k.ljust(width)} = {v}" for k, v in run)
        run.clear()

    for item in items:
        if isinstance(item, tuple):
            key, value = _hcl_key(item[0]), item[1]
            inline = _hcl_inline(value)
            if inline is not None:
                run.append((key, inline))
                continue
            flush()
            if isinstance(value, dict):
                out.append(f"{pad}{key} = {{")
                _hcl_body(list(value.items()), indent + 1, out)
                out.append(pad + "}")
            else:  # a list holding objects
                out.append(f"{pad}{key} = [")
                for v in value:
                    out.append(f"{pad}  {{")
                    _hcl_body(list(v.items()), indent + 2, out)
                    out.append(f"{pad}  }},")
                out.append(pad + "]")
            continue
        flush()
        if isinstance(item, Comment):
            out.append(f"{pad}# {item.text}".rstrip() if item.text else "")
        elif isinstance(item, Block):
            labels = "".join(f" {hcl_string(label)}" for label in item.labels)
            if not item.body:
                out.append(f"{pad}{item.type}{labels} {{}}")
                continue
            out.append(f"{pad}{item.type}{labels} {{")
            _hcl_body(list(item.body), indent + 1, out)
            out.append(pad + "}")
        else:
            raise TypeError(f"cannot write {item!r} as HCL")
    flush()


def to_hcl(items: list, header: str = "") -> str:
    """A Terraform file: top-level blocks separated by one blank line, as `terraform fmt` keeps them."""
    out: list[str] = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    for i, item in enumerate(items):
        if out and not (i and isinstance(items[i - 1], Comment) and items[i - 1].text):
            out.append("")  # a comment sits right above what it explains
        _hcl_body([item], 0, out)
    return "\n".join(out) + "\n"
