"""Resolution: from names in the spec to the facts they stand for (SC3xx).

Catalog models and GPUs, hardware tier presets, engine images and their versions, the loaded
artifact and its format, declared secrets, unique names. Everything later stages need to
know about a model that is not a planning decision is settled here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Optional

from . import artifacts, engines, images
from .artifacts import Artifact
from .catalog import Catalog, GpuInfo, ModelInfo
from .catalog.local import ConfigError, from_architecture, from_config
from .check import did_you_mean
from .diagnostics import Diagnostic, Span
from .engines.base import Engine, Version, parse_version, version_text
from .located import SpanIndex
from .spec import Model, SecretRef, Stack

TIERS = {
    "workstation": {"gpu": "rtx-4090", "gpus_per_node": 1, "nodes": 1, "provider": "on-prem"},
    "single-node-prod": {"gpu": "h100-sxm", "gpus_per_node": 8, "nodes": 1},
    "multi-node": {"gpu": "h100-sxm", "gpus_per_node": 8, "nodes": 2},
}


class Where:
    """Spans for paths of the resolved document."""

    def __init__(self, spans: SpanIndex):
        self.spans = spans

    def __call__(self, *path, key: bool = False) -> Span:
        located, found = self.spans.nearest(path)
        if key and located.key is not None:
            return located.key
        if found != tuple(path) and located.key is not None:
            return located.key
        return located.primary if not key else (located.key or located.value)

    def value(self, *path) -> Span:
        located, _ = self.spans.nearest(path)
        return located.value


@dataclass
class ResolvedModel:
    """A model of the spec with its facts, engine, image and weights looked up."""

    spec: Model
    index: int  # position in the document's `models:` list (for spans)
    info: ModelInfo
    engine: Engine
    image: str
    version: Version
    artifact: Artifact
    loaded_format: Optional[str]  # what the artifact's name says it is
    quantization: str
    draft: Optional[ModelInfo] = None
    kv_mechanism: Optional[str] = None  # how the engine runs the stack's KV-cache tiers, when it has any

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def engine_version(self) -> str:
        return self.engine.version_label(self.version)


@dataclass
class ResolvedStack:
    """A spec with its environment applied and its hardware looked up: what the planner plans."""

    spec: Stack
    environment: Optional[str]
    gpu: GpuInfo
    gpus_per_node: int
    nodes: int
    provider: str
    region: Optional[str]
    spot: bool
    memory_per_node: Optional[int] = None  # bytes, as the spec gives it (on-prem)
    disk_read: Optional[int] = None  # bytes/s the model cache reads at, as the spec gives it
    models: list[ResolvedModel] = field(default_factory=list)
    where: Optional[Where] = None


def resolve(stack: Stack, env: Optional[str], spans: SpanIndex, catalog: Catalog, spec_dir: str,
            sources: dict[str, str]) -> tuple[Optional[ResolvedStack], list[Diagnostic]]:
    where = Where(spans)
    diags: list[Diagnostic] = []
    hw = stack.hardware
    preset = TIERS.get(hw.tier or "", {})
    gpu_id = hw.gpu or preset.get("gpu")
    gpus_per_node = hw.gpus_per_node or preset.get("gpus_per_node") or 1
    nodes = hw.nodes or preset.get("nodes") or 1
    provider = hw.provider or preset.get("provider") or "on-prem"

    gpu = None
    if gpu_id is None:
        diags.append(Diagnostic.error(
            "SC202", "missing required key `gpu` in `hardware`", where("hardware", key=True),
            label="no GPU given", help="set `gpu:` to a catalog id (`stackc catalog gpus`) or `tier:` to a preset"))
    else:
        gpu = catalog.gpu(gpu_id)
        if gpu is None:
            diags.append(Diagnostic.error(
                "SC302", f"unknown GPU `{gpu_id}`", where("hardware", "gpu") if hw.gpu else where("hardware", "tier"),
                label="not in the catalog",
                help=_closest(gpu_id, [g.id for g in catalog.gpus], "`stackc catalog gpus` lists the GPU ids")))
    if provider != "on-prem" and not hw.region:
        diags.append(Diagnostic.error(
            "SC308", f"`hardware.provider: {provider}` needs a `region`", where("hardware", "provider"),
            label="a cloud provider", help=f"add `region:` (e.g. `{_example_region(provider)}`)"))

    seen: dict[str, int] = {}
    for i, m in enumerate(stack.models):
        if m.name in seen:
            diags.append(Diagnostic.error(
                "SC304", f"two models are named `{m.name}`", where("models", i, "name"),
                label="second model with this name",
                help=f"model names are unique: rename one (the first is `models[{seen[m.name]}]`)"))
        else:
            seen[m.name] = i
    diags += _check_served_names(stack, where)
    diags += _check_secrets(stack, where)
    diags += _check_overflow_names(stack, where)
    diags += _check_tiering(stack, where)

    if stack.models and not any(m.enabled for m in stack.models):
        # a stack whose every model is left out would deploy a gateway with nothing behind it
        last = len(stack.models) - 1
        diags.append(Diagnostic.error(
            "SC206", "every model has `enabled: false`: the stack would serve nothing" + (f" in environment `{env}`" if env else ""),
            where("models", last, "enabled", key=True), label="the last model left out here",
            help="leave at least one model enabled; a variant without models is not a stack to build"))
    resolved = ResolvedStack(stack, env, gpu, gpus_per_node, nodes, provider, hw.region, bool(hw.spot), hw.memory_per_node, hw.disk_read, where=where)  # type: ignore[arg-type]
    for i, m in enumerate(stack.models):
        if not m.enabled:
            continue
        rm, model_diags = _resolve_model(m, i, gpu, catalog, spec_dir, where, sources, stack)
        diags += model_diags
        if rm is not None:
            resolved.models.append(rm)
    if gpu is None or any(d.is_error for d in diags):
        return (resolved if gpu is not None else None), diags
    return resolved, diags


def _example_region(provider: str) -> str:
    return {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}.get(provider, "us-east-1")


def _closest(word: str, options: list[str], fallback: str) -> str:
    close = did_you_mean(word, options)
    return f"did you mean `{close}`?" if close else fallback


def _resolve_model(m: Model, i: int, gpu: Optional[GpuInfo], catalog: Catalog, spec_dir: str, where: Where,
                   sources: dict[str, str], stack: Stack) -> tuple[Optional[ResolvedModel], list[Diagnostic]]:
    diags: list[Diagnostic] = []
    engine = engines.get(m.engine)
    info = _model_info(m, i, catalog, spec_dir, where, sources, diags)

    # image and version
    vendor = gpu.vendor if gpu else "nvidia"
    if m.image:
        image = m.image
        tag = images.parse(image).tag
        version = parse_version(tag) if tag else None
        default = engine.default_image(vendor) or engine.default_image("nvidia")
        if tag in ("", "latest"):
            diags.append(Diagnostic.error(
                "SC310", f"image `{image}` is not pinned to a version", where("models", i, "image"),
                label="no version tag" if not tag else "`latest` moves",
                help=f"pin a release tag, e.g. `{default.ref}`" if default else "pin a release tag"))
            version = None
        elif version is None:
            diags.append(Diagnostic.warning(
                "SC310", f"cannot read a {engine.title} version from the tag `{tag}`", where("models", i, "image"),
                label="no version in this tag",
                help=f"planning for the pinned default {default.tag if default else ''}; use a release tag like "
                     f"`{default.ref}`" if default else "use a release tag"))
        if version is None:
            version = parse_version(default.tag) if default else (0,)
    else:
        default = engine.default_image(vendor)
        if default is None:
            diags.append(Diagnostic.error(
                "SC505", f"stackc has no pinned {engine.title} image for {vendor.upper() if vendor == 'amd' else vendor} GPUs",
                where("models", i, "engine"), label=f"{engine.title} here",
                help="give a ROCm build of the engine with `image:`, or pick an engine with one (vllm, llama.cpp, ollama)"))
            default = engine.default_image("nvidia")
        image = default.ref if default else ""
        version = parse_version(default.tag) if default else (0,)

    tiers = tuple(t.tier for t in stack.tiering.kv_cache) if stack.tiering and m.task == "generate" else ()
    mechanism = None
    if tiers:
        mechanism = _resolve_tiers(m, i, engine, version, vendor, tiers, where, diags)

    # the loaded artifact: `weights`, else the model itself (a catalog id stands for its HF repo)
    source = m.weights or (info.hf_repo if info is not None and m.model == info.id else m.model)
    artifact = artifacts.parse(source, engine.registry_tags)
    if engine.weights_required and m.weights is None and artifact is not None:
        what, fix = engine.weights_required
        diags.append(Diagnostic.error(
            "SC509", f"model `{m.name}` runs on {engine.title} but names no {what} to load",
            where("models", i, "model"), label=f"this describes the architecture, not an {engine.title} artifact",
            help=fix))
    if artifact is None:
        diags.append(Diagnostic.error(
            "SC306", f"`{source}` is not a weights reference stackc understands",
            where("models", i, "weights" if m.weights else "model"), label="not a known form",
            help="use a Hugging Face repo id (`org/name`), `hf.co/org/name-GGUF:Q4_K_M`, an Ollama tag, "
                 "`s3://bucket/path` or a local path"))
        artifact = Artifact("hf", source)
    if artifact.kind == "local" and m.weights:
        path = os.path.normpath(os.path.join(spec_dir, os.path.expanduser(artifact.ref)))
        if not os.path.exists(path):
            diags.append(Diagnostic.error(
                "SC306", f"`{artifact.ref}` does not exist", where("models", i, "weights"),
                label="no such file or directory", help="local paths are relative to the spec file"))
    if info is not None and artifact.kind == "hf" and artifact.ref == info.hf_repo and info.weight_files != "safetensors":
        artifact = replace(artifact, weight_files=info.weight_files)
    loaded = artifacts.detected_format(artifact)
    if loaded is None and m.weights is None and info is not None:
        loaded = {"fp8": "fp8", "mxfp4": "mxfp4"}.get(info.native_dtype, "none")
    if loaded == "gguf-other":
        diags.append(Diagnostic.error(
            "SC509", f"`{artifact.display}` names a GGUF quantization stackc cannot size",
            where("models", i, "weights"), label="not Q4_K_M, Q5_K_M or Q8_0",
            help="use the Q4_K_M, Q5_K_M or Q8_0 file of this repo"))
        loaded = None
    quantization = m.quantization or (loaded if loaded and loaded != "gguf-other" else "none")

    draft = None
    if m.speculative:
        draft = catalog.model(m.speculative.draft)
        if draft is None:
            diags.append(Diagnostic.error(
                "SC301", f"unknown draft model `{m.speculative.draft}`", where("models", i, "speculative", "draft"),
                label="not in the catalog",
                help=_closest(m.speculative.draft, catalog.model_ids(), "`stackc catalog models` lists the known models")))
    if info is None:
        return None, diags
    return ResolvedModel(m, i, info, engine, image, version, artifact, loaded, quantization, draft, mechanism), diags


def _resolve_tiers(m: Model, i: int, engine: Engine, version: Version, vendor: str, tiers: tuple[str, ...],
                   where: Where, diags: list[Diagnostic]) -> Optional[str]:
    """How the engine runs the stack's KV-cache tiers (SC512 where it cannot)."""
    mechanism, why = engine.kv_tier_mechanism(version, tiers, vendor)
    if mechanism is None:
        tiers_text = ", ".join(f"`{t}`" for t in tiers)
        diags.append(Diagnostic.error(
            "SC512", f"`{m.name}` cannot run the KV-cache tiers {tiers_text}: {why}", where("tiering", "kv_cache", key=True),
            label=f"asked of every generative model, `{m.name}` on {engine.title} {version_text(version)} here",
            help=engine.kv_tier_help(version, tiers, vendor)))
    return mechanism


