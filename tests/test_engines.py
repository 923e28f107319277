"""Engine modules: what each one makes of the same planned model, and the details that bite."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import replace

import pytest

from stackc import engines
from stackc.engines.base import parse_version
from stackc.engines.flags import normalise_flag, render_args
from stackc.ir import EngineConfig

BASE = EngineConfig(
    engine="vllm", version=(0, 33, 0), model="meta-llama/Llama-3.1-8B-Instruct", model_file_pattern=None,
    served_name="chat", served_names=(), revision=None, task="generate", quantization="none", quantization_flag=None,
    dtype="auto", kv_cache_dtype="auto", max_context=8192, max_num_seqs=256, max_batched_tokens=2048,
    gpu_memory_utilization=0.92, tensor_parallel=1, pipeline_parallel=1, expert_parallel=False, enforce_eager=None,
    prefix_caching=True, concurrency=4,
)


@pytest.mark.parametrize("tag,version", [
    ("v0.33.0", (0, 33, 0)), ("v0.11.0-cu129", (0, 11, 0)), ("server-cuda-b11459", (11459,)),
    ("0.35.1-rocm", (0, 35, 1)), ("1.3.0rc29", (1, 3, 0)), ("3.3.7", (3, 3, 7)), ("latest", None),
])
def test_versions_from_tags(tag, version):
    assert parse_version(tag) == version


@pytest.mark.parametrize("raw", ["max_model_len", "--max-model-len", "--max-model-len=4096", "MAX-MODEL-LEN"])
def test_flag_normalisation(raw):
    assert normalise_flag(raw) == "max-model-len"


def test_engine_args_rendering():
    args = render_args((("enable-auto-tool-choice", True), ("tool-call-parser", "llama3_json"),
                        ("enable-chunked-prefill", False), ("override-generation-config", {"temperature": 0.2})))
    assert args == ["--enable-auto-tool-choice", "--tool-call-parser", "llama3_json", "--no-enable-chunked-prefill",
                    "--override-generation-config", '{"temperature":0.2}']


def test_vllm_argv_carries_the_plan():
    ec = replace(BASE, tensor_parallel=4, kv_cache_dtype="fp8", quantization_flag="fp8")
    argv = engines.get("vllm").argv(ec)
    assert argv[0] == "meta-llama/Llama-3.1-8B-Instruct"
    for flag, value in (("--max-model-len", "8192"), ("--tensor-parallel-size", "4"), ("--kv-cache-dtype", "fp8"),
                        ("--gpu-memory-utilization", "0.92"), ("--quantization", "fp8"), ("--max-num-seqs", "256")):
        assert argv[argv.index(flag) + 1] == value


def test_vllm_pooling_runner_depends_on_the_version():
    vllm = engines.get("vllm")
    assert "--runner" in vllm.argv(replace(BASE, task="embed"))
    old = vllm.argv(replace(BASE, task="embed", version=(0, 6, 0)))
    assert old[old.index("--task") + 1] == "embed"


def test_every_engine_renders_the_same_plan():
    for name, engine in engines.REGISTRY.items():
        ec = replace(BASE, engine=name)
        argv, env = engine.argv(ec), engine.env(ec)
        text = " ".join(argv) + " " + " ".join(f"{k}={v}" for k, v in env)
        context = "32768" if name == "llama.cpp" else "8192"  # llama.cpp's -c spans all 4 slots
        assert context in text, name  # the context length reaches every engine in its own words
        assert engine.health(ec).command, name


def test_ollama_health_check_needs_neither_curl_nor_python():
    ec = replace(BASE, engine="ollama", model="qwen2.5:7b")
    assert engines.get("ollama").health(ec).command[0] == "ollama"
    env = dict(engines.get("ollama").env(ec))
    assert env["OLLAMA_NUM_PARALLEL"] == "4" and env["OLLAMA_HOST"] == "0.0.0.0:11434"


def test_sglang_speculative_settings_are_complete():
    argv = engines.get("sglang").argv(replace(BASE, engine="sglang", speculative=("meta-llama/Llama-3.2-1B-Instruct", 4)))
    assert argv[argv.index("--speculative-num-steps") + 1] == "4"
    assert argv[argv.index("--speculative-eagle-topk") + 1] == "1"
    assert argv[argv.index("--speculative-num-draft-tokens") + 1] == "5"


def test_tensorrt_llm_memory_fraction_lives_in_the_options_file():
    trt = engines.get("tensorrt-llm")
    ec = replace(BASE, engine="tensorrt-llm", gpu_memory_utilization=0.85, kv_cache_dtype="fp8")
    assert trt.options(ec) == {"kv_cache_config": {"free_gpu_memory_fraction": 0.85, "dtype": "fp8",
                                                   "enable_block_reuse": True}}
    argv = trt.argv(ec)
    assert "--kv_cache_free_gpu_memory_fraction" not in argv and "--extra_llm_api_options" in argv


def test_llama_cpp_finds_the_downloaded_gguf_file(tmp_path):
    """Run the generated shell line with llama-server replaced by echo: the path must expand."""
    shard_dir = tmp_path / "models" / "Qwen--Qwen3-8B-GGUF"
    shard_dir.mkdir(parents=True)
    (shard_dir / "Qwen3-8B-q4_k_m-00002-of-00002.gguf").write_text("")
    (shard_dir / "Qwen3-8B-q4_k_m-00001-of-00002.gguf").write_text("")
    (shard_dir / "Qwen3-8B-Q8_0.gguf").write_text("")
    ec = replace(BASE, engine="llama.cpp", model=str(shard_dir), model_file_pattern="*q4_k_m*")
    engine = engines.get("llama.cpp")
    entry, argv = engine.entrypoint(ec), engine.argv(ec)
    assert entry == ("/bin/sh", "-c")
    line = argv[0].replace("exec /app/llama-server", "exec echo")
    result = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=True)
    assert result.stdout.split()[1] == str(shard_dir / "Qwen3-8B-q4_k_m-00001-of-00002.gguf")
    assert "--ctx-size 32768 --parallel 4" in result.stdout  # 4 slots of 8192 tokens


def test_managed_flags_include_settings_the_plan_did_not_need():
    """`-tp 2` conflicts even when the plan runs on one GPU and emits no TP flag."""
    vllm = engines.get("vllm")
    managed = vllm.managed_flags(BASE)
    assert {"tensor-parallel-size", "max-model-len", "kv-cache-dtype", "enable-prefix-caching"} <= managed
    assert vllm.canonical_flag("-tp") == "tensor-parallel-size"
    assert vllm.canonical_flag("--no-enable-prefix-caching") == "enable-prefix-caching"


def _download_script(step) -> str:
    assert step.entrypoint == ("/bin/sh",) and step.command[0] == "-c"
    return step.command[1]


def test_download_uses_the_engine_image_and_pins_the_revision():
    from stackc.artifacts import Artifact

    step = engines.get("vllm").download(replace(BASE, revision="a" * 40), Artifact("hf", "meta-llama/Llama-3.1-8B-Instruct"),
                                        "vllm/vllm-openai:v0.33.0")
    assert step.image == "vllm/vllm-openai:v0.33.0"
    words = shlex.split(_download_script(step).split(";")[1])
    assert words[:5] == ["hf", "download", "meta-llama/Llama-3.1-8B-Instruct", "--revision", "a" * 40]


# a Hugging Face repo's files as they are published (meta-llama, gpt-oss, Mistral, bge): what the engine
# loads, and the copies in other formats beside it
REPO_TREES = {
    "meta-llama/Llama-3.1-8B-Instruct": {
        "keep": ["config.json", "generation_config.json", "model-00001-of-00004.safetensors",
                 "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"],
        "drop": ["original/consolidated.00.pth", "original/params.json", "original/tokenizer.model", "LICENSE", "USE_POLICY.md"]},
    "openai/gpt-oss-20b": {
        "keep": ["config.json", "chat_template.jinja", "model-00000-of-00002.safetensors", "tokenizer.json"],
        "drop": ["original/model.safetensors", "original/config.json", "metal/model.bin"]},
    "mistralai/Mistral-7B-Instruct-v0.3": {
        "keep": ["config.json", "model-00001-of-00003.safetensors", "tokenizer.model", "tokenizer.model.v3", "params.json"],
        "drop": ["consolidated.safetensors"]},
    "BAAI/bge-small-en-v1.5": {
        "keep": ["config.json", "model.safetensors", "modules.json", "1_Pooling/config.json", "vocab.txt",
                 "sentence_bert_config.json"],
        "drop": ["pytorch_model.bin", "onnx/model.onnx"]},
}


def _kept(path: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """huggingface_hub's filter_repo_objects: fnmatchcase (`*` crosses `/`), an exclude wins."""
    from fnmatch import fnmatchcase

    return any(fnmatchcase(path, p) for p in include) and not any(fnmatchcase(path, p) for p in exclude)


