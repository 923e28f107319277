"""Compose a spec with libyaml, through PyYAML's C parser, when the machine has it.

ruamel.yaml's pure-Python scanner and parser are most of `validate`'s time on a large spec
(about 0.43 s of 0.68 s at 1,000 models); libyaml composes the same text in 0.025 s. This is
only a fast path for text that libyaml reads without complaint: anything it refuses (a
syntax error, a duplicate anchor, a surrogate escape, nesting past its own limit), a `%YAML`
directive (which may ask for YAML 1.1's rules), or a PyYAML without libyaml returns None, and
`source.parse` reads the file with ruamel.yaml as before, which writes the diagnostic.

Plain scalars are resolved here as ruamel.yaml resolves them under YAML 1.2 (the rules it
applies to a file without a directive), so the tree `source` builds is the same from either
parser; tests/test_source_fast.py compares the two on every YAML file in the repository and
on generated scalars.
"""

from __future__ import annotations

import re

STR = "tag:yaml.org,2002:str"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"

# YAML 1.2 as ruamel.yaml reads it: the characters a scalar of each tag may start with, and its
# pattern, in the order ruamel.yaml tries them (the first that matches wins).
_DIGITS = "0123456789"
_PLAIN = [
    ("tag:yaml.org,2002:bool", "tTfF", r"true|True|TRUE|false|False|FALSE"),
    ("tag:yaml.org,2002:float", "-+." + _DIGITS,
     r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
     r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)"
     r"|\.(?:nan|NaN|NAN)"),
    ("tag:yaml.org,2002:int", "-+" + _DIGITS,
     r"[-+]?0b[01_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+"),
    ("tag:yaml.org,2002:merge", "<", r"<<"),
    ("tag:yaml.org,2002:null", "~nN", r"~|null|Null|NULL"),
    ("tag:yaml.org,2002:timestamp", _DIGITS,
     r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
     r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
     r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?"),
    ("tag:yaml.org,2002:value", "=", r"="),
]
# `$` as ruamel.yaml writes it (it also matches before a final line break, which no plain scalar has)
_BY_FIRST: dict[str, list] = {}
for _tag, _first, _pattern in _PLAIN:
    _compiled = re.compile(f"(?:{_pattern})$")
    for _char in _first:
        _BY_FIRST.setdefault(_char, []).append((_tag, _compiled))
# What the two read differently, found by tests/test_source_fast.py's fuzzing: ruamel.yaml
# refuses tabs and a comment straight after a block scalar's header in places libyaml allows;
# libyaml starts a node at its anchor or tag, ruamel.yaml at its value; libyaml breaks lines at
# NEL, U+2028 and U+2029 (YAML 1.1) and reads a byte-order mark inside the text; a `%YAML`
# directive may ask for YAML 1.1's rules. libyaml also ends a last line itself (its end marks differ).
_ELSEWHERE = re.compile("\t|[&!]|[|>][-+0-9]*#|[\x85\u2028\u2029\ufeff]|^%YAML", re.M)


def resolve_plain(value: str) -> str:
    """The tag of a plain (unquoted, untagged) scalar."""
    if not value:
        return "tag:yaml.org,2002:null"
    for tag, pattern in _BY_FIRST.get(value[0], ()):
        if pattern.match(value):
            return tag
    return STR


def available() -> bool:
    """Whether this PyYAML has libyaml (the wheels for every common platform do)."""
    try:
        from yaml._yaml import CParser
    except ImportError:
        return False
    return CParser is not None


def _loader(text: str):
    """A libyaml parser whose resolver is `resolve_plain`, or None without libyaml."""
    try:
        from yaml._yaml import CParser
        from yaml.nodes import MappingNode, ScalarNode, SequenceNode
        from yaml.resolver import BaseResolver
    except ImportError:  # no PyYAML, or a PyYAML built without libyaml
        return None

    class Loader(CParser, BaseResolver):
        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            BaseResolver.__init__(self)

        def resolve(self, kind, value, implicit):
            if kind is ScalarNode:
                return resolve_plain(value) if implicit[0] else STR
            return SEQ if kind is SequenceNode else MAP if kind is MappingNode else STR

    return Loader(text)


class Unsure(Exception):
    """Raised by `source` at a node whose marks libyaml and ruamel.yaml place differently (an
    empty scalar: libyaml marks the end of the indicator before it, ruamel.yaml the next token)."""


def compose_all(text: str) -> list | None:
    """Every document's root node, or None where `source.parse` must read the text with ruamel.yaml."""
    if _ELSEWHERE.search(text) or not text.endswith(("\n", "\r")):
        return None
    try:
        loader = _loader(text)
        if loader is None:
            return None
        nodes = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    except Exception:  # libyaml refused it: ruamel.yaml says why, at the place, in stackc's words
        return None