def _model_info(m: Model, i: int, catalog: Catalog, spec_dir: str, where: Where, sources: dict[str, str],
                diags: list[Diagnostic]) -> Optional[ModelInfo]:
    if m.architecture is not None:
        return from_architecture(m.architecture, m.model)
    if m.model.startswith(("./", "../", "/", "~/")):
        directory = os.path.normpath(os.path.join(spec_dir, os.path.expanduser(m.model)))
        config = os.path.join(directory, "config.json")
        display = os.path.join(m.model, "config.json")
        try:
            with open(config, encoding="utf-8") as handle:
                text = handle.read(1_000_000)
        except (OSError, UnicodeDecodeError):
            diags.append(Diagnostic.error(
                "SC306", f"`{display}` cannot be read", where("models", i, "model"),
                label="no config.json here",
                help="point `model:` at a directory holding the model's Hugging Face `config.json`, "
                     "or describe it with `architecture:`"))
            return None
        try:
            return from_config(text, m.model)
        except ConfigError as exc:
            sources[display] = text
            diags.append(Diagnostic.error(
                "SC306", str(exc), Span(display, exc.line, exc.col, exc.line, exc.col + 1),
                help="fix the file, or describe the model with `architecture:` in the spec"))
            return None
    info = catalog.model(m.model)
    if info is None:
        diags.append(Diagnostic.error(
            "SC301", f"unknown model `{m.model}`", where("models", i, "model"),
            label="not in the catalog",
            help=_closest(m.model, catalog.model_ids(), "") + (" " if did_you_mean(m.model, catalog.model_ids()) else "")
            + "describe it with `architecture:` (layers, hidden_size, heads, kv_heads, vocab_size, params, "
              "max_context) or use `model: ./dir` with its config.json"))
    return info