@pytest.mark.parametrize("repo", sorted(REPO_TREES))
def test_downloads_fetch_only_what_the_engine_loads(repo):
    from stackc.artifacts import Artifact
    from stackc.engines.downloads import hf_patterns

    include, exclude = hf_patterns(BASE, Artifact("hf", repo))
    for path in REPO_TREES[repo]["keep"]:
        assert _kept(path, include, exclude), path
    for path in REPO_TREES[repo]["drop"]:
        assert not _kept(path, include, exclude), path


def test_a_repo_with_only_pytorch_weights_downloads_them_and_remote_code_only_when_trusted():
    from stackc.artifacts import Artifact
    from stackc.engines.downloads import hf_patterns

    include, exclude = hf_patterns(BASE, Artifact("hf", "BAAI/bge-m3", weight_files="bin"))
    assert _kept("pytorch_model.bin", include, exclude) and not _kept("onnx/model.onnx_data", include, exclude)
    assert not _kept("modeling_deepseek.py", *hf_patterns(BASE, Artifact("hf", "deepseek-ai/DeepSeek-V3")))
    trusted = replace(BASE, extra_args=(("trust-remote-code", True),))
    assert _kept("modeling_deepseek.py", *hf_patterns(trusted, Artifact("hf", "deepseek-ai/DeepSeek-V3")))


