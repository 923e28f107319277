"""Where a model's loaded weights come from, and what format their name says they are in.

`weights:` (or `model:` when `weights` is unset) may be a Hugging Face repo id, `hf://org/repo`,
`hf.co/org/repo-GGUF:Q4_K_M`, an Ollama tag, `s3://bucket/path` or a local path. Engines turn an
Artifact into their model argument and their download step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional

Kind = Literal["hf", "ollama", "s3", "local"]

_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_GGUF_QUANT = re.compile(r"(?i)(?:^|[-_.:])(q4_k_m|q5_k_m|q8_0|q4_0|q4_k_s|q5_k_s|q6_k|f16|bf16|iq4_xs)(?:$|[-_.])")


@dataclass(frozen=True)
class Artifact:
    """What a model's weights are and where they come from (a Hub repo, an Ollama tag, a bucket, a path)."""

    kind: Kind
    ref: str  # repo id, Ollama tag, s3 URL or path, as written (minus the scheme for hf)
    gguf_quant: Optional[str] = None  # `Q4_K_M` from `repo:Q4_K_M`
    weight_files: str = "safetensors"  # a repo that publishes only PyTorch `.bin` weights says `bin`

    @property
    def display(self) -> str:
        return self.ref + (f":{self.gguf_quant}" if self.gguf_quant else "")


def parse(text: str, registry_tags: bool = False) -> Optional[Artifact]:
    """Classify a `model`/`weights` reference; None if it is none of the known forms.
    `registry_tags`: the engine pulls models by tag from its own registry (Ollama)."""
    if text.startswith(("./", "../", "/", "~/")):
        return Artifact("local", text)
    if text.startswith("s3://"):
        return Artifact("s3", text)
    if text.startswith(("hf://", "hf.co/", "huggingface.co/")):
        rest = text.split("://", 1)[1] if text.startswith("hf://") else text.split("/", 1)[1]
        repo, _, quant = rest.partition(":")
        return Artifact("hf", repo, quant or None) if _HF_REPO.fullmatch(repo) else None
    if registry_tags:
        return Artifact("ollama", text)  # `qwen2.5:7b-instruct-q4_K_M`, `namespace/model:tag`
    repo, _, quant = text.partition(":")
    if _HF_REPO.fullmatch(repo):
        return Artifact("hf", repo, quant or None)
    return None


_FORMAT_PATTERNS = [
    ("gguf", re.compile(r"(?i)gguf")),
    ("mxfp4", re.compile(r"(?i)mxfp4")),
    ("nvfp4", re.compile(r"(?i)nvfp4|[-_]fp4")),
    ("fp8", re.compile(r"(?i)fp8")),
    ("awq", re.compile(r"(?i)awq")),
    ("gptq", re.compile(r"(?i)gptq")),
    ("int8-w8a8", re.compile(r"(?i)w8a8|int8")),
    ("bnb-nf4", re.compile(r"(?i)bnb|nf4")),
]


def gguf_quantization(name: str) -> Optional[str]:
    match = _GGUF_QUANT.search(name)
    if not match:
        return None
    q = match.group(1).lower()
    return {"q4_k_m": "gguf-q4_k_m", "q5_k_m": "gguf-q5_k_m", "q8_0": "gguf-q8_0",
            "f16": "none", "bf16": "none"}.get(q, "gguf-other")


def detected_format(artifact: Artifact) -> Optional[str]:
    """The quantization the artifact's name announces, if it announces one."""
    if artifact.kind == "ollama":
        # Ollama's library tags are GGUF; a tag that names no quantization is Q4_K_M there
        return gguf_quantization(artifact.ref.partition(":")[2]) or "gguf-q4_k_m"
    name = artifact.ref.rsplit("/", 1)[-1]
    if artifact.gguf_quant:
        return gguf_quantization(artifact.gguf_quant) or "gguf-other"
    for fmt, pattern in _FORMAT_PATTERNS:
        if pattern.search(name):
            if fmt == "gguf":
                return gguf_quantization(name) or "gguf-other"
            return fmt
    return None
