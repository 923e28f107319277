"""The terraform target: a root module that creates the stack's machines on a cloud and boots
them straight into the stack.

The machines run what the systemd target writes for them (`stack/<node>/`, uploaded to the
module's bucket and installed at first boot by `boot.sh.tftpl`); this package adds the cloud
around it. `aws.py` is the one cloud so far; a cloud is a class that states its resources.
"""

from __future__ import annotations

from stackc import output
from stackc.ir import Deployment
from stackc.units import GIB

from ..base import ROUTING_MODES, Artifacts, Capabilities, Target
from ..compose import ComposeTarget
from ..systemd import SystemdTarget
from . import aws, azure, boot, gcp, readme

CLOUDS = {"aws": aws.Aws(), "azure": azure.Azure(), "gcp": gcp.Gcp()}
# engines a first boot can install: from PyPI, a release archive, or their image
BOOTABLE_ENGINES = ("vllm", "sglang", "ollama", "tgi", "tensorrt-llm")


class TerraformTarget(Target):
    name = "terraform"
    description = "a Terraform module for a GPU cloud that boots into the stack (systemd units, or compose on one machine)"
    capabilities = Capabilities(autoscaling=False, multi_node=True, gpu_vendors=("nvidia",), kv_tiers=True,
                                routing=ROUTING_MODES, overflow=True, engines=BOOTABLE_ENGINES,
                                providers=tuple(CLOUDS))

    def emit(self, dep: Deployment, spec_name: str) -> Artifacts:
        assert dep.hosts is not None
        assert dep.provisioning is not None
        cloud = CLOUDS[dep.nodes[0].provider]
        if dep.provisioning.boot == "compose":  # one machine running the compose target's stack
            bundle = {f"node-0/{path}": data for path, data in ComposeTarget().emit(dep, spec_name).items()}
        else:
            units = SystemdTarget().emit(dep, spec_name)
            bundle = {(path if path.startswith("node-") else f"node-0/{path}"): data for path, data in units.items()}
        module = cloud.module(dep, spec_name, bundle)
        files: Artifacts = {name: output.to_hcl(items, module.header).encode() for name, items in module.files.items()}
        files["boot.sh.tftpl"] = boot.template(dep, cloud).encode()
        files.update({f"stack/{path}": data for path, data in bundle.items()})
        files["README.md"] = readme.render(dep, spec_name, cloud, module).encode()
        return files


def disk_gib(dep: Deployment, node_index: int, base_gib: int) -> int:
    """The system and engines, then the node's model cache and KV-cache disk tier, in whole GiB."""
    node = dep.nodes[node_index]
    return base_gib + -(-(node.cache_bytes + node.kv_disk_bytes) // GIB)
