"""The services around the engines: the gateway, Prometheus, Grafana, the DCGM exporter, the UI.

Each function returns IR services, config files (as data with symbolic Endpoints) and the
secrets stackc declares for them. Images come from `images.py`; nothing here is target-specific.
"""

from __future__ import annotations

from typing import Optional

from . import images
from .engines import get as get_engine
from .engines.base import python_http_probe
from .ir import (ConfigFile, Dependency, Endpoint, GpuAssignment, Health, Metrics, Mount, Node, PortBinding,
                 Resources, SecretDecl, SecretRef, Service, Volume)
from .planner import Plan
from .resolve import ResolvedStack
from .spec import Stack

GATEWAY = "gateway"
GATEWAY_PORT = 4000  # LiteLLM's port inside its container
GATEWAY_CONFIG = "gateway/config.yaml"
STREAM_TIMEOUT_S = 600  # long generations stream for minutes; the gateway must not cut them


def _upstream(service: Service) -> dict:
    """One LiteLLM deployment for one engine replica."""
    ec = service.engine
    assert ec is not None and service.port is not None
    engine = get_engine(ec.engine)
    served = engine.served_model(ec)
    if ec.engine == "ollama":
        provider = "ollama" if ec.task != "generate" else "ollama_chat"
        return {"model": f"{provider}/{served}", "api_base": Endpoint(service.name, service.port)}
    return {"model": f"hosted_vllm/{served}", "api_base": Endpoint(service.name, service.port, "/v1")}


def gateway(spec: Stack, plan: Plan, engines: list[Service]) -> tuple[list[Service], list[ConfigFile], list[SecretDecl]]:
    """The one OpenAI-compatible endpoint: the LiteLLM proxy, one model group per served name."""
    model_list = []
    modes = {"generate": "chat", "embed": "embedding", "rerank": "rerank"}
    for replica in engines:
        ec = replica.engine
        assert ec is not None
        names = [ec.served_name, *ec.served_names]
        for name in names:
            model_list.append({
                "model_name": name,
                "litellm_params": {**_upstream(replica), "timeout": STREAM_TIMEOUT_S, "stream_timeout": STREAM_TIMEOUT_S},
                "model_info": {"id": f"{replica.name}-{name}" if name != ec.served_name else replica.name,
                               "mode": modes[ec.task]},
            })
        for adapter, _ in ec.adapters:
            params = _upstream(replica)
            params["model"] = params["model"].split("/", 1)[0] + "/" + get_engine(ec.engine).adapter_model(ec, adapter)
            model_list.append({
                "model_name": adapter,
                "litellm_params": {**params, "timeout": STREAM_TIMEOUT_S, "stream_timeout": STREAM_TIMEOUT_S},
                "model_info": {"id": f"{replica.name}-{adapter}", "mode": "chat"},
            })
    routing = spec.tiering.routing if spec.tiering else "round-robin"
    config: dict = {
        "model_list": model_list,
        "router_settings": {
            "routing_strategy": "least-busy" if routing == "least-load" else "simple-shuffle",
            "num_retries": 1,
            "timeout": STREAM_TIMEOUT_S,
        },
        "litellm_settings": {"request_timeout": STREAM_TIMEOUT_S, "drop_params": True},
        "general_settings": {},
    }
    if spec.observability and (spec.observability.metrics or spec.observability.dashboards):
        # Prometheus is open source in LiteLLM (PR #16689); since v1.85 /metrics wants a key by
        # default, which Prometheus would have to hold in its config: the endpoint carries
        # counters and model names, no secrets, so it is opened on the stack's network
        config["litellm_settings"].update({"callbacks": ["prometheus"], "require_auth_for_metrics_endpoint": False})
    env: list = []
    secrets: list[SecretDecl] = []
    gw = spec.gateway
    if gw and gw.api_key:
        config["general_settings"]["master_key"] = f"os.environ/{gw.api_key.secret}"
        env.append((gw.api_key.secret, SecretRef(gw.api_key.secret)))
    port = gw.port if gw else 8080
    service = Service(
        name=GATEWAY, role="gateway", image=images.GATEWAY_LITELLM.ref,
        command=("--config", "/etc/litellm/config.yaml", "--port", str(GATEWAY_PORT)),
        env=tuple(env), port=GATEWAY_PORT, published=(PortBinding(port, GATEWAY_PORT),),
        metrics=Metrics(GATEWAY_PORT) if "callbacks" in config["litellm_settings"] else None,
        health=Health(GATEWAY_PORT, "/health/liveliness", python_http_probe(GATEWAY_PORT, "/health/liveliness")),
        startup_budget_s=60,
        mounts=(Mount("file", GATEWAY_CONFIG, "/etc/litellm/config.yaml", read_only=True),),
        # no depends_on on the engines: the gateway starts at once, and a model that is still
        # loading answers 503 through it instead of holding every other model back
    )
    return [service], [ConfigFile(GATEWAY_CONFIG, "yaml", config)], secrets


PROMETHEUS = "prometheus"
GRAFANA = "grafana"
DCGM = "dcgm-exporter"


def observability(spec: Stack, stack: ResolvedStack, engines: list[Service], nodes: tuple[Node, ...],
                  gateway: Optional[Service] = None):
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
                name=name, role="gpu-metrics", image=images.DCGM_EXPORTER.ref, port=9400, node=node.name,
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
    if gateway is not None and gateway.metrics is not None:
        scrape.append({"job_name": "gateway", "metrics_path": gateway.metrics.path, "static_configs": [{
            "targets": [Endpoint(gateway.name, gateway.metrics.port, form="address")]}]})
    for s in services:
        if s.role == "gpu-metrics":
            scrape.append({"job_name": s.name, "static_configs": [{
                "targets": [Endpoint(s.name, 9400, form="address")], "labels": {"node": s.node}}]})
    config = {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"}, "scrape_configs": scrape}
    files.append(ConfigFile("prometheus/prometheus.yml", "yaml", config))
    volumes.append(Volume("prometheus-data", "Prometheus time series"))
    services.append(Service(
        name=PROMETHEUS, role="metrics", image=images.PROMETHEUS.ref,
        command=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                 "--storage.tsdb.retention.time=15d"),
        port=9090, published=(PortBinding(9090, 9090, "127.0.0.1"),),
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
        volumes.append(Volume("grafana-data", "Grafana state"))
        services.append(Service(
            name=GRAFANA, role="dashboards", image=images.GRAFANA.ref, port=3000,
            published=(PortBinding(3001, 3000, "127.0.0.1"),),
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
        name=UI, role="ui", image=images.OPEN_WEBUI.ref, port=8080,
        published=(PortBinding(gw.ui_port, 8080),), env=tuple(env),
        health=Health(8080, "/health", ("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health")),
        startup_budget_s=120,
        mounts=(Mount("volume", "open-webui-data", "/app/backend/data"),),
        depends_on=(Dependency(GATEWAY, "healthy"),),
    )
    secrets = [SecretDecl("WEBUI_SECRET_KEY", "Open WebUI's session signing key (declared by stackc)", True)]
    return [service], [Volume("open-webui-data", "Open WebUI users and chats")], secrets
