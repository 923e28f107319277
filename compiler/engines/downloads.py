"""How an engine's weights reach the model cache: the download job's command (the Hugging Face
CLI with include and exclude patterns, Python's hub client, the AWS CLI for S3), the
directories each artifact lands in, and where a LoRA adapter is found. An engine's `download`
picks one; the lowering runs it as a one-shot service before the replicas start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .. import images
from ..artifacts import Artifact
from ..ir_engine import EngineConfig
from .flags import normalise_flag


@dataclass(frozen=True)
class DownloadStep:
    """The one-shot job that fetches a model's weights before its engine starts."""

    image: str
    command: tuple[str, ...]
    entrypoint: Optional[tuple[str, ...]] = None
    env: tuple[tuple[str, str], ...] = ()
    needs_hf_token: bool = True


HF_INCLUDE = ("*.json", "*.safetensors", "*.jinja", "*.model", "tokenizer.model.v*", "*.tiktoken", "*.txt")
HF_EXCLUDE = ("original/*", "metal/*", "onnx/*", "openvino/*", "consolidated*")


def hf_patterns(ec: EngineConfig, artifact: Optional[Artifact] = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(include, exclude) for a checkpoint the engine loads: PyTorch `.bin` weights only for a
    repo that has nothing else, the repo's Python only when the engine is told to run it."""
    include = list(HF_INCLUDE)
    if artifact is not None and artifact.weight_files == "bin":
        include.append("*.bin")
    if any(normalise_flag(str(k)) == "trust-remote-code" and v not in (False, None) for k, v in ec.extra_args):
        include.append("*.py")
    return tuple(include), HF_EXCLUDE


def hf_download_command(repo: str, revision: Optional[str], cache: str, include: tuple[str, ...] = (),
                        cli: tuple[str, ...] = ("hf",), exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    cmd = [*cli, "download", repo]
    if revision:
        cmd += ["--revision", revision]
    for pattern in include:
        cmd += ["--include", pattern]
    for pattern in exclude:
        cmd += ["--exclude", pattern]
    return tuple(cmd)


def hub_cache_fixups(repo: str, revision: Optional[str]) -> list[str]:
    """Shell lines that let an engine find a filtered download offline. huggingface_hub 1.22 and
    later record the repo's whole file list (`trees/`) and refuse an offline snapshot that lacks
    a listed file its caller's patterns match (vLLM asks for every `*.safetensors` outside
    `original/**/*`, so gpt-oss's `original/model.safetensors` would be missing): the listing
    goes. A download by commit writes no `refs/main`, which lookups without a revision need."""
    folder = '"$HF_HOME/hub/models--' + repo.replace("/", "--") + '"'
    lines = [f"rm -rf {folder}/trees"]
    if revision:
        lines.append(f"mkdir -p {folder}/refs && printf %s {_sh(revision)} > {folder}/refs/main")
    return lines


def default_download(ec: EngineConfig, artifact: Artifact, image: str, hf_cli: tuple[str, ...]) -> Optional[DownloadStep]:
    """Fetch into the shared cache with the engine's own image (it already has the HF CLI):
    only what the engine loads, then the cache fix-ups an offline start needs."""
    if artifact.kind == "local":
        return None
    if artifact.kind == "s3":
        return s3_download(artifact, ec)
    if artifact.gguf_quant:
        include, exclude = (f"*{any_case(artifact.gguf_quant)}*.gguf",), ()
    else:
        include, exclude = hf_patterns(ec, artifact)
    steps: list[str] = [_line(hf_download_command(artifact.ref, ec.revision, ec.cache_dir, include, hf_cli, exclude)),
                        *hub_cache_fixups(artifact.ref, ec.revision)]
    adapter_include, adapter_exclude = hf_patterns(ec)
    extra = [_adapter_repo(source) for _, source in ec.adapters] + ([ec.speculative[0]] if ec.speculative else [])
    for repo in filter(None, extra):
        steps.append(_line(hf_download_command(repo, None, ec.cache_dir, adapter_include, hf_cli, adapter_exclude)))
        steps += hub_cache_fixups(repo, None)
    script = "set -e; " + "; ".join(steps)
    return DownloadStep(image, ("-c", script), entrypoint=("/bin/sh",), env=(("HF_HOME", f"{ec.cache_dir}/hf"),))


def _line(words: tuple[str, ...]) -> str:
    return " ".join(_sh(w) for w in words)


def any_case(text: str) -> str:
    """A glob that matches `text` in any case (`hf --include` and `find -path` are case-sensitive,
    and GGUF repos name files `Q4_K_M` or `q4_k_m`)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in text)


def python_hf_download(ec: EngineConfig, artifact: Artifact) -> DownloadStep:
    """For engines whose image has no Python: a pinned Python image installs the `hf` CLI."""
    include = (f"*{any_case(artifact.gguf_quant)}*.gguf",) if artifact.gguf_quant else ()
    local = f"{ec.cache_dir}/{_slug(artifact.ref)}"
    cmd = list(hf_download_command(artifact.ref, ec.revision, ec.cache_dir, include)) + ["--local-dir", local]
    script = (
        f"pip install --quiet --no-cache-dir --disable-pip-version-check huggingface_hub=={images.HUGGINGFACE_HUB_VERSION}"
        f" && {' '.join(_sh(a) for a in cmd)}"
    )
    return DownloadStep(images.PYTHON.ref, ("-c", script), entrypoint=("/bin/sh",),
                        env=(("HF_HOME", f"{ec.cache_dir}/hf"),))


def s3_download(artifact: Artifact, ec: EngineConfig) -> DownloadStep:
    target = f"{ec.cache_dir}/{_slug(artifact.ref)}"
    return DownloadStep(images.AWS_CLI.ref, ("s3", "sync", artifact.ref, target), entrypoint=None, needs_hf_token=False)


def _adapter_repo(source: str) -> Optional[str]:
    if source.startswith("hf://"):
        return source[5:]
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", source):
        return source
    return None


def adapter_path(source: str, cache_dir: str) -> str:
    """Where an adapter is inside the engine: its HF repo id (resolved offline from the cache) or path."""
    return _adapter_repo(source) or source


def _slug(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", ref.split("://", 1)[-1]).strip("-")


def artifact_dir(artifact: Artifact, cache_dir: str) -> str:
    """The directory an artifact is downloaded into when an engine wants a path, not a repo id."""
    return f"{cache_dir}/{_slug(artifact.ref)}"


def local_dir(ec: EngineConfig, artifact: Artifact) -> str:
    return artifact_dir(artifact, ec.cache_dir)


_SAFE_SH = re.compile(r"^[A-Za-z0-9._/=:@+,%-]+$")


def _sh(word: str) -> str:
    """Quote one word for /bin/sh (values were validated to a safe alphabet; quote anyway)."""
    if _SAFE_SH.fullmatch(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


sh_quote = _sh
