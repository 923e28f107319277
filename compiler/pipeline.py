"""The compiler pipeline: load, check, overlay, resolve, plan, lower, emit.

Each stage returns its result and its diagnostics; a stage runs only when the stages before it
found no errors, so one mistake is reported once, where it was made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from . import catalog as catalog_mod
from . import check, credentials, environments, source
from .diagnostics import Diagnostic, has_errors
from .located import SpanIndex, YMap, to_data
from .source import Document, SourceError


@dataclass
class Unit:
    """One deployable variant of the stack: the base document or one environment."""

    environment: Optional[str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    stack: object = None
    resolved: object = None
    plan: object = None
    deployment: object = None

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


@dataclass
class Session:
    """One spec file through the pipeline: what was read, what it was checked against, and what was found."""

    path: str
    display: str
    document: Optional[Document]
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    model: Optional[type] = None  # what the file was checked against: `Stack`, or `StackFile` for a whole file

    @property
    def spec_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    @property
    def environment_names(self) -> list[str]:
        return environments.environment_names(self.document.root) if self.document else []


def open_spec(path: str, display: Optional[str] = None) -> Session:
    """Read and check the file as written (syntax and schema of the whole document)."""
    from .spec import FILE_ONLY, Stack

    display = display or path
    try:
        doc = source.load(path, display)
    except SourceError as exc:
        sources = {}
        try:
            with open(path, "rb") as handle:
                sources[display] = handle.read(source.MAX_FILE_BYTES).decode("utf-8", "replace")
        except OSError:
            pass
        return Session(path, display, None, [exc.diagnostic], sources)
    data = to_data(doc.root)
    # a file without `defaults:` or `environments:` is one stack: checked as that, the file's own
    # models are never built; any error is worded against the whole file, as always
    whole = not isinstance(data, dict) or any(k in data for k in FILE_ONLY)
    model: type = Stack
    _, diags = check.validate(Stack, data, doc.spans) if not whole else (None, None)
    if diags is None or diags:
        from .spec_file import StackFile

        model = StackFile
        _, diags = check.validate(StackFile, data, doc.spans)
    reported = {d.span for d in diags if d.code == "SC701"}
    diags += [d for d in credentials.scan(doc.root) if d.span not in reported]
    return Session(path, display, doc, diags, {display: doc.text}, model)


def analyse(session: Session, env: Optional[str], upto: str = "lower") -> Unit:
    """Run one environment through overlay, schema, resolution, planning and lowering."""
    from . import planner, resolve
    from .spec import Stack

    unit = Unit(env)
    doc = session.document
    if doc is None or has_errors(session.diagnostics):
        return unit
    merged = doc.root
    if env is not None:
        merged, diags = environments.apply_environment(doc.root, env)
        unit.diagnostics += diags
    else:
        merged = YMap(doc.root.span, {k: e for k, e in doc.root.entries.items() if k != "environments"})
    merged = environments.apply_defaults(merged)
    spans = SpanIndex(merged)
    # each environment, merged, is one stack: checked with the validator the file was already
    # checked with (a `StackFile` is a `Stack` whose file-only keys are empty), so a file with
    # environments builds one validator, not two
    stack, diags = check.validate(session.model or Stack, to_data(merged), spans)
    unit.diagnostics += diags
    if stack is None or not unit.ok:
        return unit
    unit.stack = stack
    cat = catalog_mod.load()
    resolved, diags = resolve.resolve(stack, env, spans, cat, session.spec_dir, session.sources)
    unit.diagnostics += diags + resolve.lint(stack, resolve.Where(spans))
    if resolved is None or not unit.ok:
        return unit
    unit.resolved = resolved
    plan, diags = planner.plan(resolved, cat)
    unit.diagnostics += diags
    unit.plan = plan
    if not unit.ok or upto == "plan":
        return unit
    from .lower import lower  # only a build needs it: `validate` stops at the plan

    unit.deployment = lower(plan)
    return unit


def units(session: Session, env: Optional[str], all_envs: bool, include_base: bool) -> list[Optional[str]]:
    """Which variants a command covers: `--env E`, every environment, or the base."""
    if env is not None:
        return [env]
    names = session.environment_names
    if all_envs and names:
        return ([None] if include_base else []) + names
    return [None]


def emit(unit: Unit, target_name: str, spec_name: str) -> tuple[Optional[dict[str, bytes]], list[Diagnostic]]:
    from stackc.targets import get

    target = get(target_name)
    dep = target.prepare(unit.deployment, unit.plan)
    diags = sorted(target.check(dep), key=Diagnostic.sort_key)
    if has_errors(diags):
        from stackc.targets.base import WHEN_BUILT

        if any(d.is_error and d.code not in WHEN_BUILT for d in diags):  # refused for another reason: nothing is
            diags = [d for d in diags if d.code not in WHEN_BUILT]      # built, so nothing is published either
        return None, diags
    return target.emit(dep, spec_name), diags
