"""The planner: memory arithmetic, parallelism choice, capacity diagnostics whose help holds."""

from __future__ import annotations

import re

import pytest

from stackc import catalog, memory
from stackc.pipeline import analyse, open_spec

from .conftest import write_spec

GIB = 1024**3
CAT = catalog.load()


def plan_of(tmp_path, text, env=None):
    session = open_spec(str(write_spec(tmp_path, text)), "stack.yaml")
    unit = analyse(session, env, upto="plan")
    return unit, session.diagnostics + unit.diagnostics


def spec(model_lines: str, hardware: str = "{gpu: h100-sxm, gpus_per_node: 8}") -> str:
    return (f"stack: v1\nname: t\nhardware: {hardware}\nmodels:\n{model_lines}"
            "gateway: {api_key: {secret: K}}\nsecrets: {K: {}}\n")


# ---- memory arithmetic (facts-catalog.md section 1.3)

@pytest.mark.parametrize("repo,bf16_bytes_per_token", [
    ("meta-llama/Llama-3.1-8B-Instruct", 131072),
    ("meta-llama/Llama-3.3-70B-Instruct", 327680),
    ("meta-llama/Llama-3.1-405B-Instruct", 516096),
    ("Qwen/Qwen2.5-7B-Instruct", 57344),
    ("Qwen/Qwen3-8B", 147456),
    ("Qwen/Qwen3-235B-A22B", 192512),
    ("microsoft/phi-4", 204800),
    ("deepseek-ai/DeepSeek-V3", 70272),
])
def test_kv_bytes_per_token_match_the_facts(repo, bf16_bytes_per_token):
    shape = memory.kv_per_token(CAT.model(repo), "auto", "auto", tp=1, pp=1)
    assert shape.per_token == bf16_bytes_per_token


def test_fp8_kv_halves_and_mla_is_not_split_by_tp():
    llama = CAT.model("meta-llama/Llama-3.3-70B-Instruct")
    assert memory.kv_per_token(llama, "fp8", "auto", 1, 1).per_token == 327680 / 2
    assert memory.kv_per_token(llama, "auto", "auto", 8, 1).per_token == 327680 / 8
    # 8 KV heads: beyond TP 8 they are replicated, so KV per GPU stops shrinking
    assert memory.kv_per_token(llama, "auto", "auto", 16, 1).per_token == 327680 / 8
    ds = CAT.model("deepseek-ai/DeepSeek-R1")
    assert memory.kv_per_token(ds, "auto", "auto", 8, 1).per_token == 70272


def test_sliding_window_layers_are_capped_per_request():
    gemma = CAT.model("google/gemma-3-27b-it")
    shape = memory.kv_per_token(gemma, "auto", "auto", 1, 1)
    assert shape.full == 10 * 2 * 16 * 128 * 2 and shape.sliding == 52 * 2 * 16 * 128 * 2
    short = memory.kv_bytes_for_request(shape, 8192, 2048)
    long = memory.kv_bytes_for_request(shape, 131072, 2048)
    # past the window plus one batch, only the 10 global layers grow with the context
    assert long - short == pytest.approx(shape.full * (131072 - 8192))


def test_encoders_keep_no_kv():
    assert memory.kv_per_token(CAT.model("BAAI/bge-m3"), "auto", "auto", 1, 1).per_token == 0


@pytest.mark.parametrize("repo,quant,expected_gib", [
    ("meta-llama/Llama-3.1-8B-Instruct", "none", 14.96),      # 8.03 B x 2 bytes
    ("meta-llama/Llama-3.3-70B-Instruct", "fp8", 67.7),       # linear fp8, embeddings and head bf16
    ("Qwen/Qwen2.5-7B-Instruct", "gguf-q4_k_m", 4.34),          # 4.89 bits per weight
    ("deepseek-ai/DeepSeek-R1", "fp8", 626.6),
])
def test_weights(repo, quant, expected_gib):
    got = memory.weight_bytes_total(CAT.model(repo), quant, "auto") / GIB
    assert got == pytest.approx(expected_gib, rel=0.02)


