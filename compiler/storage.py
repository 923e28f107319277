"""Where the model cache lives and how fast it reads: the rate the start-up budgets allow for.

Reading the weights is most of a cold start (a 70B at bf16 is 140 GB). The budget each target
turns into a deadline (compose's start period, systemd's TimeoutStartSec, the helm startup
probe) assumes the cache reads at:

- `hardware.disk_read` when the spec gives it;
- on a cloud, the planned instance's local NVMe when it holds the cache (terraform puts the cache
  there), else the disk the module provisions, at its published rate;
- on your own servers, a conservative 200 MiB/s (a SATA SSD, or network storage);
- on Kubernetes, the claim's `kubernetes.storage_read`, else 125 MiB/s (network storage).

Facts and their sources: compiler/catalog/data/instances.json (local NVMe per instance, S40-S43);
the disk rates below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .catalog import InstanceInfo
from .units import GIB, MIB

ON_PREM_READ = 200 * MIB
KUBERNETES_READ = 125 * MIB
# No cloud publishes a read rate for instance storage (AWS and GCP give IOPS only); one NVMe SSD
# reads 2-3 GB/s sequentially, so 1 GiB/s is an assumption on the safe side.
LOCAL_NVME_READ = 1 * GIB
# AWS gp3 without provisioned throughput: 125 MiB/s (AWS::EC2::Volume Throughput, "the default
# value is 125"); g5.xlarge and g5.2xlarge sustain less to EBS once their burst is spent
# (EC2 instance types guide, EBS specifications: 87.5 and 106.25 MB/s baseline)
GP3_READ = 125 * MIB
EBS_BASELINE = {"g5.xlarge": 87_500_000, "g5.2xlarge": 106_250_000}
# GCP pd-ssd: 0.48 MiB/s per GiB plus 240 MiB/s, up to the VM's cap (cloud.google.com/compute/docs/
# disks/performance, as gcpdiag's limits_per_gb.json records it); caps per machine type
PD_SSD_PER_GIB, PD_SSD_BASE = 0.48 * MIB, 240 * MIB
PD_SSD_CAP = {"g2-standard-4": 240 * MIB, "g2-standard-8": 800 * MIB, "g2-standard-12": 800 * MIB,
              "a2-highgpu-1g": 800 * MIB, "a2-ultragpu-1g": 800 * MIB}
PD_SSD_DEFAULT_CAP = 1200 * MIB
# Azure Premium SSD: the tier a size rounds up to (learn.microsoft.com/azure/virtual-machines/
# disks-types#premium-ssd-size): P10 128 GiB 100 MB/s ... P40/P50 250 MB/s
PREMIUM_TIERS = ((128, 100), (256, 125), (512, 150), (1024, 200), (2048, 250), (4096, 250))


@dataclass(frozen=True)
class Storage:
    """Where the model cache lives, and the read rate start-up budgets assume of it."""

    kind: str  # spec | local-nvme | gp3 | pd-ssd | premium-ssd | on-prem | kubernetes
    read_bytes_per_s: int
    text: str  # what it is, for the plan
    assumed: bool = False  # no published figure: stackc's assumption

    @property
    def on_local_nvme(self) -> bool:
        return self.kind == "local-nvme"

    def seconds(self, n_bytes: float) -> int:
        return int(-(-n_bytes // self.read_bytes_per_s))


def model_cache(provider: str, instance: Optional[InstanceInfo], spec_rate: Optional[int], cache_bytes: int,
                root_gib: int) -> Storage:
    """The model cache of a node that holds `cache_bytes` of weights."""
    if spec_rate:
        return Storage("spec", spec_rate, "the disk `hardware.disk_read` describes")
    if instance is not None and instance.local_nvme_bytes >= cache_bytes > 0:
        return Storage("local-nvme", LOCAL_NVME_READ,
                       f"local NVMe of {instance.name} ({instance.local_nvme_disks} disk"
                       f"{'s' if instance.local_nvme_disks > 1 else ''})", assumed=True)
    disk_gib = root_gib + -(-cache_bytes // GIB)
    if provider == "aws":
        rate = min(GP3_READ, EBS_BASELINE.get(instance.name, GP3_READ) if instance else GP3_READ)
        return Storage("gp3", rate, "gp3 root volume (AWS's default throughput)")
    if provider == "gcp":
        cap = PD_SSD_CAP.get(instance.name, PD_SSD_DEFAULT_CAP) if instance else PD_SSD_DEFAULT_CAP
        return Storage("pd-ssd", int(min(cap, PD_SSD_BASE + PD_SSD_PER_GIB * disk_gib)), f"{disk_gib} GiB pd-ssd boot disk")
    if provider == "azure":
        mbs = next((rate for size, rate in PREMIUM_TIERS if disk_gib <= size), PREMIUM_TIERS[-1][1])
        return Storage("premium-ssd", mbs * 1000**2, f"{disk_gib} GiB Premium SSD OS disk")
    return Storage("on-prem", ON_PREM_READ, "your servers' disk (set `hardware.disk_read`)", assumed=True)


def kubernetes_claim(spec_rate: Optional[int]) -> Storage:
    if spec_rate:
        return Storage("spec", spec_rate, "the claims `kubernetes.storage_read` describes")
    return Storage("kubernetes", KUBERNETES_READ, "a model-cache claim on network storage (set `kubernetes.storage_read`)",
                   assumed=True)


def startup_budget(read_s: float, engine_overhead_s: int) -> int:
    """Reading the weights plus the engine's own start (compile, graphs), with half again as
    margin, in steps of 30 s and never under a minute."""
    return max(int(-(-(read_s + engine_overhead_s) * 1.5 // 30) * 30), 60)
