"""What a target is: a name, what it can express, and a translation of the IR into files.

Whether a deployment can be expressed is decided in one pass over the target's
`Capabilities` and the IR's features, here, so targets do not each re-check; a feature a
target lacks is an SC6xx diagnostic pointing at the spec, never a silent drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from stackc.diagnostics import Diagnostic
from stackc.ir import Deployment, Feature

from .registry import targets_that
from .section import Section

if TYPE_CHECKING:
    from stackc.plan import Plan

Artifacts = dict[str, bytes]  # relative path -> file content


ROUTING_MODES = ("round-robin", "least-load", "session", "prefix-aware")


@dataclass(frozen=True)
class Capabilities:
    autoscaling: bool = False  # replica ranges and `autoscale`
    scale_to_zero: bool = False  # something holds requests and wakes a model with no replica left
    multi_node: bool = False
    gpu_vendors: tuple[str, ...] = ("nvidia",)
    kv_tiers: bool = False
    routing: tuple[str, ...] = ("round-robin", "least-load")
    overflow: bool = False
    engines: Optional[tuple[str, ...]] = None  # None: every engine stackc knows
    weights: Optional[tuple[str, ...]] = None  # weight sources it can fetch; None: all
    replica_spans_nodes: bool = True  # a single replica across nodes (pipeline parallel)
    gpu_sharing: bool = True  # several models' processes on one GPU, each with its memory share
    providers: Optional[tuple[str, ...]] = None  # clouds it provisions; None: it provisions nothing
    publishes: bool = False  # the gateway's port is opened on the machines' own interfaces (not a cluster's)
    tls_edge: bool = False  # it runs the edge that terminates `gateway.tls`
    public_address: bool = False  # what it publishes gets an address on the internet (a cloud machine's public IP)


def listed(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


WHEN_BUILT = frozenset({"SC716"})  # about what a build would open: dropped when another error refuses it


class Target:
    """A back end. A subclass states its name, its capabilities and `emit`. What only it needs
    goes in its own folder: its spec section (`options.SECTION`, also set as `section`), its own
    lowering (`prepare`: the section and the plan into a `Deployment` subclass of its own, with
    any findings as features), and a check of its format (a naming rule) in `check`, after
    `super().check(dep)`."""

    name: str = ""
    description: str = ""
    capabilities: Capabilities = Capabilities()
    section: Optional[Section] = None  # the spec's top-level key only this target reads

    def prepare(self, dep: Deployment, plan: "Plan") -> Deployment:
        """The target's own lowering, run only when it builds; by default, nothing to add."""
        return dep

    def check(self, dep: Deployment) -> list[Diagnostic]:
        return [d for f in dep.features if (d := self._unsupported(f)) is not None]

    def _unsupported(self, f: Feature) -> Optional[Diagnostic]:
        """The capabilities every target states, against the deployment's features."""
        c, t = self.capabilities, f"`{self.name}`"
        model = f.models[0] if f.models else ""
        if f.name in ("replica-range", "autoscale") and not c.autoscaling:
            what = "a replica range" if f.name == "replica-range" else "`autoscale`"
            return Diagnostic.error(
                "SC601", f"the {t} target runs a fixed number of replicas; model `{model}` asks for {what}",
                f.span, label="not expressible here",
                help=f"set `replicas: N` in this environment; autoscaling lives in {_the_targets(lambda c: c.autoscaling)}")
        if f.name == "scale-to-zero" and c.autoscaling and not c.scale_to_zero:
            return Diagnostic.error(
                "SC611", f"model `{model}` may scale to zero pods, and nothing on the {t} target would wake it",
                f.span, label="no replica left to report load",
                help="set `replicas.min: 1`: the autoscaler reads the engine's own metrics, which vanish with the last "
                     "pod, and no component holds requests while one starts")
        if f.name == "multi-node" and not c.multi_node:
            help_text = ("set `hardware.nodes: 1` in this environment: the models fit on one node"
                         if f.fits else "split the stack into one spec per host")
            return Diagnostic.error(
                "SC603", f"the {t} target runs on one host; this stack spans {f.nodes} nodes",
                f.span, label="more than one node", help=help_text)
        if f.name == "gpu" and f.vendor not in c.gpu_vendors:
            if f.vendor == "apple":
                return Diagnostic.error(
                    "SC602", f"no target emits for Apple Silicon yet (`{f.detail}` is for planning only)",
                    f.span, label="planning only", help="use `stackc plan` for this stack; deploy it on an NVIDIA or AMD GPU")
            return Diagnostic.error(
                "SC602", f"the {t} target does not run on {f.vendor.upper()} GPUs", f.span,
                label="not expressible here",
                help=f"use a target that does: {', '.join(targets_that(lambda c: f.vendor in c.gpu_vendors)) or 'none yet'}")
        if f.name == "kv-tiers" and not c.kv_tiers:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet express KV-cache tiers ({f.detail})", f.span,
                label="not emitted yet", help="remove `tiering.kv_cache` for this target")
        if f.name == "routing" and f.detail not in c.routing:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet express `routing: {f.detail}`", f.span,
                label="not emitted yet", help=f"use `routing: {' or '.join(c.routing)}` for this target")
        if f.name == "engine" and c.engines is not None and f.detail not in c.engines:
            return Diagnostic.error(
                "SC605", f"the {t} target cannot run the `{f.detail}` engine (model `{model}`)", f.span,
                label="not runnable here",
                help=f"set `engine: {' or '.join(c.engines)}` for this model, or build it with "
                     f"{_the_targets(lambda c: c.engines is None or f.detail in c.engines)}")
        if f.name == "weights" and c.weights is not None and f.detail not in c.weights:
            return Diagnostic.error(
                "SC606", f"the {t} target cannot fetch `{f.detail}` weights (model `{model}`)", f.span,
                label="not reachable from here",
                help="publish the weights to a Hugging Face repository and use `hf:` weights")
        if f.name == "replica-spans-nodes" and not c.replica_spans_nodes:
            return Diagnostic.error(
                "SC608", f"one replica of model `{model}` needs more GPUs than a node has; the {t} target runs each replica on one node",
                f.span, label="spans nodes", help="choose a node type with enough GPUs for one replica, or quantize the model to fit one node")
        if f.name == "shared-gpu" and not c.gpu_sharing:
            if f.fits:
                return Diagnostic.warning(
                    "SC609", f"models {listed(f.models)} share one GPU in the plan; the {t} target gives each pod whole GPUs", f.span,
                    label="one GPU each here", help="nothing to do: the node still has a GPU for each (their memory shares stay as planned)")
            return Diagnostic.error(
                "SC609", f"models {listed(f.models)} share one GPU in the plan; the {t} target gives each pod whole GPUs and they no longer fit",
                f.span, label="one GPU each here", help="add a GPU (`hardware.gpus_per_node`) or drop one of these models for this target")
        if f.name == "tls-edge" and not c.tls_edge:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet terminate TLS (`gateway.tls`)", f.span,
                label="not emitted yet",
                help=f"terminate TLS in front of it and remove `gateway.tls` for this target; "
                     f"{_the_targets(lambda c: c.tls_edge)} runs the edge itself")
        if f.name == "plain-edge" and c.publishes:
            where_to = ("add `gateway.tls: {}` and give the stack a certificate and key where the target's "
                        "docs say (docs/spec.md#gateway-tls)") if c.tls_edge else \
                "put a TLS-terminating proxy or load balancer in front of it, and open the port to it only"
            if c.public_address:  # on the internet, in clear: not built
                return Diagnostic.error(
                    "SC716", f"the {t} target publishes {f.detail} on a public address in plain HTTP: the API key "
                             "and every prompt would cross the internet in clear", f.span, label="no TLS", help=where_to)
            return Diagnostic.warning(
                "SC716", f"the {t} target publishes {f.detail} in plain HTTP: the API key and every prompt "
                         "cross the network in clear", f.span, label="no TLS", help=where_to)
        if f.name == "overflow" and not c.overflow:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet express overflow to hosted APIs ({f.detail})", f.span,
                label="not emitted yet", help="remove `tiering.overflow` for this target")
        return None

    def emit(self, dep: Deployment, spec_name: str) -> Artifacts:
        raise NotImplementedError


def _the_targets(can) -> str:
    names = targets_that(can)
    if not names:
        return "no target yet"
    return f"the {names[0]} target" if len(names) == 1 else f"the {', '.join(names[:-1])} or {names[-1]} target"
