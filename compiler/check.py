"""Schema checking: pydantic does the validating, this module says it like a compiler.

Pydantic reports errors against a `loc` path; the source tree knows where every path was
written. Each error becomes one diagnostic on the exact span (or the nearest parent for a
missing key) with a stable code and, for misspelled keys and values, a "did you mean".
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from pydantic import BaseModel, ValidationError

from .check_paths import data_path, describe, dotted, model_at_path, value_at
from .diagnostics import Diagnostic
from .located import Located, SpanIndex


def did_you_mean(word: str, options: Sequence[str]) -> str | None:
    if not isinstance(word, str):
        return None
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    import difflib  # only a spec with a misspelt name pays for it

    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def hint(word: str, options: Sequence[str], *, what: str = "") -> str | None:
    close = did_you_mean(word, options)
    if close is not None and close != word:
        return f"did you mean `{close}`?"
    return None


_TYPE_WORDS = {
    "int": "an integer", "float": "a number", "bool": "`true` or `false`", "string": "text",
    "list": "a list", "dict": "a mapping", "model": "a mapping", "model_attributes": "a mapping",
}


def _expected_type(err_type: str) -> str | None:
    for prefix, word in _TYPE_WORDS.items():
        if err_type.startswith(prefix + "_") or err_type == prefix:
            return word
    return None


def _found(value: Any) -> str:
    from .spec_values import _kind

    return _kind(value)


def translate(exc: ValidationError, data: Any, spans: SpanIndex, root: type[BaseModel],
              base_path: tuple = ()) -> list[Diagnostic]:
    """Turn every pydantic error into a located diagnostic."""
    out: list[Diagnostic] = []
    seen = set()
    for err in exc.errors(include_url=False):
        d = _one(err, data, spans, root, base_path)
        key = (d.code, d.span, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _located(spans: SpanIndex, path: tuple) -> tuple[Located, bool]:
    exact = spans.exact(path)
    if exact is not None:
        return exact, True
    loc, _ = spans.nearest(path)
    return loc, False


def _one(err: dict, data: Any, spans: SpanIndex, root: type[BaseModel], base_path: tuple) -> Diagnostic:
    loc = err["loc"]
    etype = err["type"]
    ctx = err.get("ctx") or {}
    path = data_path(data, loc)
    full = base_path + path
    value = value_at(data, path)
    where = describe(full, _root_data(data, base_path))
    last = path[-1] if path else None
    located, exact = _located(spans, full)

    if "[key]" in loc:
        span = located.key or located.value
        return Diagnostic.error(
            "SC207" if "secrets" in path or "environments" in path else "SC203",
            f"`{last}` is not a valid name {where}",
            span,
            label="this name",
            help=_pattern_help(ctx.get("pattern", ""), path),
        )
    if etype == "extra_forbidden":
        cls = model_at_path(root, data, path[:-1])
        options = sorted(cls.model_fields) if cls else []
        return Diagnostic.error(
            "SC201",
            f"unknown key `{last}` {where}",
            located.key or located.value,
            label="not a known key",
            help=hint(str(last), options) or (f"the keys here are {_list(options)}" if options
                                              else "remove it; `stackc schema` lists the keys of every mapping"),
        )
    if etype in ("missing", "union_tag_not_found"):
        key = last if etype == "missing" else ctx.get("discriminator", "").strip("'")
        parent_path = path[:-1] if etype == "missing" else path
        parent_loc, _ = spans.nearest(base_path + parent_path)
        cls = model_at_path(root, data, parent_path)
        desc = ""
        if cls and key in cls.model_fields and cls.model_fields[key].description:
            desc = cls.model_fields[key].description
        if key == "stack" and not parent_path:
            return Diagnostic.error(
                "SC208", "missing `stack:` format version", parent_loc.key or _first_line(parent_loc),
                help="add `stack: v1` as the first line",
            )
        what = describe(base_path + parent_path + ("x",), _root_data(data, base_path))
        return Diagnostic.error(
            "SC202",
            f"missing required key `{key}` {what}",
            parent_loc.key or _first_line(parent_loc),
            label=f"`{key}` is missing here",
            help=f"add `{key}:`" + (f" ({_sentence(desc)})" if desc else ""),
        )
    if etype == "literal_error" or etype == "union_tag_invalid" or etype == "enum":
        expected = re.findall(r"'([^']*)'", ctx.get("expected") or ctx.get("expected_tags") or "")
        shown = value if etype != "union_tag_invalid" else ctx.get("tag")
        if last == "stack" and len(path) == 1:
            return Diagnostic.error(
                "SC208", f"unsupported stack format `{shown}`", located.value,
                label="this version", help="this stackc reads `stack: v1`",
            )
        span = located.value
        if etype == "union_tag_invalid":
            tag_loc = spans.exact(full + ("tier",))
            span = tag_loc.value if tag_loc else span
        return Diagnostic.error(
            "SC204",
            f"`{shown}` is not a valid `{last if etype != 'union_tag_invalid' else 'tier'}` {where}",
            span,
            label="not one of the accepted values",
            help=hint(str(shown), expected) or f"expected {_list(expected)}",
        )
    if etype == "stackc_size":
        return Diagnostic.error("SC205", f"{err['msg']} ({dotted(path)})", located.value,
                                label="not a size", help="sizes are `<number><unit>` with a unit of KiB, MiB, GiB, TiB, KB, MB, GB or TB, e.g. `64GiB`")
    if etype == "stackc_rate":
        return Diagnostic.error("SC205", f"{err['msg']} ({dotted(path)})", located.value,
                                label="not a rate", help="rates are a size per second, e.g. `500MB/s` or `2GiB/s`")
    if etype == "stackc_secret_literal":
        return Diagnostic.error(
            "SC701", f"a secret value is written inline at `{dotted(path)}`", located.value,
            label="this looks like a secret value",
            help="declare the name under `secrets:` and write `{secret: NAME}` here; set the value at deploy time",
        )
    if etype in ("stackc_dns_label", "stackc_unsafe_text"):
        return Diagnostic.error("SC207", err["msg"], located.value, label="not a valid name",
                                help=_name_help(etype, last))
    if etype == "string_pattern_mismatch":
        return Diagnostic.error(
            "SC207", f"`{value}` is not a valid `{last}` {where}", located.value,
            label="does not match the expected form", help=_pattern_help(ctx.get("pattern", ""), path),
        )
    if etype in ("greater_than_equal", "greater_than", "less_than_equal", "less_than",
                 "too_short", "too_long", "string_too_long", "string_too_short"):
        bound = {
            "greater_than_equal": f"at least {ctx.get('ge')}", "greater_than": f"more than {ctx.get('gt')}",
            "less_than_equal": f"at most {ctx.get('le')}", "less_than": f"less than {ctx.get('lt')}",
            "too_short": f"at least {ctx.get('min_length')} item{'s' if ctx.get('min_length') != 1 else ''}",
            "too_long": f"at most {ctx.get('max_length')} items",
            "string_too_long": f"at most {ctx.get('max_length')} characters",
            "string_too_short": f"at least {ctx.get('min_length')} characters",
        }[etype]
        subject = _subject(path)
        shown = f"`{_text(value)}`" if not isinstance(value, (list, dict)) else f"`{subject}`"
        return Diagnostic.error("SC206", f"{shown} is out of range {where}: `{subject}` must be {bound}",
                                located.primary if isinstance(value, (list, dict)) else located.value,
                                label=f"must be {bound}", help=_range_help(root, data, path, etype, ctx, bound))
    word = _expected_type(etype)
    if etype.startswith("stackc_") or word:
        msg = err["msg"] if etype.startswith("stackc_") else f"expected {word}, found {_found(value)}"
        return Diagnostic.error(
            "SC203", f"wrong type for `{_subject(path)}` {where}: {msg}",
            located.primary if isinstance(value, (dict, list)) else located.value,
            label=f"expected {word}" if word else "wrong type",
            help=_type_help(root, data, path, word),
        )
    return Diagnostic.error("SC203", f"invalid value for `{last}` {where}: {err['msg'].lower()}",
                            located.value, help="see `stackc schema` for the accepted values")


def _sentence(desc: str) -> str:
    """A field description inside a help line: first letter lowered unless it is an acronym."""
    desc = desc.rstrip(".")
    if len(desc) > 1 and any(c.isupper() for c in desc.split()[0][1:]):  # an acronym or a name: LoRA, KV
        return desc
    return desc[0].lower() + desc[1:]


def _root_data(data: Any, base_path: tuple) -> Any:
    if not base_path:
        return data
    wrapped: Any = data
    for part in reversed(base_path):
        wrapped = {part: wrapped} if isinstance(part, str) else [wrapped]
    return wrapped


def _first_line(loc: Located):
    s = loc.value
    from .diagnostics import Span

    return Span(s.file, s.line, s.col, s.line, s.col + 1)


def _list(options: Sequence[str]) -> str:
    quoted = [f"`{o}`" for o in options]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _name_help(etype: str, field: Any) -> str:
    if etype == "stackc_dns_label":
        return "names become container, unit and Kubernetes names: e.g. `chat`, `embed-small`"
    return "write the identifier as it appears at its source, without spaces or shell characters"


def _pattern_help(pattern: str, path: Sequence) -> str:
    if "A-Z][A-Z0-9_" in pattern:
        return "secret names are environment variable names: `A-Z`, `0-9` and `_`, e.g. `HF_TOKEN`"
    if pattern.startswith("^/"):
        return "write an absolute directory path, e.g. `/var/cache/stack/kv`"
    if "https?" in pattern:
        return "write the full base URL, e.g. `https://api.example.com/v1`"
    return "see `stackc schema` for the accepted form"


def _text(value: Any) -> str:
    """A value as a message shows it; an integer too long for Python to print is described instead."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3000:
        return f"a number of {value.bit_length():,} bits"
    return str(value)


