"""The services around the engines: the gateway, Prometheus, Grafana, the DCGM exporter, the UI.

Each function returns IR services, config files (as data with symbolic Endpoints) and the
secrets stackc declares for them. Images come from `images.py`; nothing here is target-specific.
"""

from __future__ import annotations

from typing import Optional

from . import images
from .engines import get as get_engine
from .engines.base import python_http_probe
from .ir import (LOOPBACK, ConfigFile, Dependency, EngineConfig, Endpoint, GpuAssignment, Health, Metrics, Mount, Node,
                 PortBinding, Resources, SecretDecl, SecretRef, Service, Volume)
from .plan import Plan
from .resolve import ResolvedStack
from .spec import Stack

GATEWAY = "gateway"
GATEWAY_PORT = 4000  # LiteLLM's port inside its container
GATEWAY_CONFIG = "gateway/config.yaml"
STREAM_TIMEOUT_S = 600  # long generations stream for minutes; the gateway must not cut them


def _upstream(ec: EngineConfig, base: Endpoint, model: Optional[str] = None) -> dict:
    """LiteLLM's parameters for one upstream speaking the engine's API at `base`."""
    engine = get_engine(ec.engine)
    return engine.gateway_upstream(ec, model or engine.served_model(ec), base)


def _local_targets(replicas: list[Service], routed: dict[str, Endpoint]) -> list[tuple[str, Endpoint]]:
    """(deployment id, address): the model's router when it has one, else each replica."""
    group = replicas[0].group or replicas[0].name
    if group in routed:
        return [(f"{group}-router", routed[group])]
    return [(r.name, Endpoint(r.name, r.port or 0, "/v1")) for r in replicas]


