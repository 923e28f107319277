"""One `servingEngineSpec.modelSpec` entry per model, translated from its engine replicas.

The engine's argv (the same one compose and systemd run) is read through the chart's flag
table: flags the chart writes from a key become that key, the rest go to `extraArgs` in order,
so the pod runs the command the other targets run.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from stackc.ir import Endpoint, SecretRef, Service
from stackc.units import GIB

from . import chart
from .cluster import Cluster, ClusterDeployment

HF_HOME = "HF_HOME"  # the chart sets it to CACHE_DIR in the engine; we set the same in the init container


def quantity(n: int) -> str:
    """A Kubernetes binary quantity in whole GiB, rounded up (at least 1Gi)."""
    return f"{max(1, math.ceil(n / GIB))}Gi"


def model_spec(replicas: list[Service], download: Optional[Service], dep: ClusterDeployment, resolve) -> dict[str, Any]:
    s = replicas[0]
    ec = s.engine
    assert ec is not None and s.group is not None and dep.cluster is not None
    cluster = dep.cluster
    out: dict[str, Any] = {
        "name": s.group,
        "repository": s.image.repository,
        "tag": s.image.pinned_tag,
        "modelURL": s.command[0],
    }
    if ec.revision:
        out["modelRevision"] = ec.revision
    out["replicaCount"] = s.replicas.min
    gpus = ec.tensor_parallel * ec.pipeline_parallel
    out["requestCPU"] = s.resources.cpus
    out["requestMemory"] = quantity(s.resources.memory_bytes)
    out["requestGPU"] = gpus
    # the chart mounts /dev/shm only when `tensorParallelSize` is set (it always is, below)
    out["shmSize"] = quantity(s.resources.shm_bytes) if s.resources.shm_bytes else "1Gi"
    if cluster.model_cache_claim:
        out["pvcStorage"] = quantity(s.cache_bytes)  # the key must exist for the chart to mount the claim
        out["pvcExistingClaimName"] = cluster.model_cache_claim
    else:
        out["pvcStorage"] = quantity(s.cache_bytes)
        out["pvcAccessMode"] = [cluster.model_cache_access]
        if cluster.storage_class:
            out["storageClass"] = cluster.storage_class
    out["vllmConfig"] = vllm_config(s)
    lmcache, env = lmcache_config(s, resolve)
    if lmcache:
        out["lmcacheConfig"] = lmcache
    secrets = dict(dep_secret_refs(dep))
    for name, value in s.env:
        if name == "HF_TOKEN" and isinstance(value, SecretRef):
            out["hf_token"] = secrets[value.name]
    if env:
        out["env"] = env
    scratch = [m for m in s.mounts if m.kind == "host" and m.create]
    if scratch:  # the disk KV tier: a per-pod scratch directory on the node's local disk
        disk = next((t for t in ec.kv_offload if t.tier == "disk"), None)
        out["extraVolumes"] = [{"name": "kv-cache", "emptyDir": {"sizeLimit": quantity(disk.size_bytes if disk else 0)}}]
        out["extraVolumeMounts"] = [{"name": "kv-cache", "mountPath": scratch[0].target}]
    if download is not None:
        out["initContainer"] = init_container(download, secrets)
    if cluster.gpu_label_value:
        out["nodeSelectorTerms"] = [{"matchExpressions": [
            {"key": cluster.gpu_label, "operator": "In", "values": [cluster.gpu_label_value]}]}]
    if s.replicas.min > 1:
        out["pdb"] = {"enabled": True, "maxUnavailable": 1}
    return out


def vllm_config(s: Service) -> dict[str, Any]:
    """The planned settings as the chart's keys, and every other flag as `extraArgs`."""
    ec = s.engine
    assert ec is not None
    config: dict[str, Any] = {}
    extra: list[str] = []
    argv = list(s.command[1:])  # [0] is the model: `modelURL`
    i = 0
    while i < len(argv):
        flag = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        if flag in chart.FLAG_KEYS and value is not None:
            key, kind = chart.FLAG_KEYS[flag]
            config[key] = kind(value)
            i += 2
            continue
        switch = flag.replace("--no-", "--", 1)
        if switch in chart.SWITCH_KEYS and value is None:
            config[chart.SWITCH_KEYS[switch]] = not flag.startswith("--no-")
            i += 1
            continue
        if flag in chart.CHART_FLAGS or (flag == "--kv-transfer-config" and ec.kv_mechanism == "lmcache"):
            i += 2 if value is not None else 1
            continue
        extra.append(flag)
        if value is not None:
            extra.append(value)
        i += 1 + (value is not None)
    config.setdefault("tensorParallelSize", ec.tensor_parallel)  # also mounts /dev/shm
    config.setdefault("enablePrefixCaching", bool(ec.prefix_caching))  # absent means off in the chart
    if extra:
        config["extraArgs"] = extra
    return dict(sorted(config.items()))