def test_gpt_oss_mxfp4_quantizes_experts_only():
    oss = CAT.model("openai/gpt-oss-120b")
    gib = memory.weight_bytes_total(oss, "mxfp4", "auto") / GIB
    assert 58 < gib < 66  # the model card: fits one 80 GB GPU


@pytest.mark.parametrize("repo,tp,ok", [
    ("meta-llama/Llama-3.1-8B-Instruct", 8, True),
    ("meta-llama/Llama-3.1-8B-Instruct", 3, False),
    ("Qwen/Qwen2.5-7B-Instruct", 8, False),   # 28 heads
    ("Qwen/Qwen2.5-7B-Instruct", 4, True),
    ("microsoft/phi-4", 4, False),            # 10 KV heads
    ("microsoft/phi-4", 2, True),
])
def test_tensor_parallel_validity(repo, tp, ok):
    assert memory.tp_valid(CAT.model(repo), tp) is ok


# ---- decisions

def test_auto_picks_the_fewest_gpus_that_hold_the_concurrency(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.3-70B-Instruct, weights: RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic,"
        " quantization: fp8, kv_cache_dtype: fp8, max_context: 32768, concurrency: 16, gpu_memory_utilization: 0.9}\n"))
    assert not [d for d in diags if d.is_error]
    mp = unit.plan.models[0]
    assert mp.gpus_per_replica == 4  # SPEC.md's example: "auto = the fewest that fit (here 4)"
    assert mp.evaluation.max_concurrency >= 16


def test_vllm_defaults_follow_the_pinned_version(tmp_path):
    unit, _ = plan_of(tmp_path, spec("  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}\n"))
    assert unit.plan.models[0].evaluation.share == 0.92
    unit, _ = plan_of(tmp_path, spec("  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192,"
                                     " image: 'vllm/vllm-openai:v0.11.0'}\n"))
    assert unit.plan.models[0].evaluation.share == 0.90


def test_does_not_fit_and_every_suggested_fix_holds(tmp_path):
    """SPEC.md: help lines offer only fixes the planner has re-planned and found to hold."""
    base = "  - {name: big, model: meta-llama/Llama-3.3-70B-Instruct, max_context: 32768, concurrency: 32, gpus: 1}\n"
    _, diags = plan_of(tmp_path, spec(base))
    err = next(d for d in diags if d.is_error)
    assert err.code == "SC401" and "131.4 GiB" in err.message
    clauses = re.split(r"; so do |, (?=`)", err.help)
    assert len(clauses) >= 2, err.help
    for clause in clauses:
        line = base
        for part in re.findall(r"`([a-z_.]+: [^`]+)`", clause):
            key, value = part.split(": ", 1)
            if key == "gpus":
                line = line.replace("gpus: 1", f"gpus: {value}")
            elif key == "hardware.gpu":
                continue
            else:
                line = line.rstrip("}\n") + f", {key}: {value}}}\n"
        _, fixed = plan_of(tmp_path, spec(line))
        assert not [d for d in fixed if d.is_error], (clause, [d.message for d in fixed])


def test_kv_too_small_suggests_concurrency_and_context(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 131072, concurrency: 8, gpus: 1}\n",
        "{gpu: l40s, gpus_per_node: 1}"))
    err = next(d for d in diags if d.is_error)
    assert err.code == "SC402"
    assert "`concurrency:" in err.help or "`max_context:" in err.help


def test_not_enough_gpus_names_the_node_count_that_holds_them(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, gpus: 2, replicas: 5}\n"))
    err = next(d for d in diags if d.is_error)
    assert err.code == "SC405" and err.help == "set `hardware.nodes: 2`"


def test_invalid_tp_lists_valid_sizes(tmp_path):
    _, diags = plan_of(tmp_path, spec("  - {name: q, model: Qwen/Qwen2.5-7B-Instruct, gpus: 8, max_context: 8192}\n"))
    err = next(d for d in diags if d.is_error)
    assert err.code == "SC404" and "`1`, `2`, `4`" in err.help


