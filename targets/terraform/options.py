"""The terraform target's section of the spec, `terraform:`: the subnet, the root disk, what the
machines boot into."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from stackc.spec_values import _Strict

from ..section import Section

class Terraform(_Strict):
    """Settings only the terraform target reads."""

    subnet_cidr: Annotated[str, Field(pattern=r"^10\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.0/(1[6-9]|2[0-4])$")] = Field(
        "10.42.0.0/24", description="The nodes' subnet (created by the module, or the existing one its variables name); "
        "node i gets the address .10+i in it.")
    root_volume_gib: Annotated[int, Field(ge=50, le=16384)] = Field(
        100, description="Disk for the system, engines and their caches, before the model cache and the KV-cache disk tier are added.")
    boot: Literal["systemd", "compose"] = Field(
        "systemd", description="What each machine runs: the systemd target's units (engines installed natively), or "
        "the compose target's stack (one machine only; engines in their pinned images).")


SECTION = Section("terraform", Terraform, "Cloud settings for the terraform target.")