def _subject(path: Sequence) -> str:
    """What an error is about: a field's name, or `field[i]` for an item of a list."""
    if len(path) >= 2 and isinstance(path[-1], int):
        return f"{path[-2]}[{path[-1]}]"
    return str(path[-1]) if path else "the document"


def _field_of(root: type[BaseModel], data: Any, path: Sequence) -> tuple[str, str, int] | None:
    """The nearest named field at or above `path`, its description, and how far above it is
    (0: the value itself; 1: an item of a list or a value of a mapping the field holds)."""
    for k in range(len(path), 0, -1):
        part = path[k - 1]
        if not isinstance(part, str):
            continue
        cls = model_at_path(root, data, path[: k - 1])
        if cls is not None and part in cls.model_fields:
            return part, cls.model_fields[part].description or "", len(path) - k
    return None


_RANGE_HELP = {
    "replicas": "a model runs at least one replica: `enabled: false` leaves it out (an environment can set "
                "it too), and `replicas: {min: 1, max: N}` autoscales where the target can (helm)",
    "min": "`min` is the fewest replicas, `max` the most; the helm target autoscales between them",
    "max": "`max` is the most replicas, at least 1 and at least `min`",
    "gpus": "`gpus` is the GPUs one replica takes (tensor parallel N), or `auto` for the fewest that fit",
}


