"""Property tests: no input, however broken, makes `stackc validate` or `stackc build` crash.

Hypothesis feeds random bytes, random YAML documents built from the spec's own vocabulary, and
mutations of the complete example (its data, its text, a model it describes inline or in a local
`config.json`) to the CLI, in process. STACKC_DEBUG=1 makes an internal error raise instead of
becoming SC000, so a crash fails the test with its traceback. Every run must end in 0, 1 or 2
(3 for `build --check`) within LIMIT_S, every exit 1 must carry a diagnostic, and a failed build
writes nothing.
"""

from __future__ import annotations

import copy
import io
import json
import os
import signal
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
CONFIG_KEYS = list(CONFIG) + [
    "head_dim", "num_local_experts", "num_experts_per_tok", "n_shared_experts", "moe_intermediate_size", "kv_lora_rank",
    "first_k_dense_replace", "interleave_moe_layer_step", "qk_rope_head_dim", "layer_types", "sliding_window",
    "use_sliding_window", "is_decoder", "quantization_config", "text_config"]


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
    "chat", "embed", "dev", "prod", "auto", "v1", "HF_TOKEN", "64GiB", "0.5GiB", "99999999TiB", "0KiB", "./m", "/abs",
    "s3://b/p", "hf://org/repo", "hf.co/org/repo-GGUF:Q4_K_M", "org/repo-GGUF:IQ2_XS", "org/repo:Q8_0", "qwen2.5:7b",
    "vllm/vllm-openai:v0.1.0", "vllm/vllm-openai:latest", "vllm/vllm-openai", "vllm/vllm-openai:v99.0.0",
    "x@sha256:abc", "ghcr.io/ggml-org/llama.cpp:server-b1", "--tensor-parallel-size=2", "-tp", "api_key"]
WEIRD = ["x; rm -rf /", "64 gigs", "", " ", "a" * 5000, "模型-チャット", "\x00", "nul\x00byte", "\u202e", "\t",
         "\n", "../../etc/passwd", "${HOME}", "{{ jinja }}", "$(id)", "-1", "0x1F", "1e309", ".nan", "~", "null", "yes",
         "*alias", "&anchor", "!!python/object:os.system", "#", "'", '"', "\\", "%", "Chat", "a" * 21]
NUMBERS = [0, 1, -1, 2, 3, 4, 7, 8, 16, 64, 65, 256, 1000, 1001, 65536, 2**31, 10**30, 0.0, 1e-9, 0.01, 0.5, 0.9,
           1.0, 1.5, -0.1, 1e308, float("inf"), float("-inf"), float("nan")]
EDGE = [0, -1, 1, 3, 2**64, 10**400, 1e300, float("inf")]
text = st.one_of(st.sampled_from(NAMES), st.sampled_from(WEIRD), st.text(max_size=20))
keys = st.one_of(st.sampled_from(KEYS), text, st.integers(-3, 3))
scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(NUMBERS), st.integers(), st.floats(), text)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5),
    st.builds(lambda s: {"secret": s}, st.sampled_from(WEIRD + ["STACK_API_KEY", "NOPE"]))), max_leaves=12)
SIZES = st.sampled_from([1, 3, 64, 4096, 10**400])
ARCHITECTURE = st.fixed_dictionaries(  # a model described inline, sizes up to absurd
    {k: SIZES for k in ("layers", "hidden_size", "heads", "vocab_size", "max_context")}
    | {"params": st.sampled_from([1e-9, 8.0, 1e300, float("inf")])},
    optional={k: SIZES for k in ("kv_heads", "head_dim", "intermediate_size", "experts")})
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


def _reaches(node, target, seen=None) -> bool:
    """Whether `target` is `node` or inside it, by identity (aliases share objects)."""
    seen = set() if seen is None else seen
    if node is target:
        return True
    if id(node) in seen or not isinstance(node, (dict, list)):
        return False
    seen.add(id(node))
    children = node.values() if isinstance(node, dict) else node
    return any(_reaches(child, target, seen) for child in children)


def _get(node, path):
    for part in path:
        node = node[part]
    return node


def plausible(value):
    """A replacement of the same kind, so the spec often still passes the schema."""
    if isinstance(value, bool) or value is None:
        return scalars
    if isinstance(value, (int, float)):
        return st.sampled_from(NUMBERS) | st.integers(-10, 100)
    if isinstance(value, str):
        return text
    if isinstance(value, list):
        return st.builds(lambda n: value * n, st.integers(0, 3))
    return st.dictionaries(st.sampled_from(KEYS), values, max_size=3).map(lambda extra: {**value, **extra})