def _check_served_names(stack: Stack, where: Where) -> list[Diagnostic]:
    diags = []
    owner: dict[str, str] = {}
    for i, m in enumerate(stack.models):
        if not m.enabled:
            continue
        names = [("name", m.name, ("models", i, "name"))]
        names += [("served_names", n, ("models", i, "served_names", j)) for j, n in enumerate(m.served_names)]
        names += [("adapters", a.name, ("models", i, "adapters", j, "name")) for j, a in enumerate(m.adapters)]
        for _, name, path in names:
            if name in owner and owner[name] != m.name:
                diags.append(Diagnostic.error(
                    "SC311", f"the name `{name}` is served by both `{owner[name]}` and `{m.name}`", where(*path),
                    label="already taken", help="every served name, adapter name and model name must be unique"))
            owner.setdefault(name, m.name)
    return diags


def secret_refs(stack: Stack) -> list[tuple[tuple, str]]:
    """Every `{secret: NAME}` in the resolved stack, with its path."""
    refs: list[tuple[tuple, str]] = []
    if stack.gateway and stack.gateway.api_key:
        refs.append((("gateway", "api_key", "secret"), stack.gateway.api_key.secret))
    if stack.tiering:
        for j, tier in enumerate(stack.tiering.kv_cache):
            url = getattr(tier, "url", None)
            if isinstance(url, SecretRef):
                refs.append((("tiering", "kv_cache", j, "url", "secret"), url.secret))
        for j, o in enumerate(stack.tiering.overflow):
            if o.api_key:
                refs.append((("tiering", "overflow", j, "api_key", "secret"), o.api_key.secret))
    return refs