def _range_help(root: type[BaseModel], data: Any, path: Sequence, etype: str, ctx: dict, bound: str) -> str:
    field = path[-1] if path else None
    if field == "models" and etype == "too_short":
        return "add at least one model under `models:`"
    if field == "gpu_memory_utilization":
        return "a share of each GPU between 0 and 1, e.g. `0.9`"
    if field in _RANGE_HELP and "models" in path:
        return _RANGE_HELP[str(field)]
    found = _field_of(root, data, path)
    if etype in ("too_short", "too_long"):
        what = f"`{found[0]}`" if found else "the list"
        return f"give {what} {bound}" + (f" ({_sentence(found[1])})" if found and found[1] else "")
    if etype in ("string_too_long", "string_too_short"):
        return f"write {bound}" + (f": `{found[0]}` is {_sentence(found[1])}" if found and found[1] else "")
    if found and found[1]:
        return f"write a value {bound}; `{found[0]}`: {_sentence(found[1])}"
    return f"write a value {bound}; `stackc schema` gives each field's range"


def _type_help(root: type[BaseModel], data: Any, path: Sequence, word: str | None) -> str:
    found = _field_of(root, data, path)
    if found and found[1]:
        name, desc, depth = found
        if depth == 0:
            return f"`{name}`: {_sentence(desc)}"
        kind = "item" if isinstance(path[len(path) - depth], int) else "value"
        each = f"each {kind} of `{name}` is {word}" if word and depth == 1 else f"`{name}` holds values of other types"
        return f"{each}; `{name}`: {_sentence(desc)}"
    return (f"write {word} here; " if word else "") + "`stackc schema` describes every field and its type"


def validate(cls: type[BaseModel], data: Any, spans: SpanIndex, base_path: tuple = ()):
    """Validate `data` as `cls`; return (object or None, diagnostics)."""
    try:
        return cls.model_validate(data), []
    except ValidationError as exc:
        return None, translate(exc, data, spans, cls, base_path)
