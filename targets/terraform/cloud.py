"""What every cloud's module has: the variables a user sets, the nodes and what they expose, the
cost line, the outputs. A cloud (aws.py) states its provider, network, identity, storage,
secret store and machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackc.ir import Deployment, SecretRef
from stackc.output import BLANK, Block, Comment, Raw

Items = list[Any]


@dataclass
class Module:
    header: str
    files: dict[str, Items] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)


def ref(text: str) -> Raw:
    return Raw(text)


def resource(type_: str, name: str, *body: Any) -> Block:
    return Block("resource", (type_, name), tuple(body))


def data(type_: str, name: str, *body: Any) -> Block:
    return Block("data", (type_, name), tuple(body))


def ignore(check: str, why: str) -> list[Comment]:
    """A policy finding that stays, with its reason (trivy reads the second line)."""
    return [Comment(why), Comment(f"trivy:ignore:{check}")]


def hcl_list(names: list[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def variable(name: str, description: str, type_: str, default: Any = ..., validation: tuple[str, str] | None = None) -> Block:
    body: list[Any] = [("description", description), ("type", Raw(type_))]
    if default is not ...:
        body.append(("default", default))
    if validation:
        body.append(Block("validation", (), (("condition", Raw(validation[0])), ("error_message", validation[1]))))
    return Block("variable", (name,), tuple(body))


class Cloud:
    name = ""
    title = ""
    apply_vars = ""  # variables `terraform apply` needs beyond allowed_cidrs    secret_store = ""
    prelude: list[str] = []  # shell the boot script needs before it fetches anything (helpers)
    fetch_bundle = ""  # the shell line that copies `stack/<node>/` from the module's bucket
    read_secret = ""  # the shell command that prints one secret's value (fails while it has none)
    put_secret = ""  # how a user gives a secret its value, for the README
    secret_output = ""  # the output listing the secrets' ids

    def public_ports(self, dep: Deployment) -> list[int]:
        """Ports the stack publishes on every interface (the gateway, the UI): opened to `allowed_cidrs`."""
        assert dep.hosts is not None
        return sorted({r.port for _, r in dep.hosts.runs if r.bind == "0.0.0.0" and r.port})

    def node_secrets(self, dep: Deployment) -> dict[str, list[str]]:
        """Per node, the secrets its services read (the boot script fetches those only)."""
        out: dict[str, set[str]] = {n.name: set() for n in dep.nodes}
        for s in dep.services:
            names = {v.name for _, v in s.env if isinstance(v, SecretRef)}
            out[s.node] |= names
            if s.role == "model-download":  # downloads run on every node that holds the model
                for e in dep.services:
                    if e.role == "engine" and e.group == s.group:
                        out[e.node] |= names
        return {k: sorted(v) for k, v in out.items()}

    def common_variables(self, dep: Deployment) -> Items:
        ports = ", ".join(map(str, self.public_ports(dep)))
        return [
            variable("allowed_cidrs", f"CIDR blocks that may reach the stack's public ports ({ports}); required, no default.",
                     "list(string)", validation=("length(var.allowed_cidrs) > 0", "Name at least one CIDR block.")),
            variable("ssh_cidrs", "CIDR blocks that may reach SSH (22); empty keeps SSH closed.", "list(string)", []),
        ]

    def cost_comment(self, dep: Deployment) -> list[Comment]:
        node = dep.nodes[0]
        if node.usd_per_hour is None:
            return [Comment("cost: the catalog has no price for this instance type")]
        hourly = node.usd_per_hour * len(dep.nodes)
        market = "spot (the on-demand price is the ceiling)" if node.spot else "on demand"
        return [Comment(f"cost, {market}: {len(dep.nodes)} x {node.instance_type} in {node.region}, "
                        f"${hourly:,.2f}/hour, ${hourly * 730:,.0f}/month (the planner's figures)")]

    def nodes_local(self, dep: Deployment) -> dict[str, Any]:
        """Per node its private address (the one its units were built with) and its disk."""
        from . import disk_gib

        assert dep.hosts is not None and dep.provisioning is not None
        return {n.name: {"private_ip": dep.hosts.node_addresses[i],
                         "disk_gib": disk_gib(dep, i, dep.provisioning.root_volume_gib)}
                for i, n in enumerate(dep.nodes)}


__all__ = ["BLANK", "Block", "Cloud", "Comment", "Items", "Module", "Raw", "data", "hcl_list", "ignore", "ref", "resource",
           "variable"]
