"""What the terraform target adds to the IR: the machines' host runs (they boot into the systemd
target's units, so its `Hosts` come along) and the cloud's provisioning from `terraform:`, with
the checks only a cloud's machines need. Computed only when the terraform target builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from stackc.ir import Deployment, Feature, SecretDecl, specialise

from ..systemd.hosts import HostDeployment
from ..systemd.runs import prepare as prepare_hosts

if TYPE_CHECKING:
    from stackc.plan import Plan


@dataclass(frozen=True)
class Provisioning:
    """The subnet the nodes' addresses come from, the disk before the model cache is added, and
    what the machines boot into."""

    subnet_cidr: str
    root_volume_gib: int
    boot: str = "systemd"  # systemd | compose: which target's files the machines run
    # the operator's files a service loads (the TLS certificate and key): each an entry of the
    # cloud's secret store, written to its path on its node at boot (secret, node, path, service)
    files: tuple[tuple[str, str, str, str], ...] = ()


COMPOSE_DIR = "/opt/stackc/{project}"  # where a compose-booted machine keeps the stack


def secret_for(credential: str) -> str:
    """The secret-store entry that holds an operator's file: `gateway.pem` is `STACKC_GATEWAY_PEM`."""
    return "STACKC_" + "".join(c if c.isalnum() else "_" for c in credential).upper()


def stored_files(dep: HostDeployment, boot: str) -> tuple[tuple[str, str, str, str], ...]:
    """Each credential a service loads, as the secret that holds it and the path its node reads it at."""
    assert dep.hosts is not None
    out = []
    for s in dep.services:
        for m in s.mounts:
            if m.kind != "credential":
                continue
            if boot == "compose":  # beside compose.yaml, as the compose target mounts it
                base = COMPOSE_DIR.format(project=dep.project)
                path = m.source if m.source.startswith("/") else f"{base}/{m.source.removeprefix('./')}"
            else:
                path = dict(dep.hosts.run(s.name).credentials)[m.target]
            out.append((secret_for(m.target), s.node, path, s.name))
    return tuple(sorted(out))


@dataclass(frozen=True)
class CloudDeployment(HostDeployment):
    """The deployment as the terraform target translates it."""

    provisioning: Optional[Provisioning] = None


def prepare(dep: Deployment, plan: "Plan") -> CloudDeployment:
    stack = plan.stack
    spec, where = stack.spec, stack.where
    assert where is not None
    hosted = prepare_hosts(dep, plan)
    t = spec.section("terraform")
    given = spec.systemd
    found: list[Feature] = []
    user = spec.section("systemd").user
    found.append(Feature("service-user", (where("systemd", "user") if given and "user" in given.model_fields_set
                                          else None) or where("hardware", key=True), user))
    if t.boot == "compose" and stack.nodes > 1:
        found.append(Feature("compose-boot-multi-node", where("terraform", "boot"), nodes=stack.nodes))
    files = stored_files(hosted, t.boot)
    described = tuple(SecretDecl(name, f"the file `{path}` on {node} ({service} reads it): PEM, written there at boot")
                      for name, node, path, service in files)
    return specialise(hosted, CloudDeployment,
                      provisioning=Provisioning(t.subnet_cidr, t.root_volume_gib, t.boot, files),
                      features=hosted.features + tuple(found),
                      secrets=tuple(sorted(hosted.secrets + described, key=lambda d: d.name)))
