"""Property tests: no input, however broken, makes `stackc validate` or `stackc build` crash.

Hypothesis feeds random bytes, random YAML documents built from the spec's own vocabulary, and
mutations of the complete example (of its data, of its text, and of a local `config.json` it
points at) to the CLI, in process. STACKC_DEBUG=1 makes an internal error raise instead of
becoming SC000, so a crash fails the test with its traceback. Every run must end in 0, 1 or 2
(3 for `build --check`), every exit 1 must carry a diagnostic, and a failed build writes nothing.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
import typing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from ruamel.yaml import YAML
from typer.testing import CliRunner

from stackc import catalog, spec
from stackc.cli import app

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

EXAMPLE_TEXT = (Path(__file__).resolve().parents[1] / "examples" / "spec-complete.yaml").read_text(encoding="utf-8")
_yaml = YAML(typ="safe", pure=True)
_yaml.default_flow_style = None
BASE = _yaml.load(EXAMPLE_TEXT)
COMPOSE_BASE = copy.deepcopy(BASE)  # what compose cannot express removed, so mutations reach emit
del COMPOSE_BASE["tiering"], COMPOSE_BASE["models"][0]["autoscale"], COMPOSE_BASE["environments"]["prod"]
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
          "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
          "max_position_embeddings": 131072, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
CONFIG_KEYS = ["head_dim", "num_local_experts", "num_experts_per_tok", "n_shared_experts", "moe_intermediate_size",
               "first_k_dense_replace", "interleave_moe_layer_step", "kv_lora_rank", "qk_rope_head_dim", "layer_types",
               "sliding_window", "use_sliding_window", "is_decoder", "quantization_config", "text_config"]


def _vocabulary() -> tuple[list[str], list[str]]:
    """Every key and Literal value of the spec's pydantic models."""
    keys, values, seen = set(), set(), set()

    def visit(tp):
        for arg in typing.get_args(tp):
            visit(arg)
        if typing.get_origin(tp) is typing.Literal:
            values.update(a for a in typing.get_args(tp) if isinstance(a, str))
        if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
            seen.add(tp)
            for name, field in tp.model_fields.items():
                keys.add(name)
                visit(field.annotation)

    visit(spec.StackFile)
    return sorted(keys), sorted(values)


KEYS, ENUMS = _vocabulary()
CAT = catalog.load()
NAMES = ENUMS + [g.id for g in CAT.gpus] + CAT.model_ids()[::4] + [
    "chat", "embed", "dev", "prod", "auto", "v1", "HF_TOKEN", "64GiB", "0.5GiB", "99999999TiB", "0KiB", "./m", "./nope",
    "/abs/dir", "s3://b/p", "hf://org/repo", "hf.co/Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", "org/repo-GGUF:IQ2_XS",
    "org/repo:Q8_0", "qwen2.5:7b", "vllm/vllm-openai:v0.1.0", "vllm/vllm-openai:latest", "vllm/vllm-openai",
    "vllm/vllm-openai:v99.0.0", "lmsysorg/sglang:v0.0.1", "x@sha256:abc", "ghcr.io/ggml-org/llama.cpp:server-b1",
    "--tensor-parallel-size=2", "-tp", "api_key", "https://x.example/v1"]
WEIRD = ["x; rm -rf /", "64 gigs", "", " ", "a" * 5000, "模型-チャット", "\x00", "nul\x00byte", "\u202e", "\t", "\n",
         "../../etc/passwd", "${HOME}", "{{ jinja }}", "$(id)", "-1", "0x1F", "1e309", ".nan", "~", "null", "yes",
         "*alias", "&anchor", "!!python/object:os.system", "#", "'", '"', "\\", "%", "Chat", "a" * 21]
NUMBERS = [0, 1, -1, 2, 3, 4, 7, 8, 16, 64, 65, 256, 1000, 1001, 65536, 2**31, 10**30, 0.0, 1e-9, 0.01, 0.5, 0.9,
           1.0, 1.5, -0.1, 1e308, float("inf"), float("-inf"), float("nan")]
