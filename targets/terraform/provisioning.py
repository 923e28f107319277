"""What the terraform target adds to the IR: the machines' host runs (they boot into the systemd
target's units, so its `Hosts` come along) and the cloud's provisioning from `terraform:`, with
the checks only a cloud's machines need. Computed only when the terraform target builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from stackc.ir import Deployment, Feature, specialise

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
    return specialise(hosted, CloudDeployment, provisioning=Provisioning(t.subnet_cidr, t.root_volume_gib, t.boot),
                      features=hosted.features + tuple(found))