def _check_secrets(stack: Stack, where: Where) -> list[Diagnostic]:
    diags = []
    declared = list(stack.secrets)
    for path, name in secret_refs(stack):
        if name not in stack.secrets:
            diags.append(Diagnostic.error(
                "SC303", f"secret `{name}` is not declared", where(*path), label="used here",
                help=(_closest(name, declared, "") + " " if did_you_mean(name, declared) else "")
                + f"declare it under `secrets:` (`{name}: {{}}`)"))
    return diags


def _check_tiering(stack: Stack, where: Where) -> list[Diagnostic]:
    """What the gateway (LiteLLM) cannot do exactly as the spec says."""
    tiering = stack.tiering
    out: list[Diagnostic] = []
    if tiering is None:
        return out
    if tiering.routing == "session" and not tiering.session_key.lower().startswith("x-"):
        out.append(Diagnostic.error(
            "SC515", f"the gateway passes only `x-` headers on to the router: `{tiering.session_key}` would never "
            "reach it", where("tiering", "session_key"), label="not an `x-` header",
            help=f"`session_key: x-{tiering.session_key}`, and have clients send that header"))
    for j, o in enumerate(tiering.overflow):
        if "saturated" in o.when and "error" not in o.when:
            out.append(Diagnostic.warning(
                "SC514", f"the gateway overflows on local errors as it does on saturation: `{o.name}` also takes "
                "requests a local model failed", where("tiering", "overflow", j, "when"),
                label="errors go there too", help="add `error` to `when` to say so, or accept the difference"))
    return out


def _check_overflow_names(stack: Stack, where: Where) -> list[Diagnostic]:
    diags = []
    if stack.tiering:
        seen = set()
        for j, o in enumerate(stack.tiering.overflow):
            if o.name in seen:
                diags.append(Diagnostic.error(
                    "SC312", f"two overflow destinations are named `{o.name}`", where("tiering", "overflow", j, "name"),
                    label="second destination with this name", help="give each destination its own name"))
            seen.add(o.name)
    return diags


def lint(stack: Stack, where: Where) -> list[Diagnostic]:
    """Safety warnings (SC7xx) that do not stop a build."""
    import re

    diags = []
    if stack.gateway is None or stack.gateway.api_key is None:
        span = where("gateway", "api_key") if stack.gateway else where("models", key=True)
        diags.append(Diagnostic.warning(
            "SC704", "the gateway accepts requests without a key", where("gateway", key=True) if stack.gateway else span,
            label="anyone who reaches the port can use the models",
            help="declare a secret (`STACK_API_KEY: {}` under `secrets:`) and set `gateway: {api_key: {secret: STACK_API_KEY}}`"))
    tiering = stack.tiering
    if tiering is not None and tiering.routing == "session":
        for j, o in enumerate(tiering.overflow):
            diags.append(Diagnostic.warning(
                "SC705", f"with `routing: session` the gateway passes clients' `x-` headers to every upstream, "
                f"`{o.name}` at {o.base_url.split('/')[2]} included", where("tiering", "overflow", j, "name"),
                label="a hosted API outside the stack",
                help="clients must send the gateway key as `Authorization: Bearer`, never as `x-litellm-api-key`, "
                     "and put nothing private in `x-` headers"))
    for i, m in enumerate(stack.models):
        if m.revision and not re.fullmatch(r"[0-9a-f]{40}", m.revision):
            diags.append(Diagnostic.warning(
                "SC703", f"revision `{m.revision}` of `{m.name}` is not a commit: the weights can change under the same spec",
                where("models", i, "revision"), label="a branch or tag moves",
                help="pin the 40-character commit hash from the model's Hugging Face history"))
    return diags
