"""KV-cache tiers: the mechanism each engine runs them on, what lands in argv, environment and
mounts, and the host memory the planner asks for (SC412), with help lines that hold."""

from __future__ import annotations

import re

import pytest

from stackc.ir import SecretRef, ServerPool
from stackc.pipeline import analyse, open_spec
from stackc.targets import get as get_target

from .conftest import write_spec

GIB = 1024**3


def build(tmp_path, models: str, tiers: str, hardware: str = "{gpu: h100-sxm, gpus_per_node: 8}", secrets: str = ""):
    text = (f"stack: v1\nname: t\nhardware: {hardware}\nmodels:\n{models}"
            f"tiering:\n  kv_cache: {tiers}\n"
            f"gateway: {{api_key: {{secret: K}}}}\nsecrets: {{K: {{}}{secrets}}}\n")
    session = open_spec(str(write_spec(tmp_path, text)), "stack.yaml")
    unit = analyse(session, None)
    return unit, [d for d in session.diagnostics + unit.diagnostics]


def codes(diags, severity="error"):
    return sorted(d.code for d in diags if d.severity == severity)


def engine_services(unit):
    return [s for s in unit.deployment.services if s.role == "engine"]


LLAMA_8B = "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, concurrency: 4%s}\n"


def test_vllm_cpu_tier_alone_runs_on_native_offloading(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", gpus: 2", "[{tier: cpu, size: 64GiB}]")
    assert codes(diags) == []
    (s,) = engine_services(unit)
    argv = list(s.command)
    # the size is per replica: vLLM's flag is the total over the TP ranks
    assert argv[argv.index("--kv-offloading-size") + 1] == "64.0"
    assert argv[argv.index("--kv-offloading-backend") + 1] == "native"
    assert "--kv-transfer-config" not in argv
    assert not any(k.startswith("LMCACHE_") for k, _ in s.env)
    # from 0.27 the CPU tier lives in one /dev/shm file: the shm grows by the tier
    assert s.resources.shm_bytes == 16 * GIB + 64 * GIB


def test_vllm_disk_and_redis_tiers_run_on_lmcache_through_the_environment(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", gpus: 2, replicas: 2",
                        "[{tier: cpu, size: 64GiB}, {tier: disk, size: 500GiB, path: /var/cache/kv}, "
                        "{tier: redis, url: {secret: KV_REDIS_URL}}]", secrets=", KV_REDIS_URL: {}")
    assert codes(diags) == []
    replicas = engine_services(unit)
    assert len(replicas) == 2
    for s in replicas:
        argv = list(s.command)
        config = argv[argv.index("--kv-transfer-config") + 1]
        assert config == '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'
        assert "--kv-offloading-size" not in argv
        env = dict(s.env)
        # LMCache sizes are GiB per rank (TP 2 here); the spec's are per replica
        assert env["LMCACHE_LOCAL_CPU"] == "True" and env["LMCACHE_MAX_LOCAL_CPU_SIZE"] == "32.0"
        assert env["LMCACHE_LOCAL_DISK"] == "file:///kv-cache/" and env["LMCACHE_MAX_LOCAL_DISK_SIZE"] == "250.0"
        assert env["LMCACHE_REMOTE_URL"] == SecretRef("KV_REDIS_URL")
    disks = [m for s in replicas for m in s.mounts if m.target == "/kv-cache"]
    assert [m.source for m in disks] == ["/var/cache/kv/chat-0", "/var/cache/kv/chat-1"]
    assert all(m.kind == "host" and m.create for m in disks)

    files = get_target("compose").emit(unit.deployment, "stack.yaml")
    compose = files["compose.yaml"].decode()
    assert 'LMCACHE_REMOTE_URL: "${KV_REDIS_URL:?' in compose
    assert "create_host_path: true" in compose
    assert "KV_REDIS_URL=\n" in files[".env.example"].decode()


def test_lmcache_without_a_cpu_tier_stages_through_its_default_buffer(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % "", "[{tier: disk, size: 100GiB, path: /kv}]")
    assert codes(diags) == []
    (s,) = engine_services(unit)
    env = dict(s.env)
    assert env["LMCACHE_LOCAL_CPU"] == "False" and env["LMCACHE_MAX_LOCAL_CPU_SIZE"] == "5.0"
    plan = unit.plan.as_json()
    assert plan["models"][0]["host_memory_gib"] == 4 + 4 + 5  # engine, one worker, the staging buffer


