"""Environment overlays and `defaults:`, applied to the located tree so positions survive.

Rules (SPEC.md, "Overlays"): mappings merge key by key; `null` deletes a key; lists replace the
base list, except `models`, whose entries merge by `name`. An overlay entry that changes a
model's `engine` or `model` replaces the entry; `enabled: false` removes a model; an entry for
a name the base lacks must be a complete model. Then `defaults:` fills unset model fields.
"""

from __future__ import annotations

from .check import did_you_mean
from .diagnostics import Diagnostic
from .located import YEntry, YMap, YNode, YScalar, YSeq

REPLACING_FIELDS = ("engine", "model")


def _is_null(node: YNode) -> bool:
    return isinstance(node, YScalar) and node.value is None


def merge(base: YNode, overlay: YNode) -> YNode:
    """Overlay `overlay` onto `base` (both mappings merge; anything else replaces)."""
    if not (isinstance(base, YMap) and isinstance(overlay, YMap)):
        return overlay
    result = YMap(base.span, dict(base.entries))
    for key, entry in overlay.entries.items():
        if _is_null(entry.value):
            result.entries.pop(key, None)
        elif key in result.entries and isinstance(entry.value, YMap) and isinstance(result.entries[key].value, YMap):
            result.entries[key] = YEntry(key, entry.key_span, merge(result.entries[key].value, entry.value))
        else:
            result.entries[key] = entry
    return result


def _name(node: YNode) -> str | None:
    if isinstance(node, YMap):
        value = node.get("name")
        if isinstance(value, YScalar) and isinstance(value.value, str):
            return value.value
    return None


def _scalar(node: YMap, key: str):
    value = node.get(key)
    return value.value if isinstance(value, YScalar) else value


def merge_models(base: YSeq, overlay: YSeq, env: str) -> tuple[YSeq, list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    items: list[YNode] = list(base.items)
    index = {_name(item): i for i, item in enumerate(items) if _name(item)}
    base_names = [n for n in index if n]
    for entry in overlay.items:
        name = _name(entry)
        if name is None or not isinstance(entry, YMap):
            items.append(entry)  # schema checking reports the missing name
            continue
        if name in index:
            i = index[name]
            current = items[i]
            assert isinstance(current, YMap)
            replaces = any(
                k in entry.entries and not _is_null(entry.entries[k].value)
                and _scalar(entry, k) != _scalar(current, k)
                for k in REPLACING_FIELDS
            )
            if replaces and "model" not in entry.entries:
                changed = next(k for k in REPLACING_FIELDS if k in entry.entries)
                diagnostics.append(
                    Diagnostic.error(
                        "SC305",
                        f"environment `{env}` changes the `{changed}` of model `{name}`, which replaces the whole "
                        "entry, but the new entry has no `model`",
                        entry.entries[changed].key_span,
                        label=f"a new `{changed}` starts a new entry",
                        help="write the complete model in this environment (at least `model:`); no field of the "
                             "base entry carries over to another engine",
                    )
                )
                continue
            items[i] = _strip_nulls(entry) if replaces else merge(current, entry)
        else:
            if "model" not in entry.entries and _scalar(entry, "enabled") is not False:
                close = did_you_mean(name, base_names)
                diagnostics.append(
                    Diagnostic.error(
                        "SC305",
                        f"environment `{env}` changes model `{name}`, which the base document does not define",
                        entry.entries["name"].value.span,
                        label="no base model has this name",
                        help=(f"did you mean `{close}`?" if close else
                              "a new model in an environment needs at least `name` and `model`"),
                    )
                )
                continue
            items.append(_strip_nulls(entry))
            index[name] = len(items) - 1
    return YSeq(base.span, items), diagnostics


def _strip_nulls(node: YMap) -> YMap:
    return YMap(node.span, {k: e for k, e in node.entries.items() if not _is_null(e.value)})


def apply_environment(root: YMap, env: str) -> tuple[YMap, list[Diagnostic]]:
    """The base document with environment `env` merged onto it (without `environments:`)."""
    envs = root.get("environments")
    overlay = envs.get(env) if isinstance(envs, YMap) else None
    base = YMap(root.span, {k: e for k, e in root.entries.items() if k != "environments"})
    if not isinstance(overlay, YMap):
        return base, []
    diagnostics: list[Diagnostic] = []
    result = YMap(base.span, dict(base.entries))
    for key, entry in overlay.entries.items():
        if key == "models" and isinstance(entry.value, YSeq):
            current = result.get("models")
            if isinstance(current, YSeq):
                merged, diags = merge_models(current, entry.value, env)
                diagnostics += diags
                result.entries["models"] = YEntry("models", result.entries["models"].key_span, merged)
                continue
        if _is_null(entry.value):
            result.entries.pop(key, None)
        elif key in result.entries:
            result.entries[key] = YEntry(key, entry.key_span, merge(result.entries[key].value, entry.value))
        else:
            result.entries[key] = entry
    return result, diagnostics


def apply_defaults(root: YMap) -> YMap:
    """Fill every model field left unset from `defaults:`, then drop `defaults:`."""
    defaults = root.get("defaults")
    result = YMap(root.span, {k: e for k, e in root.entries.items() if k != "defaults"})
    models = result.get("models")
    if not isinstance(defaults, YMap) or not isinstance(models, YSeq):
        return result
    filled = []
    for item in models.items:
        if isinstance(item, YMap):
            item = YMap(item.span, dict(item.entries))
            for key, entry in defaults.entries.items():
                if key not in item.entries and not _is_null(entry.value):
                    item.entries[key] = entry
        filled.append(item)
    result.entries["models"] = YEntry("models", result.entries["models"].key_span, YSeq(models.span, filled))
    return result


def environment_names(root: YMap) -> list[str]:
    envs = root.get("environments")
    return list(envs.entries) if isinstance(envs, YMap) else []