@st.composite
def mutated_data(draw, base) -> tuple[str, dict[str, bytes]]:
    data, files = copy.deepcopy(base), {}
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))[:0:-1]))  # reversed: `stack` is not the simplest pick
        parent = _get(data, path[:-1])
        op = draw(st.sampled_from(["plausible"] * 3 + ["delete", "replace", "alias", "wrap", "own-model"]))
        if op == "plausible":
            parent[path[-1]] = draw(plausible(parent[path[-1]]))
        elif op == "delete":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(values)
        elif op == "alias":  # a shared object dumps as an anchor and aliases (never a cycle)
            source = draw(st.sampled_from([p for p in _paths(data) if p and path[: len(p)] != p]))
            shared = _get(data, source)
            parent[path[-1]] = copy.deepcopy(shared) if _reaches(shared, parent) else shared
        elif op == "wrap":
            parent[path[-1]] = [parent[path[-1]]] if draw(st.booleans()) else {"x": parent[path[-1]]}
        elif isinstance(data.get("models"), list) and data["models"] and isinstance(data["models"][0], dict):
            if draw(st.booleans()):  # a model the catalog does not know, described inline ...
                data["models"][0].update(model="org/unknown", architecture=draw(ARCHITECTURE))
            else:  # ... or by ./m/config.json
                data["models"][0].update(model="./m", weights=draw(st.sampled_from(["./m", "./nope", "org/repo"])))
                edits = draw(st.dictionaries(st.sampled_from(CONFIG_KEYS), st.sampled_from(EDGE) | values, max_size=4))
                files["m/config.json"] = draw(st.just(json.dumps({**CONFIG, **edits}).encode()) | st.binary())
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


runner = CliRunner()
ENV = {"STACKC_DEBUG": "1", "STACKC_CATALOG": None, "NO_COLOR": "1"}
VALIDATE_FLAGS = st.sampled_from([[], ["--all-envs"], ["--env", "dev"], ["--env", "prod"], ["--env", "nope"],
                                  ["--format", "json"], ["--format", "github"], ["--format", "concise"]])
BUILD_FLAGS = st.sampled_from([[], ["--env", "dev"], ["--all-envs"], ["--check"]])


class Hang(Exception):
    """Bad input must not make stackc loop for ever either."""


LIMIT_S = 20  # per command; a real spec takes well under a second
ALARM = hasattr(signal, "SIGALRM")  # not on Windows: no time limit there


def _hang(signum, frame):
    raise Hang(f"stackc ran for more than {LIMIT_S} s on one spec")


def run_both(content: bytes | str, validate_flags: list[str], build_flags: list[str], files=None) -> None:
    """`validate`, then `build` into a fresh directory: each ends in a verdict, never a crash or a hang."""
    previous = signal.signal(signal.SIGALRM, _hang) if ALARM else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stack, out = Path(tmp, "stack.yaml"), Path(tmp, "out")
            stack.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
            for rel, data in (files or {}).items():
                Path(tmp, rel).parent.mkdir(parents=True, exist_ok=True)
                Path(tmp, rel).write_bytes(data)
            for args in (["validate", str(stack), *validate_flags],
                         ["build", str(stack), "-t", "compose", "-o", str(out), *build_flags]):
                if ALARM:
                    signal.alarm(LIMIT_S)
                result = runner.invoke(app, args, env=ENV, catch_exceptions=False)  # an exception fails the test
                output = result.output  # stdout and stderr, interleaved
                assert result.exit_code in ({0, 1, 2, 3} if "--check" in args else {0, 1, 2}), (args, output)
                assert "Traceback" not in output and "SC000" not in output, output
                if result.exit_code == 1:
                    marks = ("error[SC", "::error", '"severity": "error"', "nothing to build")
                    assert any(mark in output for mark in marks), (args, output)
                if args[0] == "build" and result.exit_code != 0:
                    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
                    assert not written, (args, result.exit_code, written)
    finally:
        if ALARM:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


@settings(max_examples=150, **SETTINGS)
@given(content=st.binary(max_size=600) | st.text(max_size=600), vflags=VALIDATE_FLAGS, bflags=BUILD_FLAGS)
def test_random_bytes_and_text(content, vflags, bflags):
    run_both(content, vflags, bflags)


TOP = ("name", "hardware", "models", "defaults", "tiering", "gateway", "observability", "secrets", "environments")
DOCUMENTS = st.one_of(st.fixed_dictionaries({"stack": st.sampled_from(["v1", "v1", "v2", 1, None])},
                                           optional={k: values for k in TOP}),
                      st.dictionaries(keys, values, max_size=6), values)


@settings(max_examples=150, **SETTINGS)
@given(doc=DOCUMENTS, vflags=VALIDATE_FLAGS, bflags=BUILD_FLAGS)
def test_random_documents(doc, vflags, bflags):
    run_both(dump(doc), vflags, bflags)


@settings(max_examples=400, **SETTINGS)
@given(case=mutated_data(BASE) | mutated_data(COMPOSE_BASE), vflags=VALIDATE_FLAGS, bflags=BUILD_FLAGS)
def test_mutated_example_data(case, vflags, bflags):
    run_both(case[0], vflags, bflags, files=case[1])


@settings(max_examples=200, **SETTINGS)
@given(content=mutated_text(EXAMPLE_TEXT) | mutated_text(dump(COMPOSE_BASE)),
       vflags=VALIDATE_FLAGS, bflags=BUILD_FLAGS)
def test_mutated_example_text(content, vflags, bflags):
    run_both(content, vflags, bflags)


def test_compose_base_builds():
    """Mutations of the compose base reach emit, not only the checks."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "s.yaml").write_text(dump(COMPOSE_BASE))
        result = runner.invoke(app, ["build", str(Path(tmp, "s.yaml")), "-t", "compose", "-o", str(Path(tmp, "o"))],
                               env=ENV, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert Path(tmp, "o", "compose.yaml").is_file()