def test_context_above_the_model_maximum(tmp_path):
    _, diags = plan_of(tmp_path, spec("  - {name: q, model: Qwen/Qwen2.5-7B-Instruct, max_context: 65536}\n"))
    err = next(d for d in diags if d.is_error)
    assert err.code == "SC403" and err.help == "`max_context: 32768`"


def test_cost_for_a_cloud_provider(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}\n",
        "{gpu: h100-sxm, gpus_per_node: 8, provider: aws, region: us-east-1}"))
    out = unit.plan.as_json()
    assert out["instance_type"] == "p5.48xlarge" and out["usd_per_hour"] == 55.04
    assert out["models"][0]["usd_per_hour"] == pytest.approx(55.04 / 8)


def test_unknown_instance_shape(tmp_path):
    _, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}\n",
        "{gpu: h100-sxm, gpus_per_node: 3, provider: aws, region: us-east-1}"))
    err = next(d for d in diags if d.is_error)
    assert err.code == "SC313" and "1, 8" in err.help


def test_cloud_without_region(tmp_path):
    _, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}\n",
        "{gpu: h100-sxm, gpus_per_node: 8, provider: gcp}"))
    assert any(d.code == "SC308" and "us-central1" in d.help for d in diags)


# ---- compatibility

@pytest.mark.parametrize("line,hardware,code,severity", [
    ("{name: m, model: meta-llama/Llama-3.1-8B-Instruct, weights: RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8,"
     " quantization: fp8, max_context: 8192}", "{gpu: a100-80gb, gpus_per_node: 1}", "SC503", "warning"),
    ("{name: m, model: meta-llama/Llama-3.1-8B-Instruct, weights: RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8,"
     " quantization: fp8, engine: tensorrt-llm, max_context: 8192}", "{gpu: a100-80gb, gpus_per_node: 1}", "SC502", "error"),
    ("{name: m, model: Qwen/Qwen2.5-7B-Instruct, weights: 'hf.co/Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M',"
     " quantization: gguf-q4_k_m, max_context: 8192}", "{gpu: l40s, gpus_per_node: 1}", "SC501", "error"),
    ("{name: m, model: Qwen/Qwen2.5-7B-Instruct, weights: 'hf.co/Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M',"
     " quantization: gguf-q4_k_m, image: 'vllm/vllm-openai:v0.20.0', max_context: 8192}", "{gpu: l40s, gpus_per_node: 1}",
     None, None),
    ("{name: m, model: meta-llama/Llama-3.1-8B-Instruct, engine: tensorrt-llm, max_context: 8192}",
     "{gpu: mi300x, gpus_per_node: 1}", "SC505", "error"),
    ("{name: m, model: meta-llama/Llama-3.1-8B-Instruct, quantization: awq, max_context: 8192}",
     "{gpu: l40s, gpus_per_node: 1}", "SC508", "error"),
    ("{name: m, model: meta-llama/Llama-3.1-8B-Instruct, quantization: fp8, max_context: 8192}",
     "{gpu: l40s, gpus_per_node: 1}", None, None),  # vLLM quantizes to FP8 while loading
    ("{name: m, model: BAAI/bge-m3, max_context: 8192}", "{gpu: l40s, gpus_per_node: 1}", "SC504", "error"),
    ("{name: m, model: BAAI/bge-m3, task: embed, engine: tgi}", "{gpu: l40s, gpus_per_node: 1}", "SC504", "error"),
    ("{name: m, model: Qwen/Qwen2.5-7B-Instruct, engine: ollama, weights: 'qwen2.5:7b', adapters: [{name: x, source: a/b}]}",
     "{gpu: rtx-4090, gpus_per_node: 1}", "SC507", "error"),
    ("{name: m, model: Qwen/Qwen2.5-7B-Instruct, engine: ollama}", "{gpu: rtx-4090, gpus_per_node: 1}", "SC509", "error"),
])
def test_compatibility_table(tmp_path, line, hardware, code, severity):
    _, diags = plan_of(tmp_path, spec(f"  - {line}\n", hardware))
    found = [(d.code, d.severity.value) for d in diags if d.code.startswith("SC5")]
    if code is None:
        assert found == [], [d.message for d in diags]
    else:
        assert (code, severity) in found, [d.message for d in diags]


