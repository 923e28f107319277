"""Facts about the vLLM production-stack chart (`vllm-stack` 0.1.12) that the helm target writes
values for: where it mounts things, what it names things, and which of its keys we use that its
`values.schema.json` does not list.

Read from the chart's templates at the pinned version (docs/targets/helm.md has the details);
when the pin moves, re-read them and update this module.
"""

from __future__ import annotations

from stackc import images

NAME, VERSION, REPOSITORY = images.HELM_CHART
REPO_ALIAS = "vllm"  # `helm repo add vllm <REPOSITORY>`

CONTAINER_PORT = 8000  # `servingEngineSpec.containerPort`: every engine listens here
# the chart's own startup probe (values.yaml: initialDelaySeconds 15, periodSeconds 10,
# failureThreshold 60): the probe stackc writes replaces it and must never be shorter
DEFAULT_STARTUP_S = 15 + 10 * 60
CACHE_DIR = "/data"  # where `pvcStorage` (or `pvcExistingClaimName`) is mounted, and HF_HOME points
ROUTER_PORT = 80  # `routerSpec.servicePort` of `<release>-router-service`
ROUTER_CONTAINER_PORT = 8000  # `routerSpec.containerPort`: the router pod's own port

# `vllm serve` flags the chart writes itself from a key, and the key: the same flag in
# `extraArgs` would be given twice (the chart's own example does this, anchors-k8s.md 2.13)
FLAG_KEYS: dict[str, tuple[str, type]] = {
    "--max-model-len": ("maxModelLen", int),
    "--dtype": ("dtype", str),
    "--tensor-parallel-size": ("tensorParallelSize", int),
    "--max-num-seqs": ("maxNumSeqs", int),
    "--gpu-memory-utilization": ("gpuMemoryUtilization", float),
}
# on/off flags: the chart writes `--no-...` when the key is false (and, for prefix caching,
# when it is absent: the key is always set)
SWITCH_KEYS: dict[str, str] = {
    "--enable-prefix-caching": "enablePrefixCaching",
    "--enable-chunked-prefill": "enableChunkedPrefill",
}
# flags the chart sets from elsewhere: the model (positional), host and port, the revision
# (`modelRevision`), and LMCache's connector (`lmcacheConfig.enabled`)
CHART_FLAGS = ("--host", "--port", "--revision")

# LMCache settings the chart writes as environment variables from `lmcacheConfig` keys
LMCACHE_ENV_KEYS: dict[str, str] = {
    "LMCACHE_MAX_LOCAL_CPU_SIZE": "cpuOffloadingBufferSize",
    "LMCACHE_MAX_LOCAL_DISK_SIZE": "diskOffloadingBufferSize",
}
LMCACHE_ENV_IMPLIED = ("LMCACHE_LOCAL_CPU",)  # written by the chart with cpuOffloadingBufferSize

# Keys the chart's templates read that its values.schema.json does not list (anchors-k8s.md
# 2.13). A key here is not checked by the schema, so each one is checked against this table in
# the tests: a misspelt key would otherwise be ignored by the chart without a word.
TEMPLATE_ONLY_KEYS: dict[str, str] = {
    "servingEngineSpec.modelSpec[].pdb": "the model's PodDisruptionBudget (pdb-vllm-multi.yaml)",
    "servingEngineSpec.modelSpec[].pdb.enabled": "creates `<release>-<model>-pdb-vllm`",
    "servingEngineSpec.modelSpec[].pdb.maxUnavailable": "at most this many replicas down in a voluntary disruption",
    "servingEngineSpec.modelSpec[].pvcExistingClaimName": "mount this claim instead of creating one",
    "servingEngineSpec.modelSpec[].lmcacheConfig.diskOffloadingBufferSize": "LMCACHE_MAX_LOCAL_DISK_SIZE, in GB",
}