def test_vllm_before_0_14_runs_no_tiers(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", image: vllm/vllm-openai:v0.11.0", "[{tier: cpu, size: 16GiB}]")
    (d,) = [d for d in diags if d.code == "SC512"]
    assert "vLLM runs KV-cache tiers from 0.14.0" in d.message
    assert "vllm/vllm-openai:v0.33.0" in d.help


def test_lmcache_tiers_are_refused_on_amd(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % "", "[{tier: disk, size: 10GiB, path: /kv}]",
                        hardware="{gpu: mi300x, gpus_per_node: 8}")
    (d,) = [d for d in diags if d.code == "SC512"]
    assert "ROCm" in d.message and "`cpu`" in d.help
    unit, diags = build(tmp_path, LLAMA_8B % "", "[{tier: cpu, size: 10GiB}]", hardware="{gpu: mi300x, gpus_per_node: 8}")
    assert codes(diags) == []


def test_sglang_runs_cpu_and_disk_on_its_hierarchical_cache(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", engine: sglang, gpus: 2",
                        "[{tier: cpu, size: 64GiB}, {tier: disk, size: 200GiB, path: /kv}]")
    assert codes(diags) == []
    (s,) = engine_services(unit)
    argv = list(s.command)
    assert "--enable-hierarchical-cache" in argv
    assert argv[argv.index("--hicache-size") + 1] == str(64 * GIB // 2 // 10**9)  # whole GB per rank
    assert argv[argv.index("--hicache-storage-backend") + 1] == "file"
    env = dict(s.env)
    assert env["SGLANG_HICACHE_FILE_BACKEND_STORAGE_DIR"] == "/kv-cache"
    assert env["SGLANG_HICACHE_FILE_BACKEND_MAX_SIZE"] == str(200 * GIB // 2)


@pytest.mark.parametrize("tiers,why", [
    ("[{tier: redis, url: {secret: R}}]", "no Redis"),
    ("[{tier: disk, size: 10GiB, path: /kv}]", "add a `cpu` tier above it"),
])
def test_sglang_tiers_it_cannot_run(tmp_path, tiers, why):
    unit, diags = build(tmp_path, LLAMA_8B % ", engine: sglang", tiers, secrets=", R: {}")
    (d,) = [d for d in diags if d.code == "SC512"]
    assert why in d.message


@pytest.mark.parametrize("engine,model", [
    ("llama.cpp", "{name: chat, model: Qwen/Qwen2.5-7B-Instruct, weights: 'hf.co/Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M', "
                  "engine: llama.cpp, max_context: 8192}"),
    ("ollama", "{name: chat, model: Qwen/Qwen2.5-7B-Instruct, weights: 'qwen2.5:7b-instruct-q4_K_M', engine: ollama, "
               "quantization: gguf-q4_k_m, max_context: 8192}"),
    ("tgi", "{name: chat, model: meta-llama/Llama-3.1-8B-Instruct, engine: tgi, max_context: 8192}"),
])
def test_engines_without_tiers_say_so(tmp_path, engine, model):
    unit, diags = build(tmp_path, f"  - {model}\n", "[{tier: cpu, size: 8GiB}]")
    (d,) = [d for d in diags if d.code == "SC512"]
    assert "keeps its KV cache in GPU memory only" in d.message
    assert d.span.line == 7  # `kv_cache:` under `tiering:`


def test_tiers_do_not_apply_to_embedding_models(tmp_path):
    unit, diags = build(tmp_path, "  - {name: embed, model: BAAI/bge-m3, task: embed, engine: sglang}\n",
                        "[{tier: redis, url: {secret: R}}]", secrets=", R: {}")
    assert codes(diags) == []
    assert unit.plan.as_json()["models"][0]["kv_tiers"] == []


def test_tensorrt_llm_offloads_to_host_memory_per_rank(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", engine: tensorrt-llm, gpus: 2", "[{tier: cpu, size: 64GiB}]")
    assert codes(diags) == []
    (options,) = [f for f in unit.deployment.files if f.path.endswith("tensorrt-llm-options.yaml")]
    assert options.content["kv_cache_config"]["host_cache_size"] == 32 * GIB
    unit, diags = build(tmp_path, LLAMA_8B % ", engine: tensorrt-llm", "[{tier: disk, size: 64GiB, path: /kv}]")
    assert "SC512" in codes(diags)


# ---- host memory (SC412) and the instance type it picks


def test_on_prem_node_without_the_ram_is_refused_with_a_size_that_fits(tmp_path):
    models = LLAMA_8B % ", gpus: 1, replicas: 4"
    hardware = "{gpu: h100-sxm, gpus_per_node: 8, memory_per_node: 256GiB}"
    unit, diags = build(tmp_path, models, "[{tier: cpu, size: 64GiB}]", hardware)
    (d,) = [d for d in diags if d.code == "SC412"]
    # 4 replicas x (4 + 4 GiB engine + 64 GiB tier) = 288 GiB; 256 GiB less 10% = 230.4 GiB
    assert "needs 288 GiB of host memory" in d.message and "230 GiB after 10%" in d.message
    size = re.search(r"`size: (\d+)GiB`", d.help).group(1)
    unit, diags = build(tmp_path, models, f"[{{tier: cpu, size: {size}GiB}}]", hardware)
    assert "SC412" not in codes(diags)
    unit, diags = build(tmp_path, models, f"[{{tier: cpu, size: {int(size) + 1}GiB}}]", hardware)
    assert "SC412" in codes(diags)  # the largest that fits


def test_cloud_instance_type_is_chosen_for_the_cpu_tier(tmp_path):
    hardware = "{gpu: l40s, gpus_per_node: 1, provider: aws, region: us-east-1}"
    plain, _ = build(tmp_path, LLAMA_8B % "", "[]", hardware)
    tiered, diags = build(tmp_path, LLAMA_8B % "", "[{tier: cpu, size: 64GiB}]", hardware)
    assert codes(diags) == []
    assert plain.plan.instance.ram_gib < 64 <= tiered.plan.instance.ram_gib * 0.9 - 8
    assert tiered.plan.instance.gpu_count == 1
    huge, diags = build(tmp_path, LLAMA_8B % "", "[{tier: cpu, size: 4TiB}]", hardware)
    (d,) = [d for d in diags if d.code == "SC412"]
    assert "no instance type with these GPUs and more RAM" in d.help


def test_plan_reports_tiers_host_memory_and_disk_per_node(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", replicas: 2",
                        "[{tier: cpu, size: 32GiB}, {tier: disk, size: 100GiB, path: /kv}]")
    plan = unit.plan.as_json()
    (m,) = plan["models"]
    assert m["kv_tiers"] == [{"tier": "cpu", "size_gib": 32.0}, {"tier": "disk", "size_gib": 100.0}]
    assert m["host_memory_gib"] == 4 + 4 + 32
    (node,) = plan["nodes"]
    assert node["host_memory_gib_needed"] == 2 * 40 and node["kv_disk_gib"] == 200
    assert node["host_memory_gib_usable"] is None  # on-prem without `memory_per_node`


def test_native_offloading_before_0_27_pins_powers_of_two_per_rank(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", gpus: 2, image: vllm/vllm-openai:v0.20.0", "[{tier: cpu, size: 20GiB}]")
    assert codes(diags) == []
    # 10 GiB per worker is pinned as 16 GiB (PyTorch's caching host allocator rounds up)
    assert unit.plan.as_json()["models"][0]["host_memory_gib"] == 4 + 2 * 4 + 2 * 16


def test_prefix_aware_routing_with_prefix_caching_off_is_a_warning(tmp_path):
    text = ("stack: v1\nname: t\nhardware: {gpu: h100-sxm, gpus_per_node: 8}\nmodels:\n"
            "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, replicas: 2, prefix_caching: false}\n"
            "tiering: {routing: prefix-aware}\ngateway: {api_key: {secret: K}}\nsecrets: {K: {}}\n")
    session = open_spec(str(write_spec(tmp_path, text)), "stack.yaml")
    unit = analyse(session, None, upto="plan")
    (d,) = [d for d in unit.diagnostics if d.code == "SC513"]
    assert d.severity == "warning" and d.span.line == 5
    assert "remove `prefix_caching: false`" in d.help


# ---- the router and the gateway's overflow, as generated (tests/integration runs them)


def stack_with(tmp_path, tiering: str, replicas: int = 2, secrets: str = ""):
    text = ("stack: v1\nname: t\nhardware: {gpu: h100-sxm, gpus_per_node: 8}\nmodels:\n"
            f"  - {{name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, replicas: {replicas}}}\n"
            "  - {name: embed, model: BAAI/bge-m3, task: embed}\n"
            f"tiering: {tiering}\ngateway: {{api_key: {{secret: K}}}}\nsecrets: {{K: {{}}{secrets}}}\n")
    session = open_spec(str(write_spec(tmp_path, text)), "stack.yaml")
    unit = analyse(session, None)
    return unit, session.diagnostics + unit.diagnostics


def config(unit, path):
    (f,) = [f for f in unit.deployment.files if f.path == path]
    return f.content


@pytest.mark.parametrize("routing,balance", [
    ("round-robin", ["balance", "roundrobin"]),
    ("least-load", ["balance", "leastconn"]),
    ("session", ["balance", "hdr(x-session-id)"]),
    ("prefix-aware", ["balance", "hash", "var(txn.prefix)"]),
])
def test_each_routing_mode_is_one_haproxy_balance_rule(tmp_path, routing, balance):
    unit, diags = stack_with(tmp_path, f"{{routing: {routing}}}")
    assert codes(diags) == []
    sections = {s["section"]: s["lines"] for s in config(unit, "router/haproxy.cfg")}
    assert set(sections) >= {"frontend chat", "backend chat"} and "backend embed" not in sections  # one replica
    assert balance in sections["backend chat"]
    (pool,) = [line for line in sections["backend chat"] if isinstance(line, ServerPool)]
    assert pool.replicas == ("chat-0", "chat-1") and pool.port == 8000
    gateway = config(unit, "gateway/config.yaml")
    (chat,) = [d for d in gateway["model_list"] if d["model_name"] == "chat"]
    assert chat["litellm_params"]["api_base"].service == "router"
    (embed,) = [d for d in gateway["model_list"] if d["model_name"] == "embed"]
    assert embed["litellm_params"]["api_base"].service == "embed-0"  # one replica: no router
    forwards = gateway["general_settings"].get("forward_client_headers_to_llm_api", False)
    assert forwards == (routing == "session")


def test_no_router_when_every_model_runs_one_replica(tmp_path):
    unit, _ = stack_with(tmp_path, "{routing: least-load}", replicas=1)
    assert [s for s in unit.deployment.services if s.role == "router"] == []


OVERFLOW = "{{overflow: [{{name: burst, base_url: 'https://api.example.com/v1', model: big, api_key: {{secret: B}}, when: {when}}}]}}"


def test_overflow_on_saturation_caps_local_requests_and_orders_the_hosted_api_after(tmp_path):
    unit, diags = stack_with(tmp_path, OVERFLOW.format(when="[saturated, error]"), secrets=", B: {}")
    assert codes(diags) == [] and codes(diags, "warning") == []
    chat = [d for d in config(unit, "gateway/config.yaml")["model_list"] if d["model_name"] == "chat"]
    local, hosted = chat
    # default max_in_flight: what both replicas run at once (vLLM's 1024 sequences on an H100)
    assert local["litellm_params"]["order"] == 1 and local["litellm_params"]["max_parallel_requests"] == 2048
    assert hosted["litellm_params"] == {"model": "openai/big", "api_base": "https://api.example.com/v1", "order": 2,
                                        "timeout": 600, "stream_timeout": 600, "api_key": "os.environ/B"}
    embed = [d for d in config(unit, "gateway/config.yaml")["model_list"] if d["model_name"] == "embed"]
    assert len(embed) == 1 and "order" not in embed[0]["litellm_params"]  # overflow is for generative models
    gateway = next(s for s in unit.deployment.services if s.role == "gateway")
    assert dict(gateway.env)["B"] == SecretRef("B")


def test_overflow_on_errors_alone_sets_no_cap(tmp_path):
    unit, diags = stack_with(tmp_path, OVERFLOW.format(when="[error]"), secrets=", B: {}")
    local = [d for d in config(unit, "gateway/config.yaml")["model_list"] if d["model_name"] == "chat"][0]
    assert local["litellm_params"]["order"] == 1 and "max_parallel_requests" not in local["litellm_params"]


def test_overflow_for_long_prompts_alone_is_a_context_window_fallback(tmp_path):
    unit, diags = stack_with(tmp_path, OVERFLOW.format(when="[context_too_long]"), secrets=", B: {}")
    gateway = config(unit, "gateway/config.yaml")
    names = [d["model_name"] for d in gateway["model_list"]]
    assert names.count("chat") == 1 and "chat--long-context" in names
    assert gateway["router_settings"]["context_window_fallbacks"] == [{"chat": ["chat--long-context"]}]
    local = [d for d in gateway["model_list"] if d["model_name"] == "chat"][0]
    assert "order" not in local["litellm_params"]


def test_saturation_without_errors_is_a_warning_that_errors_overflow_too(tmp_path):
    unit, diags = stack_with(tmp_path, OVERFLOW.format(when="[saturated]"), secrets=", B: {}")
    (d,) = [d for d in diags if d.code == "SC514"]
    assert d.severity == "warning" and "add `error`" in d.help


def test_a_session_header_the_gateway_drops_is_refused(tmp_path):
    unit, diags = stack_with(tmp_path, "{routing: session, session_key: conversation}")
    (d,) = [d for d in diags if d.code == "SC515"]
    assert "`session_key: x-conversation`" in d.help
    unit, diags = stack_with(tmp_path, "{routing: session, session_key: x-conversation}")
    assert codes(diags) == []


def test_nodes_in_the_ir_carry_host_memory_and_kv_disk(tmp_path):
    unit, _ = build(tmp_path, LLAMA_8B % ", replicas: 2", "[{tier: cpu, size: 32GiB}, {tier: disk, size: 100GiB, path: /kv}]")
    (node,) = unit.deployment.nodes
    assert node.host_memory_bytes == 2 * 40 * GIB and node.kv_disk_bytes == 2 * 100 * GIB


def test_session_routing_with_a_hosted_api_warns_that_x_headers_reach_it(tmp_path):
    tiering = ("{routing: session, overflow: [{name: burst, base_url: 'https://api.example.com/v1', model: big, "
               "api_key: {secret: B}}]}")
    unit, diags = stack_with(tmp_path, tiering, secrets=", B: {}")
    (d,) = [d for d in diags if d.code == "SC705"]
    assert d.severity == "warning" and "api.example.com" in d.message and "Authorization: Bearer" in d.help


def test_host_memory_help_holds_where_the_engine_rounds_pinned_memory(tmp_path):
    # vLLM 0.20 pins each worker's share rounded up to a power of two: the help is re-planned, not divided
    models = LLAMA_8B % ", gpus: 2, replicas: 2, image: vllm/vllm-openai:v0.20.0"
    hardware = "{gpu: h100-sxm, gpus_per_node: 8, memory_per_node: 160GiB}"
    unit, diags = build(tmp_path, models, "[{tier: cpu, size: 64GiB}]", hardware)
    (d,) = [d for d in diags if d.code == "SC412"]
    size = int(re.search(r"`size: (\d+)GiB`", d.help).group(1))
    unit, diags = build(tmp_path, models, f"[{{tier: cpu, size: {size}GiB}}]", hardware)
    assert "SC412" not in codes(diags)


def test_host_memory_help_when_no_tier_size_can_fit(tmp_path):
    unit, diags = build(tmp_path, LLAMA_8B % ", replicas: 4", "[{tier: cpu, size: 8GiB}]",
                        "{gpu: h100-sxm, gpus_per_node: 8, memory_per_node: 32GiB}")
    (d,) = [d for d in diags if d.code == "SC412"]
    assert d.help == "the engines alone need 32 GiB: run fewer replicas on this node"