@pytest.mark.parametrize("key", ["max-model-len", "max_model_len", "--max-model-len=4096", "-tp", "tensor_parallel_size"])
def test_engine_args_may_not_repeat_a_managed_flag(tmp_path, key):
    _, diags = plan_of(tmp_path, spec(
        f"  - {{name: m, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, engine_args: {{'{key}': 2}}}}\n"))
    err = next(d for d in diags if d.code == "SC511")
    assert err.span.line == 5


def test_engine_args_that_look_like_secrets(tmp_path):
    _, diags = plan_of(tmp_path, spec(
        "  - {name: m, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, engine_args: {api-key: abc}}\n"))
    assert any(d.code == "SC702" for d in diags)


def test_local_config_json(tmp_path):
    (tmp_path / "mymodel").mkdir()
    (tmp_path / "mymodel" / "config.json").write_text(
        '{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 16,'
        ' "hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 32, "num_key_value_heads": 8,'
        ' "head_dim": 64, "vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": true,'
        ' "torch_dtype": "bfloat16"}')
    unit, diags = plan_of(tmp_path, spec("  - {name: m, model: ./mymodel, weights: acme/my-model, max_context: 8192}\n",
                                         "{gpu: l4, gpus_per_node: 1}"))
    assert not [d for d in diags if d.is_error], [d.message for d in diags]
    info = unit.plan.models[0].model.info
    assert info.origin == "config.json" and info.params_b == pytest.approx(1.236, rel=0.01)


def test_broken_config_json_points_into_that_file(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"num_hidden_layers": 16,\n  "hidden_size": }')
    _, diags = plan_of(tmp_path, spec("  - {name: m, model: ./bad, weights: acme/x}\n", "{gpu: l4, gpus_per_node: 1}"))
    err = next(d for d in diags if d.code == "SC306")
    assert err.span.file.endswith("config.json") and err.span.line == 2


def test_inline_architecture(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: m, model: acme/custom-7b, architecture: {layers: 32, hidden_size: 4096, heads: 32, kv_heads: 8,"
        " vocab_size: 32000, params: 7.2, max_context: 32768}, max_context: 8192}\n", "{gpu: l40s, gpus_per_node: 1}"))
    assert not [d for d in diags if d.is_error] and unit.plan.models[0].evaluation.fits


def test_catalog_short_id_stands_for_its_repo(tmp_path):
    unit, diags = plan_of(tmp_path, spec("  - {name: m, model: llama-3.1-8b, max_context: 8192}\n"))
    assert not [d for d in diags if d.is_error], [d.message for d in diags]
    assert unit.plan.models[0].model.artifact.ref == "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize("config", [
    '{"num_hidden_layers": 1000000000, "hidden_size": 64, "num_attention_heads": 1, "vocab_size": 8}',
    '{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 1, "vocab_size": 1e400}',
    '{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 0, "vocab_size": 8}',
    '{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 1, "vocab_size": 8, "architectures": 0,'
    ' "kv_lora_rank": "big"}',
    '{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 1, "vocab_size": ' + "9" * 5000 + "}",
    '{"num_hidden_layers": "\\ud83d", "hidden_size": 64, "num_attention_heads": 1, "vocab_size": 8}',
])
def test_absurd_config_json_is_a_diagnostic(tmp_path, config):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(config)
    _, diags = plan_of(tmp_path, spec("  - {name: m, model: ./m, weights: a/b}\n", "{gpu: l4, gpus_per_node: 1}"))
    assert [d.code for d in diags if d.is_error] == ["SC306"]


def test_absurd_inline_architecture_is_a_diagnostic(tmp_path):
    _, diags = plan_of(tmp_path, spec(
        "  - {name: m, model: a/b, architecture: {layers: 2, hidden_size: 64, heads: 1, vocab_size: 8,"
        " params: 1e300, max_context: 8}}\n"))
    assert [d.code for d in diags if d.is_error] == ["SC206"]


