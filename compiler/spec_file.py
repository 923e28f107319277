"""The spec file's own models: `defaults:` for every model, `environments:` overlays, and the
file itself (`StackFile`). The partial models are generated from the full ones in spec.py, so
they never drift from them: every field optional, nested mappings partial too (they merge key by
key). This module is imported only for a file that has `defaults:` or `environments:`, for a
file with an error (its diagnostics are worded against the whole file), and for the schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import BaseModel, Field, create_model

from .spec import (Gateway, Hardware, Model, Observability, ReplicaRange, SecretDecl, SecretRef, Stack, Tiering,
                   target_sections)
from .spec_values import EnvName, SecretName, _Strict

_partials: dict[type, type] = {}


def _partial(cls: type[BaseModel], *, keep_required: tuple[str, ...] = (), drop: tuple[str, ...] = (),
             name: str | None = None, extra: dict | None = None) -> type[BaseModel]:
    key = (cls, keep_required, drop, name)
    if key in _partials:
        return _partials[key]
    fields: dict[str, Any] = {}
    for field_name, info in cls.model_fields.items():
        if field_name in drop:
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in (SecretRef, ReplicaRange):
            annotation = _partial(annotation)
        elif _optional_model(annotation):
            annotation = _partial(_optional_model(annotation))
        meta = [m for m in info.metadata]
        ann = Annotated[tuple([annotation] + meta)] if meta else annotation  # type: ignore[misc]
        if field_name in keep_required:
            fields[field_name] = (ann, Field(description=info.description))
        else:
            fields[field_name] = (Optional[ann], Field(None, description=info.description))
    for field_name, spec in (extra or {}).items():
        fields[field_name] = spec
    model = create_model(name or f"{cls.__name__}Overlay", __base__=_Strict, __doc__=cls.__doc__, **fields)
    _partials[key] = model
    return model


def _optional_model(annotation: Any) -> type[BaseModel] | None:
    args = getattr(annotation, "__args__", None)
    if not args or type(None) not in args:
        return None
    others = [a for a in args if a is not type(None)]
    if len(others) == 1 and isinstance(others[0], type) and issubclass(others[0], BaseModel):
        if others[0] in (SecretRef, Tiering, ReplicaRange):
            return None
        return others[0]
    return None


ModelDefaults = _partial(Model, drop=("name", "model", "served_names", "enabled"), name="ModelDefaults")
ModelDefaults.__doc__ = "Values for every model field a model leaves unset."
ModelOverlay = _partial(Model, keep_required=("name",), name="ModelOverlay")
ModelOverlay.__doc__ = (
    "An environment's change to one model, matched by `name`: fields merge into the base entry; "
    "changing `engine` or `model` replaces the entry; `enabled: false` removes it."
)
HardwareOverlay = _partial(Hardware, name="HardwareOverlay")
GatewayOverlay = _partial(Gateway, name="GatewayOverlay")
ObservabilityOverlay = _partial(Observability, name="ObservabilityOverlay")
TieringOverlay = _partial(Tiering, name="TieringOverlay")

class _EnvironmentCore(_Strict):
    """Changes merged onto the base document for one environment (see Overlays in the docs)."""

    defaults: Optional[ModelDefaults] = Field(None, description="Changes to `defaults:`.")  # type: ignore[valid-type]
    hardware: Optional[HardwareOverlay] = Field(None, description="Changes to `hardware:`.")  # type: ignore[valid-type]
    models: Optional[list[ModelOverlay]] = Field(None, description="Changes to models, matched by `name`.")  # type: ignore[valid-type]
    tiering: Optional[TieringOverlay] = Field(None, description="Changes to `tiering:`; `null` removes it.")  # type: ignore[valid-type]
    gateway: Optional[GatewayOverlay] = Field(None, description="Changes to `gateway:`.")  # type: ignore[valid-type]
    observability: Optional[ObservabilityOverlay] = Field(None, description="Changes to `observability:`.")  # type: ignore[valid-type]


def _section_overlays() -> dict[str, Any]:
    """Each target's section as a partial overlay, described as the core sections are."""
    return {key: (annotation, Field(None, description=f"Changes to `{key}:`."))
            for key, (annotation, _) in target_sections(_EnvironmentCore, _partial).items()}


EnvironmentOverlay = create_model(
    "EnvironmentOverlay", __base__=_EnvironmentCore, __module__=__name__, __doc__=_EnvironmentCore.__doc__,
    **_section_overlays(),
    secrets=(Optional[dict[SecretName, Optional[SecretDecl]]], Field(None, description="More declared secrets.")))


class StackFile(Stack):
    """A stack spec file: the base stack, `defaults:` for its models, and environment overlays."""

    defaults: Optional[ModelDefaults] = Field(  # type: ignore[valid-type]
        None, description="Values for every model field a model (after overlays) leaves unset."
    )
    environments: dict[EnvName, EnvironmentOverlay] = Field(
        default_factory=dict, description="Overlays merged onto the base document, one per environment."
    )


def json_schema() -> dict:
    schema = StackFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://stackc.dev/schemas/stack.schema.json"
    schema["title"] = "stackc stack spec v1"
    return schema