text = st.one_of(st.sampled_from(NAMES), st.sampled_from(WEIRD), st.text(max_size=20))
keys = st.one_of(st.sampled_from(KEYS), text, st.integers(-3, 3))
scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(NUMBERS), st.integers(), st.floats(), text)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5),
    st.builds(lambda s: {"secret": s}, st.sampled_from(WEIRD + ["STACK_API_KEY", "NOPE"]))), max_leaves=12)
SNIPPETS = ["<<: *nope\n", "<<: {stack: v2}\n", "x: &a {k: v}\n", "- *a\n", "y: *a\n", "&a ", "*a", "? [a, b]\n: c\n",
            "\t", "---\n", "...\n", "%YAML 1.1\n", "!!python/object/apply:os.system ['id']\n", "k: !custom v\n",
            "dup: 1\ndup: 2\n", "b: &b [*b]\n", "z: &z [1,1,1,1,1,1,1,1]\nw: [*z,*z,*z,*z,*z,*z,*z,*z]\n", "{", "]",
            "'", '"', "\ufeff", "\x00", "  - ", ":", "name: chat\n", "models: []\n", "models: null\n", "gpus: 8\n"]


def dump(data) -> str:
    stream = io.StringIO()
    _yaml.dump(data, stream)
    return stream.getvalue()


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


def _get(node, path):
    for part in path:
        node = node[part]
    return node


