"""The terraform target's Target: the translation (see the package's docstring)."""

from __future__ import annotations

from stackc import engines, locks, output
from stackc.engines.base import Engine
from stackc.diagnostics import Diagnostic
from stackc.ir import Deployment

from ..base import ROUTING_MODES, Artifacts, Capabilities, Target
from ..compose.target import ComposeTarget
from ..systemd.target import SystemdTarget
from . import aws, azure, boot, gcp, readme
from .options import SECTION
from .provisioning import CloudDeployment, prepare as prepare_cloud

CLOUDS = {"aws": aws.Aws(), "azure": azure.Azure(), "gcp": gcp.Gcp()}


def _bootable() -> tuple[str, ...]:
    """The engines a first boot can install: from their image, or natively from what their
    `host_installs` names (a venv from a lock, a release archive). A binary the operator puts on
    the host (llama.cpp's `llama-server`) is not one a boot can fetch."""
    return tuple(name for name, e in engines.REGISTRY.items()
                 if not e.runs_natively or type(e).host_installs is not Engine.host_installs)


BOOTABLE_ENGINES = _bootable()


class TerraformTarget(Target):
    name = "terraform"
    description = "a Terraform module for a GPU cloud that boots into the stack (systemd units, or compose on one machine)"
    capabilities = Capabilities(autoscaling=False, multi_node=True, gpu_vendors=("nvidia",), kv_tiers=True,
                                routing=ROUTING_MODES, overflow=True, engines=BOOTABLE_ENGINES,
                                providers=tuple(CLOUDS), publishes=True, tls_edge=True, public_address=True)
    section = SECTION

    def prepare(self, dep: Deployment, plan) -> CloudDeployment:
        return prepare_cloud(dep, plan)

    def _provisioned(self, dep: CloudDeployment) -> list[Diagnostic]:
        """Machines on a cloud it provisions: not your own servers, not a cloud it lacks, and
        `boot: compose` on one machine only."""
        out, clouds = [], tuple(CLOUDS)
        for f in dep.features:
            if f.name == "on-prem":
                out.append(Diagnostic.error(
                    "SC610", f"the `{self.name}` target creates cloud machines; this stack runs on your own servers", f.span,
                    label="no cloud here",
                    help="set `hardware.provider` (aws, gcp, azure) and `hardware.region`, or build with the systemd target"))
            elif f.name == "provider" and f.detail not in clouds:
                out.append(Diagnostic.error(
                    "SC604", f"the `{self.name}` target does not yet emit for `{f.detail}`", f.span, label="not emitted yet",
                    help=f"use `provider: {' or '.join(clouds)}`, or build the hosts' units with the systemd target"))
            elif f.name == "compose-boot-multi-node":
                out.append(Diagnostic.error(
                    "SC603", f"`boot: compose` runs the stack on one machine; this stack spans {f.nodes} nodes", f.span,
                    label="one machine only", help="use `boot: systemd` (each node runs its own units)"))
        return out

    def check(self, dep: CloudDeployment) -> list[Diagnostic]:
        """Beyond the capabilities: what a first boot on this cloud's image can install, and a
        service account that is not the image's login."""
        out = super().check(dep) + self._provisioned(dep)
        if any(d.is_error for d in out) or dep.nodes[0].provider not in CLOUDS or (dep.provisioning and dep.provisioning.boot == "compose"):
            return out
        cloud = CLOUDS[dep.nodes[0].provider]
        python = ".".join(map(str, cloud.image_python))
        for f in dep.features:
            if f.name == "service-user" and f.detail in {cloud.login_user, "root"} - {""}:
                out.append(Diagnostic.error(
                    "SC613", f"the services would run as `{f.detail}`, the {cloud.title} image's login account",
                    f.span, label="a login user", help="set `systemd.user` to an account of the services' own (the default `stackc`)"))
        seen = set()
        for name, run in dep.hosts.runs if dep.hosts else ():
            for i in run.installs:
                if i.kind != "venv" or (i.name, i.lock) in seen:
                    continue
                seen.add((i.name, i.lock))
                span = dep.service(name).origin
                lock = locks.by_file(i.lock) if i.lock else None
                if lock is None:
                    out.append(Diagnostic.error(
                        "SC612", f"no hashed lock for `{i.requirement}`: the first boot installs only what it can verify",
                        span, label="this version", help="remove `image:` to run the pinned release, which has a lock"))
                elif not lock.admits(cloud.image_python):
                    low, high = (".".join(map(str, v)) for v in lock.requires_python)
                    out.append(Diagnostic.error(
                        "SC612", f"`{lock.requirement}` needs Python >= {low} and < {high}; the {cloud.title} boot image has {python}",
                        span, label="cannot install here", help="run the pinned release, or choose an engine whose lock fits the image"))
        return out

    def emit(self, dep: CloudDeployment, spec_name: str) -> Artifacts:
        assert dep.hosts is not None
        assert dep.provisioning is not None
        cloud = CLOUDS[dep.nodes[0].provider]
        first, names = dep.nodes[0].name, {n.name for n in dep.nodes}
        if dep.provisioning.boot == "compose":  # one machine running the compose target's stack
            bundle = {f"{first}/{path}": data for path, data in ComposeTarget().emit(dep, spec_name).items()}
        else:  # the systemd target's files, under each node's directory (one node's are not in one)
            units = SystemdTarget().emit(dep, spec_name)
            bundle = {(path if path.split("/", 1)[0] in names else f"{first}/{path}"): data for path, data in units.items()}
        module = cloud.module(dep, spec_name, bundle)
        files: Artifacts = {name: output.to_hcl(items, module.header).encode() for name, items in module.files.items()}
        files["boot.sh.tftpl"] = boot.template(dep, cloud).encode()
        files.update({f"stack/{path}": data for path, data in bundle.items()})
        files["README.md"] = readme.render(dep, spec_name, cloud, module).encode()
        return files
