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
    scale_to_zero: bool = False  # something holds requests and wakes a model with no replica left
    multi_node: bool = False
    gpu_vendors: tuple[str, ...] = ("nvidia",)
    kv_tiers: bool = False
    routing: tuple[str, ...] = ("round-robin", "least-load")
    overflow: bool = False
    engines: Optional[tuple[str, ...]] = None  # None: every engine stackc knows
    weights: Optional[tuple[str, ...]] = None  # weight sources it can fetch; None: all
    replica_spans_nodes: bool = True  # a single replica across nodes (pipeline parallel)
    kubernetes: bool = False  # reads `kubernetes:` (GPU node labels, claims, chart-derived names)
    gpu_sharing: bool = True  # several models' processes on one GPU, each with its memory share
    hosts: bool = False  # reads `systemd:` (node addresses for a stack over several hosts)
    providers: Optional[tuple[str, ...]] = None  # clouds it provisions; None: it provisions nothing


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
        if f.name == "scale-to-zero" and c.autoscaling and not c.scale_to_zero:
            return Diagnostic.error(
                "SC611", f"model `{f.detail}` may scale to zero pods, and nothing on the {t} target would wake it",
                f.span, label="no replica left to report load",
                help="set `replicas.min: 1`: the autoscaler reads the engine's own metrics, which vanish with the last "
                     "pod, and no component holds requests while one starts")
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
        if f.name.startswith("engine-") and c.engines is not None and f.name[7:] not in c.engines:
            return Diagnostic.error(
                "SC605", f"the {t} target cannot run the `{f.name[7:]}` engine (model `{f.detail}`)", f.span,
                label="not runnable here",
                help=f"set `engine: {' or '.join(c.engines)}` for this model, or build it with the compose target")
        if f.name.startswith("weights-") and c.weights is not None and f.name[8:] not in c.weights:
            return Diagnostic.error(
                "SC606", f"the {t} target cannot fetch `{f.name[8:]}` weights (model `{f.detail}`)", f.span,
                label="not reachable from here",
                help="publish the weights to a Hugging Face repository and use `hf:` weights")
        if f.name == "replica-spans-nodes" and not c.replica_spans_nodes:
            return Diagnostic.error(
                "SC608", f"one replica of model `{f.detail}` needs more GPUs than a node has; the {t} target runs each replica on one node",
                f.span, label="spans nodes", help="choose a node type with enough GPUs for one replica, or quantize the model to fit one node")
        if f.name == "shared-gpu" and not c.gpu_sharing:
            names, fits = f.detail.split(";")[0].split("+"), f.detail.endswith(";fits")
            listed = ", ".join(f"`{n}`" for n in names)
            if fits:
                return Diagnostic.warning(
                    "SC609", f"models {listed} share one GPU in the plan; the {t} target gives each pod whole GPUs", f.span,
                    label="one GPU each here", help="nothing to do: the node still has a GPU for each (their memory shares stay as planned)")
            return Diagnostic.error(
                "SC609", f"models {listed} share one GPU in the plan; the {t} target gives each pod whole GPUs and they no longer fit",
                f.span, label="one GPU each here", help="add a GPU (`hardware.gpus_per_node`) or drop one of these models for this target")
        if c.providers is not None and f.name == "on-prem":
            return Diagnostic.error(
                "SC610", f"the {t} target creates cloud machines; this stack runs on your own servers", f.span,
                label="no cloud here", help="set `hardware.provider` (aws, gcp, azure) and `hardware.region`, or build with the systemd target")
        if c.providers is not None and f.name.startswith("provider-") and f.detail not in c.providers:
            return Diagnostic.error(
                "SC604", f"the {t} target does not yet emit for `{f.detail}`", f.span, label="not emitted yet",
                help=f"use `provider: {' or '.join(c.providers)}`, or build the hosts' units with the systemd target")
        if c.providers is not None and f.name == "compose-boot-multi-node":
            return Diagnostic.error(
                "SC603", f"`boot: compose` runs the stack on one machine; this stack spans {f.detail} nodes", f.span,
                label="one machine only", help="use `boot: systemd` (each node runs its own units)")
        if c.hosts and f.name == "hosts-address-unknown":
            return Diagnostic.error(
                "SC607", f"this stack runs on {f.detail} nodes; the {t} target needs each node's private address",
                f.span, label="addresses unknown",
                help=f"set `systemd.node_addresses` to the {f.detail} nodes' private addresses, node-0 first")
        if c.kubernetes and f.name == "k8s-gpu-label-unknown":
            label, gpu = f.detail.split(";")
            return Diagnostic.error(
                "SC607", f"the catalog has no `{label}` value for `{gpu}`; pods could not be placed on its nodes", f.span,
                label="unknown node label", help=f"set `kubernetes.gpu_label_value` to the value your nodes carry (`kubectl get nodes -L {label}`)")
        if c.kubernetes and f.name == "k8s-cache-read-write-once":
            return Diagnostic.error(
                "SC607", f"replicas of {f.detail} on several nodes would share a ReadWriteOnce model cache, which attaches to one node",
                f.span, label="one node only", help="set `kubernetes.model_cache_access: ReadWriteMany` with a storage class that provides it (NFS, CephFS, EFS, Filestore)")
        if c.kubernetes and f.name == "k8s-name-too-long":
            return Diagnostic.error(
                "SC607", f"the Service `{f.detail}` would be longer than a 63-character DNS label", f.span,
                label="name too long", help="shorten the stack's or the model's name")
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