def plausible(value):
    """A replacement of the same kind, so the spec often still passes the schema."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, (int, float)):
        return st.sampled_from(NUMBERS) | st.integers(-10, 100)
    if isinstance(value, str):
        return text
    if isinstance(value, list):
        return st.builds(lambda n: value * n, st.integers(0, 3))
    if not isinstance(value, dict):
        return scalars
    return st.dictionaries(st.sampled_from(KEYS), values, max_size=3).map(lambda extra: {**value, **extra})


@st.composite
def mutated_data(draw, base) -> tuple[str, dict[str, bytes]]:
    data, files = copy.deepcopy(base), {}
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(data))[1:]))
        parent = _get(data, path[:-1])
        op = draw(st.sampled_from(["plausible", "plausible", "plausible", "add", "delete", "replace", "alias",
                                   "wrap", "local"]))
        if op == "plausible":
            parent[path[-1]] = draw(plausible(parent[path[-1]]))
        elif op == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(KEYS))] = draw(scalars | st.sampled_from(
                [{"tensor": 2, "pipeline": 2}, {"min": 0, "max": 3}, {"metric": "queue_depth", "target": 1e308},
                 {"layers": 2, "hidden_size": 64, "heads": 128, "vocab_size": 8, "params": 1e-9, "max_context": 4},
                 {"secret": "HF_TOKEN"}, {"tier": "cpu", "size": "1KiB"}, {"description": "line\n\x00"}]))
        elif op == "delete":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(values)
        elif op == "alias":  # a shared object dumps as an anchor and aliases (never an ancestor: no cycle)
            source = draw(st.sampled_from([p for p in _paths(data) if p and path[: len(p)] != p]))
            parent[path[-1]] = _get(data, source)
        elif op == "wrap":
            parent[path[-1]] = [parent[path[-1]]] if draw(st.booleans()) else {"x": parent[path[-1]]}
        elif op == "local" and isinstance(data.get("models"), list) and data["models"] and \
                isinstance(data["models"][0], dict):  # a model read from ./m/config.json
            data["models"][0].update(model="./m", weights=draw(st.sampled_from(["./m", "./nope", "org/repo"])))
            config = {**CONFIG, **draw(st.dictionaries(st.sampled_from(list(CONFIG) + CONFIG_KEYS), values, max_size=4))}
            files["m/config.json"] = json.dumps(config).encode() if draw(st.integers(0, 9)) else draw(st.binary())
    return dump(data), files


@st.composite
def mutated_text(draw, source: str) -> bytes:
    lines = source.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines)))
        op = draw(st.sampled_from(["duplicate", "delete", "insert", "indent", "truncate"]))
        if op == "duplicate" and i < len(lines):
            lines.insert(i, lines[i])
        elif op == "delete" and i < len(lines):
            del lines[i]
        elif op == "insert":
            lines.insert(i, " " * draw(st.integers(0, 6)) + draw(st.sampled_from(SNIPPETS)))
        elif op == "indent" and i < len(lines):
            lines[i] = draw(st.sampled_from([" ", "  ", "\t", ""])) + lines[i].lstrip(" ")
        elif op == "truncate":
            joined = "".join(lines)
            lines = [joined[: draw(st.integers(0, len(joined)))]]
    return "".join(lines).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# the property

runner = CliRunner()
VALIDATE_FLAGS = st.sampled_from([[], ["--all-envs"], ["--env", "dev"], ["--env", "prod"], ["--env", "nope"],
                                  ["--format", "json"], ["--format", "github"], ["--format", "concise"]])
BUILD_FLAGS = st.sampled_from([[], ["--env", "dev"], ["--all-envs"], ["--check"]])


def run_both(content: bytes | str, validate_flags: list[str], build_flags: list[str],
             files: dict[str, bytes] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp, "stack.yaml")
        stack.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        for rel, data in (files or {}).items():
            Path(tmp, rel).parent.mkdir(parents=True, exist_ok=True)
            Path(tmp, rel).write_bytes(data)
        out = Path(tmp, "out")
        for args, allowed in ((["validate", str(stack), *validate_flags], {0, 1, 2}),
                              (["build", str(stack), "-t", "compose", "-o", str(out), *build_flags], {0, 1, 2, 3})):
            result = runner.invoke(app, args, env={"STACKC_DEBUG": "1", "STACKC_CATALOG": None, "NO_COLOR": "1"},
                                   catch_exceptions=False)
            output = result.output  # stdout and stderr, interleaved
            assert result.exit_code in allowed, (args, result.exit_code, output)
            assert "Traceback" not in output and "SC000" not in output, output
            if result.exit_code == 1:
                assert any(mark in output for mark in ("error[SC", "::error", '"severity": "error"',
                                                       "nothing to build")), (args, output)
            if args[0] == "build" and result.exit_code != 0:
                written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
                assert not written, (args, result.exit_code, written)


@settings(max_examples=150, **SETTINGS)
@given(content=st.binary(max_size=600) | st.text(max_size=600), vflags=VALIDATE_FLAGS, bflags=BUILD_FLAGS)
def test_random_bytes_and_text(content, vflags, bflags):
    run_both(content, vflags, bflags)


TOP = ("name", "hardware", "models", "defaults", "tiering", "gateway", "observability", "secrets", "environments")


@settings(max_examples=150, **SETTINGS)
@given(doc=st.fixed_dictionaries({"stack": st.sampled_from(["v1", "v1", "v2", 1, None])},
                                 optional={k: values for k in TOP}) | st.dictionaries(keys, values, max_size=6) | values,
       vflags=VALIDATE_FLAGS, bflags=BUILD_FLAGS)
def test_random_documents(doc, vflags, bflags):
    run_both(dump(doc), vflags, bflags)


@settings(max_examples=300, **SETTINGS)
@given(case=mutated_data(BASE) | mutated_data(COMPOSE_BASE), vflags=VALIDATE_FLAGS, bflags=BUILD_FLAGS)
def test_mutated_example_data(case, vflags, bflags):
    run_both(case[0], vflags, bflags, files=case[1])


@settings(max_examples=200, **SETTINGS)
@given(content=mutated_text(EXAMPLE_TEXT) | mutated_text(dump(COMPOSE_BASE)), vflags=VALIDATE_FLAGS,
       bflags=BUILD_FLAGS)
def test_mutated_example_text(content, vflags, bflags):
    run_both(content, vflags, bflags)


def test_compose_base_builds():
    """Mutations of the compose base exercise emit, not only the checks."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "s.yaml").write_text(dump(COMPOSE_BASE))
        result = runner.invoke(app, ["build", str(Path(tmp, "s.yaml")), "-t", "compose", "-o", str(Path(tmp, "o"))],
                               env={"STACKC_DEBUG": "1"}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert Path(tmp, "o", "compose.yaml").is_file()