def test_cost_per_million_tokens_and_break_even(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, tokens_per_day: 100000000,"
        " hosted_usd_per_million_tokens: 0.5}\n",
        "{gpu: h100-sxm, gpus_per_node: 1, provider: aws, region: us-east-1}"))
    model = unit.plan.as_json()["models"][0]
    assert model["instance_type"] == "p5.4xlarge" and model["usd_per_hour"] == 6.88
    assert model["usd_per_million_tokens"] == pytest.approx(6.88 * 24 / 100)
    assert model["break_even_tokens_per_day"] == int(6.88 * 24 / 0.5 * 1e6)
    assert model["cheaper_than_hosted"] is False and model["price_verified"] is True


def test_gcp_prices_add_the_gpus_to_the_vm(tmp_path):
    a2 = next(i for i in catalog.load().instances if i.name == "a2-highgpu-2g")
    assert a2.price_usd_per_hour == pytest.approx(1.47895 + 2 * 2.934, abs=1e-3) and not a2.price_verified
    assert "VM part" in a2.note


def test_llama_cpp_partial_offload_is_a_warning_with_the_layers_that_fit(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: Qwen/Qwen3-32B, engine: llama.cpp, weights: 'hf.co/Qwen/Qwen3-32B-GGUF:Q8_0',"
        " quantization: gguf-q8_0, max_context: 8192}\n", "{gpu: rtx-4090, gpus_per_node: 1}"))
    assert not [d for d in diags if d.is_error]
    warning = next(d for d in diags if d.code == "SC411")
    layers = unit.plan.models[0].evaluation.gpu_layers
    assert 0 < layers < 64 and f"{layers} of 64 layers" in warning.message and "slower" in warning.message


def test_pipeline_across_nodes_is_said(tmp_path):
    _, diags = plan_of(tmp_path, spec(
        "  - {name: big, model: meta-llama/Llama-3.1-405B-Instruct, max_context: 8192}\n",
        "{gpu: a100-80gb, gpus_per_node: 8, nodes: 2}"))
    assert any(d.code == "SC410" and "pipeline parallel 2 across nodes" in d.message for d in diags), [d.message for d in diags]


def test_small_models_share_a_gpu_with_split_memory_shares(tmp_path):
    unit, diags = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}\n"
        "  - {name: embed, model: BAAI/bge-m3, task: embed}\n"
        "  - {name: rerank, model: BAAI/bge-reranker-v2-m3, task: rerank}\n",
        "{gpu: l40s, gpus_per_node: 2}"))
    assert not [d for d in diags if d.is_error], [d.message for d in diags]
    plans = {mp.model.name: mp for mp in unit.plan.models}
    assert unit.plan.shared_groups == [("embed", "rerank")]
    shares = [plans[n].evaluation.share for n in ("embed", "rerank")]
    total = 44.42
    assert all(0 < s <= 0.45 for s in shares)
    assert sum(shares) + 2 * 0.5 / total <= 0.9  # the split leaves room for each CUDA context
    assert plans["chat"].evaluation.share == 0.92 and not plans["chat"].shares_gpu_with
    services = {s.name: s for s in unit_deployment(tmp_path).services}
    assert services["embed-0"].gpus.indices == services["rerank-0"].gpus.indices == (1,)
    assert ("embed-0", "healthy") in [(d.service, d.condition) for d in services["rerank-0"].depends_on]


def unit_deployment(tmp_path):
    session = open_spec(str(tmp_path / "stack.yaml"), "stack.yaml")
    return analyse(session, None).deployment


def test_one_small_model_keeps_its_own_gpu(tmp_path):
    unit, _ = plan_of(tmp_path, spec(
        "  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}\n"
        "  - {name: embed, model: BAAI/bge-m3, task: embed}\n", "{gpu: l40s, gpus_per_node: 2}"))
    assert unit.plan.shared_groups == [] and unit.plan.models[1].evaluation.share == 0.92


# ---- start-up budgets from the model cache's storage (docs/planner.md#start-up-budgets)

LLAMA70 = "  - {name: chat, model: meta-llama/Llama-3.3-70B-Instruct, max_context: 8192, gpus: 4}\n"