def gateway(spec: Stack, plan: Plan, engines: list[Service], routed: dict[str, Endpoint]
            ) -> tuple[list[Service], list[ConfigFile], list[SecretDecl]]:
    """The one OpenAI-compatible endpoint: the LiteLLM proxy, one model group per served name.

    A group's local deployment is the model's router (or its one replica) at `order: 1`;
    overflow destinations follow at `order: 2, 3, ...`. LiteLLM tries a higher order when every
    deployment of the lower one failed: a local 5xx or timeout (`error`), or, with
    `max_parallel_requests` set to the model's `max_in_flight`, a request beyond it, which LiteLLM
    refuses inside the gateway without waiting (`saturated`). A prompt the engine rejects as
    longer than its context goes to the destinations that take `context_too_long` through
    `context_window_fallbacks`. Hosted deployments are sent the hosted model's name; clients
    keep the local one."""
    tiering = spec.tiering
    overflow = [o for o in tiering.overflow] if tiering else []
    routing = tiering.routing if tiering else "round-robin"
    model_list: list[dict] = []
    context_fallbacks: list[dict] = []
    by_model: dict[str, list[Service]] = {}
    for replica in engines:
        by_model.setdefault(replica.group or replica.name, []).append(replica)
    max_in_flight = {mp.model.name: mp.max_in_flight for mp in plan.models}
    for model, replicas in by_model.items():
        ec = replicas[0].engine
        assert ec is not None
        spill = [o for o in overflow if ec.task == "generate" and {"saturated", "error"} & set(o.when)]
        saturated = any("saturated" in o.when for o in spill)
        long = [o for o in overflow if ec.task == "generate" and "context_too_long" in o.when]
        names = [ec.served_name, *ec.served_names] + [adapter for adapter, _ in ec.adapters]
        for name in names:
            upstream_model = get_engine(ec.engine).adapter_model(ec, name) if name in dict(ec.adapters) else None
            for ident, address in _local_targets(replicas, routed):
                params = {**_upstream(ec, address, upstream_model), "timeout": STREAM_TIMEOUT_S,
                          "stream_timeout": STREAM_TIMEOUT_S}
                if spill:
                    params["order"] = 1
                if saturated:
                    params["max_parallel_requests"] = max_in_flight[model]
                model_list.append({
                    "model_name": name, "litellm_params": params,
                    "model_info": {"id": ident if name == ec.served_name else f"{ident}-{name}",
                                   "mode": MODES[ec.task]}})
            for order, o in enumerate(spill, start=2):
                model_list.append(_hosted(name, o, order, f"{model}-{o.name}" if name == ec.served_name
                                          else f"{model}-{o.name}-{name}"))
            if long:
                group = f"{name}--long-context"
                for order, o in enumerate(long, start=1):
                    model_list.append(_hosted(group, o, order, f"{model}-{o.name}-long-{name}"))
                context_fallbacks.append({name: [group]})
    config: dict = {
        "model_list": model_list,
        "router_settings": {
            "routing_strategy": "simple-shuffle",  # the router balances replicas; the gateway picks tiers
            # a deployment at max_parallel_requests answers an internal 429 at once: retrying
            # within the order fills every local slot before the next order takes the rest
            "num_retries": 3,
            "retry_policy": {"RateLimitErrorRetries": 3, "InternalServerErrorRetries": 1, "TimeoutErrorRetries": 0},
            "timeout": STREAM_TIMEOUT_S,
        },
        "litellm_settings": {"request_timeout": STREAM_TIMEOUT_S, "drop_params": True},
        "general_settings": {},
    }
    if context_fallbacks:
        config["router_settings"]["context_window_fallbacks"] = context_fallbacks
    if routing == "session":
        # LiteLLM passes `x-` headers upstream only when asked: the router hashes on one
        config["general_settings"]["forward_client_headers_to_llm_api"] = True
    if spec.observability and (spec.observability.metrics or spec.observability.dashboards):
        # Prometheus is open source in LiteLLM (PR #16689); since v1.85 /metrics wants a key by
        # default, which Prometheus would have to hold in its config: the endpoint carries
        # counters and model names, no secrets, so it is opened on the stack's network
        config["litellm_settings"].update({"callbacks": ["prometheus"], "require_auth_for_metrics_endpoint": False})
    # the proxy fetches a model price map from the internet at start unless told not to; the
    # copy it ships is enough, and a stack may have no way out
    env: list = [("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
                 # LiteLLM counts a streamed answer's tokens with a tokenizer it fetches from the Hub
                 # for model names like `llama-3` (Xenova/llama-3-tokenizer), retrying for about 30 s
                 # where there is no way out; offline it counts with the tiktoken it ships
                 ("HF_HUB_OFFLINE", "1")]
    gw = spec.gateway
    if gw and gw.api_key:
        config["general_settings"]["master_key"] = f"os.environ/{gw.api_key.secret}"
        env.append((gw.api_key.secret, SecretRef(gw.api_key.secret)))
    for o in overflow:
        if o.api_key and (o.api_key.secret, SecretRef(o.api_key.secret)) not in env:
            env.append((o.api_key.secret, SecretRef(o.api_key.secret)))
    port = gw.port if gw else 8080
    service = Service(
        name=GATEWAY, role="gateway", image=images.GATEWAY_LITELLM,
        command=("--config", "/etc/litellm/config.yaml", "--port", str(GATEWAY_PORT)),
        env=tuple(env), port=GATEWAY_PORT, published=(PortBinding(port, GATEWAY_PORT),),
        metrics=Metrics(GATEWAY_PORT, "/metrics/") if "callbacks" in config["litellm_settings"] else None,
        health=Health(GATEWAY_PORT, "/health/liveliness", python_http_probe(GATEWAY_PORT, "/health/liveliness")),
        startup_budget_s=60,
        mounts=(Mount("file", GATEWAY_CONFIG, "/etc/litellm/config.yaml", read_only=True),),
        # no depends_on on the engines: the gateway starts at once, and a model that is still
        # loading answers 503 through it (or overflows) instead of holding every other model back
    )
    return [service], [ConfigFile(GATEWAY_CONFIG, "yaml", config)], []


MODES = {"generate": "chat", "embed": "embedding", "rerank": "rerank"}


def _hosted(name: str, o, order: int, ident: str) -> dict:
    params: dict = {"model": f"openai/{o.model}", "api_base": o.base_url, "order": order,
                    "timeout": STREAM_TIMEOUT_S, "stream_timeout": STREAM_TIMEOUT_S}
    if o.api_key:
        params["api_key"] = f"os.environ/{o.api_key.secret}"
    return {"model_name": name, "litellm_params": params, "model_info": {"id": ident, "mode": "chat"}}


PROMETHEUS = "prometheus"
GRAFANA = "grafana"
DCGM = "dcgm-exporter"


def observability(spec: Stack, stack: ResolvedStack, engines: list[Service], nodes: tuple[Node, ...],
                  gateway: Optional[Service] = None, router: Optional[Service] = None):
    obs = spec.observability
    services: list[Service] = []
    files: list[ConfigFile] = []
    volumes: list[Volume] = []
    secrets: list[SecretDecl] = []
    if obs is None or not (obs.metrics or obs.dashboards or obs.gpu_metrics):
        return services, files, volumes, secrets

    if obs.gpu_metrics and stack.gpu.vendor == "nvidia":
        for node in nodes:
            name = DCGM if len(nodes) == 1 else f"{DCGM}-{node.name}"
            services.append(Service(
                name=name, role="gpu-metrics", image=images.DCGM_EXPORTER, port=9400, node=node.name,
                gpus=GpuAssignment(node.gpu_vendor, tuple(range(node.gpu_count))),
                resources=Resources(cap_add=("SYS_ADMIN",)), metrics=Metrics(9400),
            ))

    scrape = []
    groups: dict[str, list[Service]] = {}
    for s in engines:
        if s.metrics is not None:
            groups.setdefault(s.group or s.name, []).append(s)
    for group, members in groups.items():
        ec = members[0].engine
        assert ec is not None
        scrape.append({
            "job_name": f"engine-{group}",
            "metrics_path": members[0].metrics.path,  # type: ignore[union-attr]
            "static_configs": [{
                "targets": [Endpoint(s.name, s.metrics.port, form="address") for s in members],  # type: ignore[union-attr]
                "labels": {"model": group, "engine": ec.engine},
            }],
        })
    for component in (gateway, router):
        if component is not None and component.metrics is not None:
            scrape.append({"job_name": component.role, "metrics_path": component.metrics.path, "static_configs": [{
                "targets": [Endpoint(component.name, component.metrics.port, form="address")]}]})
    for s in services:
        if s.role == "gpu-metrics":
            scrape.append({"job_name": s.name, "static_configs": [{
                "targets": [Endpoint(s.name, 9400, form="address")], "labels": {"node": s.node}}]})
    config = {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"}, "scrape_configs": scrape}
    files.append(ConfigFile("prometheus/prometheus.yml", "yaml", config))
    volumes.append(Volume("prometheus-data"))
    services.append(Service(
        name=PROMETHEUS, role="metrics", image=images.PROMETHEUS,
        command=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                 "--storage.tsdb.retention.time=15d"),
        port=9090, published=(PortBinding(9090, 9090, LOOPBACK),),
        health=Health(9090, "/-/ready", ("wget", "-q", "--spider", "http://127.0.0.1:9090/-/ready")),
        mounts=(Mount("file", "prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml", read_only=True),
                Mount("volume", "prometheus-data", "/prometheus")),
    ))

    if obs.dashboards:
        secrets.append(SecretDecl("GRAFANA_ADMIN_PASSWORD", "Grafana's admin password (declared by stackc)", True))
        files.append(ConfigFile("grafana/provisioning/datasources/prometheus.yaml", "yaml", {
            "apiVersion": 1,
            "datasources": [{"name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy",
                             "url": Endpoint(PROMETHEUS, 9090), "isDefault": True}],
        }))
        files.append(ConfigFile("grafana/provisioning/dashboards/stackc.yaml", "yaml", {
            "apiVersion": 1,
            "providers": [{"name": "stackc", "type": "file", "disableDeletion": True,
                           "options": {"path": "/var/lib/grafana/dashboards"}}],
        }))
        files.append(ConfigFile("grafana/dashboards/stackc.json", "json", dashboard(spec.name, engines, obs.gpu_metrics)))
        volumes.append(Volume("grafana-data"))
        services.append(Service(
            name=GRAFANA, role="dashboards", image=images.GRAFANA, port=3000,
            published=(PortBinding(3001, 3000, LOOPBACK),),
            env=(("GF_SECURITY_ADMIN_PASSWORD", SecretRef("GRAFANA_ADMIN_PASSWORD")),
                 ("GF_USERS_ALLOW_SIGN_UP", "false"), ("GF_AUTH_ANONYMOUS_ENABLED", "false")),
            mounts=(Mount("file", "grafana/provisioning", "/etc/grafana/provisioning", read_only=True),
                    Mount("file", "grafana/dashboards", "/var/lib/grafana/dashboards", read_only=True),
                    Mount("volume", "grafana-data", "/var/lib/grafana")),
            depends_on=(Dependency(PROMETHEUS, "started"),),
        ))
    return services, files, volumes, secrets


def dashboard(stack_name: str, engines: list[Service], gpu_metrics: bool) -> dict:
    """A Grafana dashboard built from each engine's own metric names."""
    queries: dict[str, list[str]] = {"running": [], "waiting": [], "kv_usage": [], "generated_tokens": []}
    seen = set()
    for s in engines:
        ec = s.engine
        if ec is None or s.metrics is None or (ec.engine, ec.version) in seen:
            continue
        seen.add((ec.engine, ec.version))
        names = get_engine(ec.engine).metric_names(ec.version)
        for key in queries:
            if key in names:
                metric = names[key]
                expr = f"sum by (model) (rate({metric}[1m]))" if key == "generated_tokens" else f"sum by (model) ({metric})"
                if expr not in queries[key]:
                    queries[key].append(expr)
    titles = {"running": "Requests running", "waiting": "Requests waiting (queue depth)",
              "kv_usage": "KV-cache usage (0-1)", "generated_tokens": "Generated tokens / s"}
    panels = []
    for n, (key, exprs) in enumerate(queries.items()):
        if not exprs:
            continue
        panels.append(_panel(len(panels) + 1, titles[key], exprs, n))
    if gpu_metrics:
        panels.append(_panel(len(panels) + 1, "GPU utilisation (%)", ["avg by (gpu, Hostname) (DCGM_FI_DEV_GPU_UTIL)"], 4))
        panels.append(_panel(len(panels) + 1, "GPU memory used (MiB)", ["sum by (gpu, Hostname) (DCGM_FI_DEV_FB_USED)"], 5))
    return {
        "title": f"{stack_name}: models and GPUs",
        "uid": f"stackc-{stack_name}"[:40],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "tags": ["stackc"],
        "panels": panels,
    }


def _panel(pid: int, title: str, exprs: list[str], slot: int) -> dict:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "prometheus"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (slot % 2), "y": 8 * (slot // 2)},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": "{{model}}"} for i, e in enumerate(exprs)],
    }


UI = "open-webui"


def ui(spec: Stack) -> tuple[list[Service], list[Volume], list[SecretDecl]]:
    gw = spec.gateway
    if gw is None or gw.ui != "open-webui":
        return [], [], []
    env: list = [
        ("OPENAI_API_BASE_URL", Endpoint(GATEWAY, GATEWAY_PORT, "/v1")),
        ("ENABLE_OLLAMA_API", "false"),
        ("WEBUI_SECRET_KEY", SecretRef("WEBUI_SECRET_KEY")),
    ]
    if gw.api_key:
        env.append(("OPENAI_API_KEY", SecretRef(gw.api_key.secret)))
    service = Service(
        name=UI, role="ui", image=images.OPEN_WEBUI, port=8080,
        published=(PortBinding(gw.ui_port, 8080),), env=tuple(env),
        health=Health(8080, "/health", ("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health")),
        startup_budget_s=120,
        mounts=(Mount("volume", "open-webui-data", "/app/backend/data"),),
        depends_on=(Dependency(GATEWAY, "healthy"),),
    )
    secrets = [SecretDecl("WEBUI_SECRET_KEY", "Open WebUI's session signing key (declared by stackc)", True)]
    return [service], [Volume("open-webui-data")], secrets