def test_the_download_leaves_a_cache_an_offline_engine_can_read(tmp_path):
    """Run the emitted script with a stand-in `hf` that does what huggingface_hub 1.22+ does to
    the cache (a snapshot, and the repo's whole file list under `trees/`): the list goes, and a
    download by commit leaves `refs/main` naming it."""
    from stackc.artifacts import Artifact

    revision = "b" * 40
    step = engines.get("vllm").download(replace(BASE, revision=revision), Artifact("hf", "openai/gpt-oss-20b"),
                                        "vllm/vllm-openai:v0.33.0")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hf = bin_dir / "hf"
    hf.write_text('#!/bin/sh\nd="$HF_HOME/hub/models--openai--gpt-oss-20b"\n'
                  'mkdir -p "$d/snapshots/$4" "$d/trees" && echo "$@" > "$d/args" && echo "[]" > "$d/trees/$4.json"\n')
    hf.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")}
    subprocess.run(["/bin/sh", "-c", _download_script(step)], env=env, check=True)
    folder = tmp_path / "hf" / "hub" / "models--openai--gpt-oss-20b"
    assert not (folder / "trees").exists()
    assert (folder / "refs" / "main").read_text() == revision
    assert "--exclude original/*" in (folder / "args").read_text()


def test_no_engine_binds_to_loopback_inside_a_container():
    for name, engine in engines.REGISTRY.items():
        ec = replace(BASE, engine=name, model="qwen2.5:7b" if name == "ollama" else BASE.model)
        text = " ".join(engine.argv(ec)) + " ".join(v for _, v in engine.env(ec))
        assert "0.0.0.0" in text, name


@pytest.mark.parametrize("ref,repository,tag,digest", [
    ("vllm/vllm-openai:v0.33.0", "vllm/vllm-openai", "v0.33.0", ""),
    ("vllm/vllm-openai:v0.33.0@sha256:" + "c" * 64, "vllm/vllm-openai", "v0.33.0", "sha256:" + "c" * 64),
    ("registry.example:5000/team/vllm:v0.31.0", "registry.example:5000/team/vllm", "v0.31.0", ""),
    ("registry.example:5000/team/vllm@sha256:" + "d" * 64, "registry.example:5000/team/vllm", "", "sha256:" + "d" * 64),
])
def test_image_references_are_split_once(ref, repository, tag, digest):
    from stackc import images

    image = images.parse(ref)
    assert (image.repository, image.tag, image.digest) == (repository, tag, digest)
    assert image.ref == ref or not tag