def test_the_budget_reads_the_weights_at_the_storage_rate(tmp_path):
    from stackc import storage

    unit, diags = plan_of(tmp_path, spec(LLAMA70))
    assert not [d for d in diags if d.is_error], diags
    mp, plan = unit.plan.models[0], unit.plan
    assert plan.storage.kind == "on-prem" and plan.storage.read_bytes_per_s == 200 * 2**20
    # 141 GB of bf16 weights at 200 MiB/s: about 11 minutes, not the 70 s a 2 GiB/s guess gave
    assert 640 < mp.load_s < 700 and mp.startup_budget_s == storage.startup_budget(mp.load_s, 120)
    fast, _ = plan_of(tmp_path, spec(LLAMA70, "{gpu: h100-sxm, gpus_per_node: 8, disk_read: 2GiB/s}"))
    assert fast.plan.storage.kind == "spec" and fast.plan.models[0].load_s < mp.load_s / 9
    assert fast.plan.models[0].startup_budget_s < mp.startup_budget_s


def test_a_rate_that_is_not_one_is_a_diagnostic(tmp_path):
    _, diags = plan_of(tmp_path, spec(LLAMA70, "{gpu: h100-sxm, gpus_per_node: 8, disk_read: 2GiB}"))
    (d,) = [d for d in diags if d.is_error]
    assert d.code == "SC205" and "rate" in d.message and d.span.line == 3 and "/s" in d.help


@pytest.mark.parametrize("hardware,kind,rate_mib", [
    ("{gpu: h100-sxm, gpus_per_node: 8, provider: aws, region: us-east-1}", "local-nvme", 1024),
    ("{gpu: a100-40gb, gpus_per_node: 4, provider: gcp, region: us-central1}", "pd-ssd", None),
])
def test_cloud_storage_is_the_instances_nvme_or_the_provisioned_disk(tmp_path, hardware, kind, rate_mib):
    unit, diags = plan_of(tmp_path, spec(LLAMA70, hardware))
    assert not [d for d in diags if d.is_error], diags
    plan = unit.plan
    assert plan.storage.kind == kind, (plan.instance, plan.storage)
    if rate_mib:
        assert plan.storage.read_bytes_per_s == rate_mib * 2**20
    else:  # pd-ssd: 0.48 MiB/s per GiB + 240 MiB/s, capped by the VM
        disk_gib = 100 + -(-int(plan.models[0].download_bytes * 1.1) // GIB)
        assert plan.storage.read_bytes_per_s == int(min(1200, 240 + 0.48 * disk_gib) * 2**20)


def test_models_on_one_node_share_its_disk(tmp_path):
    """The 70B waits for the small model's bytes too; the small model only for min(b, its own)."""
    two = LLAMA70 + "  - {name: embed, model: BAAI/bge-m3, task: embed, gpus: 1}\n"
    unit, _ = plan_of(tmp_path, spec(two))
    chat, embed = unit.plan.models
    from stackc.planner import read_bytes

    rate = unit.plan.storage.read_bytes_per_s
    assert chat.load_s == -(-(read_bytes(chat) + read_bytes(embed)) // rate)
    assert embed.load_s == -(-(2 * read_bytes(embed)) // rate)


def test_the_helm_probe_is_never_shorter_than_the_charts_and_reads_from_network_storage(tmp_path):
    import yaml

    from .conftest import MINIMAL, compile_spec

    files, _, _ = compile_spec(tmp_path, MINIMAL, "helm")
    probe = yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["startupProbe"]
    assert 15 + 10 * probe["failureThreshold"] >= 615  # the chart's own: 15 s + 60 x 10 s
    big = MINIMAL.replace("hardware: {gpu: l40s, gpus_per_node: 1}", "hardware: {gpu: h100-sxm, gpus_per_node: 8}") \
        .replace("meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}",
                 "meta-llama/Llama-3.3-70B-Instruct, max_context: 8192, gpus: 4}")
    files, _, _ = compile_spec(tmp_path, big + "kubernetes: {storage_read: 125MiB/s}\n", "helm")
    probe = yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["startupProbe"]
    # 141 GB from the claim at 125 MiB/s is about 18 minutes before vLLM's own start
    assert 10 * probe["failureThreshold"] > 1.5 * (141e9 / (125 * 2**20) + 120)
