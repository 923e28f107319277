"""What a target is: a name, what it can express, and a translation of the IR into files.

Whether a deployment can be expressed is decided in one pass over the target's
`Capabilities` and the IR's features, here, so targets do not each re-check; a feature a
target lacks is an SC6xx diagnostic pointing at the spec, never a silent drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from stackc.diagnostics import Diagnostic
from stackc.ir import Deployment, Feature

Artifacts = dict[str, bytes]  # relative path -> file content


ROUTING_MODES = ("round-robin", "least-load", "session", "prefix-aware")


@dataclass(frozen=True)
class Capabilities:
    autoscaling: bool = False  # replica ranges and `autoscale`
    multi_node: bool = False
    gpu_vendors: tuple[str, ...] = ("nvidia",)
    kv_tiers: bool = False
    routing: tuple[str, ...] = ("round-robin", "least-load")
    overflow: bool = False


class Target:
    name: str = ""
    description: str = ""
    capabilities: Capabilities = Capabilities()

    def check(self, dep: Deployment) -> list[Diagnostic]:
        return [d for f in dep.features if (d := self._unsupported(f)) is not None]

    def _unsupported(self, f: Feature) -> Optional[Diagnostic]:
        c, t = self.capabilities, f"`{self.name}`"
        if f.name in ("replica-range", "autoscale") and not c.autoscaling:
            what = "a replica range" if f.name == "replica-range" else "`autoscale`"
            return Diagnostic.error(
                "SC601", f"the {t} target runs a fixed number of replicas; model `{f.detail}` asks for {what}",
                f.span, label="not expressible here",
                help="set `replicas: N` in this environment; autoscaling lives in the helm target")
        if f.name == "multi-node" and not c.multi_node:
            help_text = ("set `hardware.nodes: 1` in this environment: the models fit on one node"
                         if "fits-one-node" in f.detail else "split the stack into one spec per host")
            return Diagnostic.error(
                "SC603", f"the {t} target runs on one host; this stack spans {f.detail.split(';')[0]} nodes",
                f.span, label="more than one node", help=help_text)
        if f.name.startswith("gpu-"):
            vendor = f.name[4:]
            if vendor not in c.gpu_vendors:
                if vendor == "apple":
                    return Diagnostic.error(
                        "SC602", f"no target emits for Apple Silicon yet (`{f.detail}` is for planning only)",
                        f.span, label="planning only", help="use `stackc plan` for this stack; deploy it on an NVIDIA or AMD GPU")
                return Diagnostic.error(
                    "SC602", f"the {t} target does not run on {vendor.upper()} GPUs", f.span,
                    label="not expressible here", help=f"use a target that does: {', '.join(_targets_for(vendor))}")
        if f.name == "kv-tiers" and not c.kv_tiers:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet express KV-cache tiers ({f.detail})", f.span,
                label="not emitted yet", help="remove `tiering.kv_cache` for this target")
        if f.name.startswith("routing-") and f.detail not in c.routing:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet express `routing: {f.detail}`", f.span,
                label="not emitted yet", help=f"use `routing: {' or '.join(c.routing)}` for this target")
        if f.name == "overflow" and not c.overflow:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet express overflow to hosted APIs ({f.detail})", f.span,
                label="not emitted yet", help="remove `tiering.overflow` for this target")
        return None

    def emit(self, dep: Deployment, spec_name: str) -> Artifacts:
        raise NotImplementedError


def _targets_for(vendor: str) -> list[str]:
    from . import REGISTRY

    return [name for name, t in REGISTRY.items() if vendor in t.capabilities.gpu_vendors] or ["none yet"]
