"""Literal credentials anywhere in a spec: token shapes, URLs that carry a credential, `key=value` blobs.

Fields that hold a secret are typed (`{secret: NAME}`, SC701), but a credential can ride in any
string: a served name, a revision, a URL in `engine_args`, a `--flag=value` key, a JSON blob, an
environment's override. Whatever the string, it would be written into every generated file, so
every key and scalar of the document is scanned once, where it was written, before anything else
looks at it. The shapes are the public prefixes of the common issuers; the rules are narrow on
purpose, so that a model name or a path never trips them.
"""

from __future__ import annotations

import re
from typing import Iterator, Optional

from .diagnostics import Diagnostic, Span
from .located import YMap, YNode, YScalar, YSeq

_B = r"(?<![A-Za-z0-9])"
TOKEN_SHAPES = [  # (what it is, pattern)
    ("an OpenAI or Anthropic API key", _B + r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"),
    ("a Hugging Face token", _B + r"hf_[A-Za-z0-9]{20,}"),
    ("a GitHub token", _B + r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    ("an AWS access key id", _B + r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"),
    ("a Slack token", _B + r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    ("a GitLab token", _B + r"glpat-[A-Za-z0-9_-]{20,}"),
    ("a Google API key", _B + r"AIza[0-9A-Za-z_-]{35}"),
    ("a Stripe key", _B + r"[rs]k_live_[0-9A-Za-z]{16,}"),
    ("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY"),
]
_TOKENS = [(what, re.compile(pattern)) for what, pattern in TOKEN_SHAPES]

_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://([^/?#\s@]+)@")
_BARE_USERINFO = re.compile(r"(?<![\w.%:/-])[\w.%-]+:[^\s/@:]+@[\w-]+(?:\.[\w-]+)+")  # `user:pass@ghcr.io/x`
_SECRET_PARAM = re.compile(
    r"(?i)[?&;](api[_-]?key|apikey|key|token|access[_-]?token|auth|auth[_-]?token|password|passwd|pwd|secret|"
    r"client[_-]?secret|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|"
    r"x-goog-credential)=([^&#\s]+)")
_SECRET_PAIR = re.compile(
    r"(?i)[\"']?([a-z0-9_.-]*(?:secret|password|passwd|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
    r"credentials?))[\"']?\s*[:=]\s*[\"']?([^\s\"',}&]+)")
_REFERENCE = re.compile(r"\$\{?[A-Za-z_]|os\.environ/|\{secret")  # a value that names a secret, not one


def finding(text: str) -> Optional[tuple[str, str]]:
    """(code, what was found) for a credential in `text`, or None."""
    for what, pattern in _TOKENS:
        if pattern.search(text):
            return "SC707", what
    if _USERINFO.search(text) or _BARE_USERINFO.search(text):
        return "SC706", "a user name or password in a URL"
    param = _SECRET_PARAM.search(text)
    if param and not _REFERENCE.match(param.group(2)):
        return "SC706", f"a `{param.group(1)}` query parameter"
    if any(c in text for c in "{=&"):  # a JSON blob, a `--flag=value`, a query string
        for pair in _SECRET_PAIR.finditer(text):
            value = pair.group(2)
            if not _REFERENCE.match(value) and value.lower() not in ("true", "false", "null", "none") \
                    and not re.fullmatch(r"[0-9.]+", value):
                return "SC707", f"a value for `{pair.group(1).lstrip('-')}`"
    return None


def _strings(node: YNode) -> Iterator[tuple[str, Span]]:
    if isinstance(node, YMap):
        for key, entry in node.entries.items():
            yield key, entry.key_span
            yield from _strings(entry.value)
    elif isinstance(node, YSeq):
        for item in node.items:
            yield from _strings(item)
    elif isinstance(node, YScalar) and isinstance(node.value, str):
        yield node.value, node.span


def scan(root: YNode) -> list[Diagnostic]:
    """One SC706 or SC707 for each key or value of the document that carries a credential."""
    diags = []
    for text, span in _strings(root):
        found = finding(text)
        if found is None:
            continue
        code, what = found
        if code == "SC706":
            diags.append(Diagnostic.error(
                code, f"{what} would be written into the generated files", span, label="a credential in a URL",
                help="remove it from the URL and give it as a declared secret (`secrets:` and `{secret: NAME}`, "
                     "or the engine's environment variable)"))
        else:
            diags.append(Diagnostic.error(
                code, f"this looks like {what}, which would be written into the generated files", span,
                label="a credential as a literal",
                help="declare the name under `secrets:` and reference it with `{secret: NAME}`; set the value at "
                     "deploy time"))
    return diags
