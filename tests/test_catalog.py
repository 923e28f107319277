"""The built-in catalog: the ids SPEC.md promises, sources on every entry, agreement with the facts."""

from __future__ import annotations

import json

import pytest

from stackc import catalog

SPEC_GPUS = ["rtx-4090", "rtx-5090", "l4", "l40s", "a10g", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie",
             "h200", "b200", "mi300x", "apple-m3-ultra"]


def test_every_gpu_id_in_the_spec_is_there():
    cat = catalog.load()
    assert set(SPEC_GPUS) <= {g.id for g in cat.gpus}


def test_gpu_memory_is_what_cuda_reports_not_the_marketing_figure():
    h100 = catalog.load().gpu("h100-sxm")
    assert h100.memory_gb == 80 and h100.cuda_total_gib == pytest.approx(79.19)


def test_models_are_found_by_hf_repo_id_and_alias_case_insensitively():
    cat = catalog.load()
    assert cat.model("meta-llama/llama-3.1-8b-instruct").id == "llama-3.1-8b"
    assert cat.model("deepseek-ai/DeepSeek-R1").id == "deepseek-v3"
    assert cat.model("qwen3-8b").hf_repo == "Qwen/Qwen3-8B"
    assert cat.model("nobody/nothing") is None


def test_every_entry_names_its_sources():
    cat = catalog.load()
    for entry in [*cat.models, *cat.gpus]:
        assert entry.sources, entry.id
        for tag in entry.sources:
            assert tag in cat.sources, (entry.id, tag)


def test_instances_reference_known_gpus():
    cat = catalog.load()
    ids = {g.id for g in cat.gpus}
    assert all(i.gpu in ids for i in cat.instances)
    assert {i.cloud for i in cat.instances} >= {"aws", "gcp", "azure"}


def test_user_catalog_extends_and_overrides(tmp_path, monkeypatch):
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps({
        "gpus": [{"id": "l40s", "name": "L40S (our measured total)", "vendor": "nvidia", "architecture": "ada",
                  "memory_gb": 48, "cuda_total_gib": 44.0, "compute_capability": "8.9", "fp8": True, "fp4": False,
                  "nvlink": False, "sources": ["ours"]}],
        "models": [{"id": "acme-7b", "hf_repo": "acme/acme-7b", "params_b": 7.0, "layers": 32, "hidden_size": 4096,
                    "heads": 32, "kv_heads": 8, "vocab_size": 32000, "max_context": 32768}],
    }))
    cat = catalog.load(str(extra))
    assert cat.gpu("l40s").cuda_total_gib == 44.0 and cat.model("acme/acme-7b").layers == 32


def test_catalog_agrees_with_the_shared_facts(shared_reference):
    """Our JSON was written from facts/*.yaml; the figures must not drift from them."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    gpus = {g["id"]: g for g in yaml.load((shared_reference / "facts" / "gpus.yaml").read_text())["gpus"]}
    for g in catalog.load().gpus:
        fact = gpus.get(g.id)
        if fact is None:
            continue  # GPUs we added from start-up logs (rtx-3090, t4), with their own sources
        assert g.driver_total_mib == fact.get("driver_total_mib"), g.id
        assert str(g.compute_capability) == str(fact.get("compute_capability")) or fact.get("compute_capability") is None
        if "cuda_total_gib" in fact:
            assert g.cuda_total_gib == fact["cuda_total_gib"] and not g.cuda_total_estimated
    models = {m["hf_repo"]: m for m in yaml.load((shared_reference / "facts" / "models.yaml").read_text())["models"]}
    for m in catalog.load().models:
        fact = models.get(m.hf_repo)
        if fact is None:
            continue  # models we added (with their own sources)
        for ours, theirs in (("layers", "num_hidden_layers"), ("hidden_size", "hidden_size"), ("heads", "num_attention_heads"),
                             ("kv_heads", "num_key_value_heads"), ("vocab_size", "vocab_size")):
            if theirs in fact:
                assert getattr(m, ours) == fact[theirs], (m.id, ours)
    instances = {(i["cloud"], i["name"]): i for i in yaml.load((shared_reference / "facts" / "instances.yaml").read_text())["instances"]}
    for i in catalog.load().instances:
        fact = instances[(i.cloud, i.name)]
        assert i.gpu_count == fact["gpu_count"], i.name
        if fact["price_usd_per_hour"] is not None:
            assert i.price_usd_per_hour == fact["price_usd_per_hour"], i.name
        elif i.price_usd_per_hour is not None:  # GCP: the VM part plus the GPUs, never marked verified
            assert not i.price_verified and i.vm_part_usd_per_hour == fact.get("vm_part_usd_per_hour"), i.name
