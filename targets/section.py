"""A target's own part of the spec: a top-level key (`kubernetes:`), the pydantic model that
checks it, and the line the schema describes it with. A target states its section as `SECTION`
in the `options` module of its package; the registry finds it there without importing the
target's translation, so `validate` and the schema stay light."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """A target's own top-level key in a spec, and the model that checks it."""

    name: str  # the top-level key in a stack spec
    model: type  # a pydantic model on `stackc.spec_values._Strict`: unknown keys are errors
    description: str  # the schema's description of the key