def lmcache_config(s: Service, resolve) -> tuple[dict[str, Any], list[dict]]:
    """`lmcacheConfig` from the engine's LMCache environment, and the environment left over."""
    ec = s.engine
    assert ec is not None
    lmcache: dict[str, Any] = {}
    env: list[dict] = []
    if ec.kv_mechanism == "lmcache":
        lmcache["enabled"] = True
    for name, value in s.env:
        if name in (HF_HOME, "HF_TOKEN"):
            continue  # the chart sets HF_HOME to its cache mount; the token is `hf_token`
        if ec.kv_mechanism == "lmcache" and name in chart.LMCACHE_ENV_KEYS and isinstance(value, str):
            lmcache[chart.LMCACHE_ENV_KEYS[name]] = value
            continue
        if ec.kv_mechanism == "lmcache" and name in chart.LMCACHE_ENV_IMPLIED:
            continue
        env.append(env_var(name, value, resolve))
    return lmcache, env


def env_var(name: str, value: Any, resolve) -> dict:
    if isinstance(value, SecretRef):
        return {"name": name, "valueFrom": {"secretKeyRef": resolve(value)}}
    if isinstance(value, Endpoint):
        return {"name": name, "value": resolve(value)}
    return {"name": name, "value": value}


def dep_secret_refs(dep: ClusterDeployment) -> list[tuple[str, dict]]:
    """Each declared secret as the chart's `{secretName, secretKey}`."""
    assert dep.cluster is not None
    return [(d.name, dict(zip(("secretName", "secretKey"), dep.cluster.secret_ref(d.name))))
            for d in dep.secrets]


def init_container(download: Service, secrets: dict[str, dict]) -> dict[str, Any]:
    """The download job, run before the engine in each pod (the hub skips files already there)."""
    command = list(download.entrypoint or ()) + list(download.command)
    env: list[dict] = []
    for name, value in download.env:
        if name == HF_HOME:
            value = chart.CACHE_DIR
        if isinstance(value, SecretRef):
            ref = secrets[value.name]
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": ref["secretName"], "key": ref["secretKey"]}}})
        else:
            env.append({"name": name, "value": value})
    return {"name": "download", "image": download.image.ref, "command": command[:1], "args": command[1:],
            "env": env, "mountPvcStorage": True}


def startup_probe(engines: list[Service], cluster: Cluster) -> dict[str, Any]:
    """One probe for every model in this chart: the largest start-up budget with the weights read
    from the claim's storage, and never shorter than the chart's own default."""
    budget = max(cluster.startup_budget_s, *(s.startup_budget_s for s in engines), chart.DEFAULT_STARTUP_S)
    health = next((s.health for s in engines if s.health), None)  # no engine: resolve refuses such a stack
    return {"initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": math.ceil(budget / 10),
            "httpGet": {"path": health.path if health else "/health", "port": chart.CONTAINER_PORT}}


def strategy(cluster: Cluster) -> dict[str, Any]:
    """Surge only when a whole replica's GPUs stay free; otherwise stop one, then start one."""
    if cluster.rollout_surge:
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
