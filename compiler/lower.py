"""Lowering: a planned stack becomes a Deployment (the IR) that targets only translate.

Every decision that is not specific to one target is made here or in `engines/`: service
names, which GPUs each replica gets, engine argv and environment, the download job, health
checks and start-up budgets, the gateway's upstreams, the secrets each service reads. What only
one target needs is that target's own `prepare` (targets/<name>/), run only when it builds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from . import components, edge, images, routing
from .engines.downloads import DownloadStep
from .ir import (KV_DISK_DIR, Autoscale, ConfigFile, Dependency, Deployment, Drain, Feature, GpuAssignment, ModelNode,
                 Mount, Node, Replicas, SecretDecl, SecretRef, Service, Volume)
from .placement import demands_of, place, place_plan
from .engine_config import CACHE_DIR, LOCAL_DIR, engine_config
from .plan import ModelPlan, Plan
from .resolve import ResolvedStack

CACHE_VOLUME = "models"
# What an engine asked to stop lets finish: under the 30 s Kubernetes gives a pod by default
# (the chart cannot raise it), with the rest of the stop (the drain, a teardown) inside the
# orchestrator's grace period, which the targets set above it where they can
DRAIN_S = 25
DRAIN_WAIT_S = 3  # between the replica's `drain` and its SIGTERM: three of the router's agent checks
DRAIN_SCRIPT = "engines/drain.py"
DRAIN_PATH = "/etc/stackc/drain.py"  # where an engine's container reads it
STOP_GRACE_S = DRAIN_S + DRAIN_WAIT_S + 12


def lower(plan: Plan, spans_origin: dict | None = None) -> Deployment:
    stack = plan.stack
    spec = stack.spec
    where = stack.where
    assert where is not None
    project = spec.name if stack.environment is None else f"{spec.name}-{stack.environment}"
    needs = {n.node: n for n in plan.nodes}
    hf_token = "HF_TOKEN" in spec.secrets
    placement = place_plan(plan) or {}
    cache = {n: 0 for n in range(stack.nodes)}  # each node's own model cache holds what runs there
    for mp in plan.models:
        for node in {piece[0] for replica in placement.get(mp.model.name, []) for piece in replica}:
            cache[node] += int(mp.download_bytes * 1.1)
    nodes = tuple(
        Node(f"node-{n}", stack.gpu.id, stack.gpu.vendor, stack.gpus_per_node, stack.provider, stack.region,
             plan.instance.name if plan.instance else None,
             plan.instance.price_usd_per_hour if plan.instance else None,
             needs[n].memory_bytes if n in needs else 0, needs[n].disk_bytes if n in needs else 0, stack.spot,
             cache[n], bool(plan.storage and plan.storage.on_local_nvme), index=n)
        for n in range(stack.nodes)
    )

    services: list[Service] = []
    files: list[ConfigFile] = []
    volumes = [Volume(CACHE_VOLUME,  # the model cache downloads fill and engines read
                      int(sum(mp.download_bytes for mp in plan.models) * 1.1))]
    start_after = _start_after(plan)
    for mp in plan.models:
        svc, extra_files = _model_services(mp, stack, placement.get(mp.model.name, []), hf_token,
                                           start_after.get(mp.model.name, ()))
        services += svc
        files += extra_files

    engines = [s for s in services if s.role == "engine"]
    tiering = spec.tiering
    router, router_files, routed = routing.router(engines, tiering.routing if tiering else "round-robin",
                                                  tiering.session_key if tiering else "x-session-id")
    if router is not None:
        services.append(router)
        files += router_files
    gateway_services, gateway_files, gateway_secrets = components.gateway(spec, plan, engines, routed)
    services += gateway_services
    files += gateway_files
    obs_services, obs_files, obs_volumes, obs_secrets = components.observability(
        spec, stack, engines, nodes, gateway_services[0], router)
    services += obs_services
    files += obs_files
    volumes += obs_volumes
    ui_services, ui_volumes, ui_secrets = components.ui(spec)
    gw = spec.gateway
    if gw is not None and gw.tls is not None:  # clients reach the gateway and the UI through the edge only
        front, edge_files = edge.edge(gw.tls, gateway_services[0], gw.port, ui_services[0] if ui_services else None,
                                      gw.ui_port)
        services[services.index(gateway_services[0])] = replace(gateway_services[0], published=())
        ui_services = [replace(u, published=()) for u in ui_services]
        services.append(front)
        files += edge_files
    services += ui_services
    volumes += ui_volumes

    gateway_key = spec.gateway.api_key.secret if spec.gateway and spec.gateway.api_key else None
    secrets = [SecretDecl(name, _describe_secret(name, decl, gateway_key)) for name, decl in sorted(spec.secrets.items())]
    for generated in gateway_secrets + obs_secrets + ui_secrets:
        if generated.name not in spec.secrets:
            secrets.append(generated)

    return Deployment(
        name=spec.name,
        environment=stack.environment,
        project=project,
        nodes=nodes,
        services=tuple(services),
        volumes=tuple(sorted(volumes, key=lambda v: v.name)),
        secrets=tuple(sorted(secrets, key=lambda s: s.name)),
        files=tuple(sorted({f.path: f for f in files}.values(), key=lambda f: f.path)),
        features=tuple(features(stack, plan)),
        gateway_port=spec.gateway.port if spec.gateway else 8080,
        routing=tiering.routing if tiering else "round-robin",
        session_key=tiering.session_key if tiering else "x-session-id",
        models=_model_nodes(stack, services),
    )


def _model_nodes(stack: ResolvedStack, services: list[Service]) -> tuple[ModelNode, ...]:
    """Each model with its replica services and download job, so no target regroups them."""
    replicas: dict[str, list[str]] = {}
    downloads: dict[str, str] = {}
    for s in services:
        if s.role == "engine":
            replicas.setdefault(s.group, []).append(s.name)
        elif s.role == "model-download":
            downloads[s.group] = s.name
    where = stack.where
    return tuple(ModelNode(rm.spec.name, rm.engine.name, tuple(replicas.get(rm.spec.name, ())), downloads.get(rm.spec.name),
                           where("models", rm.index, key=True), where("models", rm.index, "name"))
                 for rm in stack.models)


def _describe_secret(name: str, decl, gateway_key: Optional[str]) -> str:
    text = (decl.description if decl else None) or ""
    if name == gateway_key:
        # LiteLLM's master key must start with `sk-` (docs.litellm.ai, proxy virtual keys)
        text = (text + "; " if text else "") + "the gateway (LiteLLM) requires it to start with `sk-`"
    return text


def _start_after(plan: Plan) -> dict[str, tuple[Dependency, ...]]:
    """Per model sharing a GPU, what its engine waits for. Engines sharing a GPU start one after
    another: vLLM measures the memory its profiling run takes from the GPU's free memory, so a
    neighbour allocating at the same time would be counted against its KV cache (vllm#10533)."""
    return {name: (Dependency(f"{group[position - 1]}-0", "healthy"),)
            for group in plan.shared_groups for position, name in enumerate(group) if position}


def _model_services(mp: ModelPlan, stack: ResolvedStack, slots, hf_token: bool,
                    start_after: tuple[Dependency, ...] = ()) -> tuple[list[Service], list[ConfigFile]]:
    rm = mp.model
    m, e = rm.spec, rm.engine
    where = stack.where
    origin = where("models", rm.index, key=True)
    ev = mp.evaluation
    ec = replace(engine_config(rm, mp.settings, ev.tp, ev.pp, stack.gpu, ev.share, gpu_layers=ev.gpu_layers,
                               kv_tiers=mp.kv_tiers), shutdown_timeout_s=DRAIN_S)
    token_env = (("HF_TOKEN", SecretRef("HF_TOKEN")),) if hf_token else ()
    services: list[Service] = []
    files: list[ConfigFile] = []

    download: Optional[DownloadStep] = e.download(ec, rm.artifact, rm.image)
    cache_bytes = int(mp.download_bytes * 1.1)  # weights plus the hub's metadata and a margin
    mounts = [Mount("volume", CACHE_VOLUME, CACHE_DIR)]
    if rm.artifact.kind == "local":
        mounts.append(Mount("host", rm.artifact.ref, f"{LOCAL_DIR}/{m.name}", read_only=True))
    depends: tuple[Dependency, ...] = ()
    if download is not None:
        name = f"{m.name}-download"
        env = tuple(download.env) + (token_env if download.needs_hf_token else ())
        services.append(Service(
            name=name, role="model-download", image=images.parse(download.image), command=download.command,
            entrypoint=download.entrypoint, env=env, mounts=(Mount("volume", CACHE_VOLUME, CACHE_DIR),),
            one_shot=True, group=m.name, origin=origin, cache_bytes=cache_bytes,
        ))
        depends = (Dependency(name, "completed"),)
    depends += start_after

    options = e.options(ec)
    if options:
        path = f"engines/{m.name}/{e.name}-options.yaml"
        files.append(ConfigFile(path, "yaml", options))
        mounts.append(Mount("file", path, e.options_path, read_only=True))

    health = e.health(ec)
    replicas = Replicas(mp.replicas_min, mp.replicas_max)
    entrypoint, drain = e.entrypoint(ec), None
    if e.drainable and (len(slots) > 1 or mp.replicas_max > 1):  # behind the router: drained before it stops
        drain = Drain(DRAIN_SCRIPT, DRAIN_PATH, e.port + 100, DRAIN_WAIT_S)
        entrypoint = ("python3", DRAIN_PATH, "--agent", f"0.0.0.0:{drain.agent_port}", "--wait", str(DRAIN_WAIT_S),
                      "--", *(entrypoint or e.image_entrypoint))
        mounts.append(Mount("file", DRAIN_SCRIPT, DRAIN_PATH, read_only=True))
        files.append(ConfigFile(DRAIN_SCRIPT, "text", drain_script()))
    autoscale = None
    if m.autoscale:
        query = e.autoscale_query(m.autoscale.metric, ec.served_name, ec.version)
        autoscale = Autoscale(m.autoscale.metric, query or "", m.autoscale.target)
    resources = replace(e.resources(ec), memory_bytes=mp.host_memory_bytes,
                        cpus=e.cpu_cores(mp.evaluation.tp * mp.evaluation.pp))
    # the token goes to the download only: every engine loads from the cache its download filled
    # (vLLM, SGLang and TGI with HF_HUB_OFFLINE=1), so a secret it never uses stays out of it
    env = tuple(e.env(ec))
    disk = next((t for t in ec.kv_offload if t.tier == "disk"), None)
    for index, pieces in enumerate(slots):
        node, indices = pieces[0]
        name = f"{m.name}-{index}"
        # each replica's disk tier is a directory of its own under the tier's path
        tier_mounts = (Mount("host", f"{disk.path.rstrip('/')}/{name}", KV_DISK_DIR, create=True),) if disk else ()
        services.append(Service(
            name=name, role="engine", image=images.parse(rm.image), command=tuple(e.argv(ec)),
            entrypoint=entrypoint, env=env, port=e.port, node=f"node-{node}",
            gpus=GpuAssignment(stack.gpu.vendor, tuple(indices)), resources=resources, health=health,
            startup_budget_s=mp.startup_budget_s, metrics=e.metrics_endpoint(ec), mounts=tuple(mounts) + tier_mounts,
            depends_on=depends,
            group=m.name, index=index, replicas=replicas, autoscale=autoscale, engine=ec, origin=origin, cache_bytes=cache_bytes,
            drain=drain, stop_grace_s=STOP_GRACE_S,
        ))
    return services, files


def drain_script() -> str:
    from importlib import resources

    return resources.files("stackc.engines").joinpath("drain_agent.py").read_text()


def features(stack: ResolvedStack, plan: Plan) -> list[Feature]:
    """What this deployment asks for that some targets cannot express (checked per target)."""
    spec, where = stack.spec, stack.where
    out: list[Feature] = []
    for rm in stack.models:
        m, i = rm.spec, rm.index
        if not isinstance(m.replicas, int):
            out.append(Feature("replica-range", where("models", i, "replicas"), m.name, (m.name,)))
            if m.replicas.min == 0:
                out.append(Feature("scale-to-zero", where("models", i, "replicas", "min"), m.name, (m.name,)))
        if m.autoscale is not None:
            out.append(Feature("autoscale", where("models", i, "autoscale", key=True), m.name, (m.name,)))
        engine_span = where("models", i, "engine") if m.engine else where("models", i, "model")
        out.append(Feature("engine", engine_span, rm.engine.name, (m.name,)))
        out.append(Feature("weights", where("models", i, "weights" if m.weights else "model"), rm.artifact.kind, (m.name,)))
    for mp in plan.models:
        if mp.gpus_per_replica > stack.gpus_per_node:
            i = mp.model.index
            out.append(Feature("replica-spans-nodes", where("models", i, key=True), mp.model.name, (mp.model.name,)))
    if plan.shared_groups:  # a cluster gives each pod whole GPUs: does the stack still fit?
        whole = [(mp.model.name, mp.gpus_per_replica, mp.replicas_max) for mp in plan.models]
        fits = place(whole, stack.gpus_per_node, stack.nodes) is not None
        index = {rm.spec.name: rm.index for rm in stack.models}
        for group in plan.shared_groups:
            out.append(Feature("shared-gpu", where("models", index[group[0]], key=True), models=tuple(group), fits=fits))
    if stack.provider == "on-prem":
        out.append(Feature("on-prem", where("hardware", "provider") or where("hardware", key=True), ""))
    else:
        out.append(Feature("provider", where("hardware", "provider"), stack.provider))
    if stack.nodes > 1:
        one = place(demands_of(plan), stack.gpus_per_node, 1) is not None
        out.append(Feature("multi-node", where("hardware", "nodes"), nodes=stack.nodes, fits=one))
    if stack.gpu.vendor != "nvidia":
        out.append(Feature("gpu", where("hardware", "gpu"), stack.gpu.id, vendor=stack.gpu.vendor))
    gw = spec.gateway
    if gw is not None and gw.tls is not None:
        out.append(Feature("tls-edge", where("gateway", "tls", key=True)))
    else:  # published in plain HTTP wherever the target publishes ports beyond the machine
        exposed = ("the gateway", "the chat UI") if gw is not None and gw.ui != "none" else ("the gateway",)
        out.append(Feature("plain-edge", where("gateway", key=True) or where("name", key=True), " and ".join(exposed)))
    t = spec.tiering
    if t is not None:
        if t.kv_cache:
            out.append(Feature("kv-tiers", where("tiering", "kv_cache", key=True), ", ".join(x.tier for x in t.kv_cache)))
        if t.routing != "round-robin":
            out.append(Feature("routing", where("tiering", "routing"), t.routing))
        if t.overflow:
            out.append(Feature("overflow", where("tiering", "overflow", key=True), ", ".join(o.name for o in t.overflow)))
    return out