def test_a_digest_pinned_image_keeps_its_version_and_reaches_the_chart_whole(tmp_path):
    import yaml

    from .conftest import MINIMAL, compile_spec

    pinned = "vllm/vllm-openai:v0.31.0@sha256:" + "e" * 64
    text = MINIMAL.replace("max_context: 8192}", f"max_context: 8192, image: \"{pinned}\"}}")
    files, _, _ = compile_spec(tmp_path, text, "helm")
    spec = yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["modelSpec"][0]
    assert (spec["repository"], spec["tag"]) == ("vllm/vllm-openai", "v0.31.0@sha256:" + "e" * 64)
    files, _, _ = compile_spec(tmp_path, text, "compose")
    assert f'image: "{pinned}"' in files["compose.yaml"].decode()
    import json

    from .conftest import run_cli

    plan = run_cli("plan", str(tmp_path / "stack.yaml"), "--format", "json")
    assert plan.exit_code == 0 and "SC310" not in plan.output, plan.output
    assert json.loads(plan.stdout)["models"][0]["engine_version"] == "0.31.0"


def test_vllm_drains_for_the_planned_timeout_from_the_release_that_has_the_flag():
    vllm = engines.get("vllm")
    ec = replace(BASE, shutdown_timeout_s=25)
    assert vllm.argv(replace(ec, version=(0, 33, 0)))[-2:] == ["--shutdown-timeout", "25"]
    assert "--shutdown-timeout" not in vllm.argv(replace(ec, version=(0, 17, 1)))  # added in 0.18.0
    assert "shutdown-timeout" in vllm.managed_flags(BASE)  # engine_args cannot set it twice


def test_replicas_behind_the_router_run_inside_the_drain_wrapper(tmp_path):
    """Compose: the wrapper from the image's Python, its agent beside the engine's port, the
    router asking it; systemd: the same wrapper from the venv, SIGTERM to it alone."""
    import yaml

    from .conftest import MINIMAL, compile_spec

    text = MINIMAL.replace("gpus_per_node: 1", "gpus_per_node: 2").replace("max_context: 8192}", "max_context: 8192, replicas: 2}")
    files, _, _ = compile_spec(tmp_path, text, "compose")
    svc = yaml.safe_load(files["compose.yaml"])["services"]["chat-0"]
    assert svc["entrypoint"] == ["python3", "/etc/stackc/drain.py", "--agent", "0.0.0.0:8100", "--wait", "3", "--",
                                 "vllm", "serve"]
    assert svc["stop_grace_period"] == "40s" and "--shutdown-timeout" in svc["command"]
    assert "server chat-0 chat-0:8000 check agent-check agent-port 8100 agent-inter 1s" in files["router/haproxy.cfg"].decode()
    assert files["engines/drain.py"].decode().startswith('"""Run an engine so a router can drain it')
    files, _, _ = compile_spec(tmp_path, text, "systemd")
    unit = files["units/demo-chat-1.service"].decode()
    assert "ExecStart=/opt/stackc/vllm/bin/python3 /etc/stackc/demo/engines/drain.py --agent 127.0.0.1:8101 --wait 3 -- " \
           "/opt/stackc/vllm/bin/vllm serve" in unit
    assert "KillMode=mixed" in unit and "TimeoutStopSec=60s" in unit
    single, _, _ = compile_spec(tmp_path, MINIMAL, "compose")  # one replica, no router: no wrapper
    assert "entrypoint" not in yaml.safe_load(single["compose.yaml"])["services"]["chat-0"]


def test_a_word_ending_in_a_newline_is_quoted_for_the_shell():
    """`$` matches before a final newline: a plain-looking word with one would end the command."""
    from stackc.engines.downloads import sh_quote

    assert sh_quote("abc\n") == "'abc\n'" and sh_quote("abc") == "abc"
