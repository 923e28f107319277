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

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from ruamel.yaml import YAML
from typer.testing import CliRunner

from stackc import catalog, spec_file
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

    visit(spec_file.StackFile)
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
         "*alias", "&anchor", "!!python/object:os.system", "#", "'", '"', "\\", "%", "Chat", "a" * 21,
         "demo\ud83d", "\ude00", "\ud83d\ude00", "\U0001F600", "\x07", "\x1b[31m", "\x7f", "\x85", "\x9f", "\u2028",
         "\u2029", "\ufeff", "\r", "a\r\nb", "\x0c", "x" * 50_000]  # surrogates, C0/C1 controls, a long value
NUMBERS = [0, 1, -1, 2, 3, 4, 7, 8, 16, 64, 65, 256, 1000, 1001, 65536, 2**31, 10**30, 0.0, 1e-9, 0.01, 0.5, 0.9,
           1.0, 1.5, -0.1, 1e308, float("inf"), float("-inf"), float("nan"), -2, -(2**63), 10**1200, -(10**1200)]
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
            "'", '"', "\ufeff", "\x00", "  - ", ":", "name: chat\n", "models: []\n", "models: null\n", "gpus: 8\n",
            "replicas: 0\n", "gpus: 0\n", "concurrency: -1\n", "enabled: false\n", "x: 0x" + "f" * 4000 + "\n",
            "x: " + "9" * 5000 + "\n", 'name: "demo\\ud83d"\n', 'k: "\\ude00\\ud83d"\n', "\x07", "\x1b", "\x85", "\u2028",
            "\r", "x: " + "[" * 1000 + "]" * 1000 + "\n", "x: " + "{a: " * 500 + "1" + "}" * 500 + "\n",
            "".join(f"a{i}: &a{i} [{'*a' + str(i - 1) if i else 'x'}]\n" for i in range(150))]


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



# ---------------------------------------------------------------------------------------------
# A seeded mutation loop over every example, in process through the library (no CLI, no
# subprocess): at least 10,000 mutated specs in the default run. Each kind of input that once
# ended in SC000 has a mutation of its own: surrogate escapes, integers of thousands of digits,
# control characters, zero and negative counts in every integer field, deep nesting and alias
# chains, very long values; `mixed` combines two or three. The invariant: validating raises
# nothing (the CLI would print it as SC000), and every error diagnostic has a span inside its
# file and a `help:` line; every diagnostic renders as one concise line and a short full block.

import random  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode  # noqa: E402

from stackc import check, check_paths, pipeline  # noqa: E402
from stackc.diagnostics import render_concise, render_full  # noqa: E402

FUZZ_RUNS = int(os.environ.get("STACKC_FUZZ_RUNS", "10000"))
FUZZ_SEED = int(os.environ.get("STACKC_FUZZ_SEED", "20240611"))
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
FUZZ_EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml")) + sorted((EXAMPLES_DIR / "invalid").glob("*.yaml"))
CONTROL = ([chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]
           + ["\ufeff", "\u2028", "\u2029", "\ufffe", "\uffff", "\r\n"])  # every C0 and C1, NUL, BOM, ...
ESCAPES = ["\\0", "\\a", "\\b", "\\t", "\\n", "\\v", "\\f", "\\r", "\\e", "\\N", "\\_", "\\L", "\\P",
           "\\x07", "\\x1b[31m", "\\x85", "\\u2028", "\\uFEFF", "\\uFFFE", "\\r\\n", "\\x00"]
SURROGATES = ["\\ud83d", "\\ude00", "\\uD83D", "\\ude00\\ud83d", "\\ud83d\\ud83d", "\\ud83dx", "\\U0000d83d",
              "\\ud83d\\ude00", "\\udbff\\udfff", "\\ud800", "\\udfff"]
COUNTS = [0, -1, 0, -1, -2, -(2**31), -(10**18), 2**63, 10**30]
KINDS = ("surrogate", "huge-int", "control", "count", "deep", "long", "mixed")


def _int_fields(cls) -> list[tuple[str, ...]]:
    """The integer fields of a model, and of the models its fields hold (one level down)."""
    out = []
    for name, f in cls.model_fields.items():
        members = check_paths._unwrap(f.annotation)
        if int in members:
            out.append((name,))
        for m in members:
            if isinstance(m, type) and issubclass(m, BaseModel):
                out += [(name, sub) for sub, g in m.model_fields.items() if int in check_paths._unwrap(g.annotation)]
    return out


class _Example:
    """An example's text, its scalars (to replace) and its model mappings (to add a field to)."""

    def __init__(self, path: Path):
        self.name = path.name
        self.text = path.read_text(encoding="utf-8")
        self.scalars: list[tuple[int, int, str, bool, bool]] = []  # start, end, value, is a key, is an int
        self.maps: list[tuple[int, bool, dict, type]] = []  # first key's offset, flow style, values by key, model
        root = YAML(typ="safe", pure=True).compose(self.text)
        try:
            self.data = _yaml.load(self.text)
        except Exception:  # noqa: BLE001 - the duplicate-key example: positions are all that is needed
            self.data = None
        self.top = root.value[0][0].start_mark.index  # where the first top-level key starts
        self._walk(root, ())
        self.values = [s for s in self.scalars if not s[3]]
        self.ints = [s for s in self.values if s[4]] or self.values
        # every integer field of every model mapping; one level down only where the mapping does
        # not write the parent (when it does, that mapping has slots of its own)
        self.slots = [(m, chain) for m in self.maps for chain in _int_fields(m[3]) if len(chain) == 1 or chain[0] not in m[2]]

    def _walk(self, node, path) -> None:
        if isinstance(node, ScalarNode):
            self.scalars.append((node.start_mark.index, node.end_mark.index, str(node.value), False,
                                 node.tag.endswith(":int")))
        elif isinstance(node, SequenceNode):
            for i, child in enumerate(node.value):
                self._walk(child, path + (i,))
        elif isinstance(node, MappingNode):
            cls = check_paths.model_at_path(spec_file.StackFile, self.data or {}, path) if path else spec_file.StackFile
            if cls is not None and node.value:
                entries = {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}
                self.maps.append((node.value[0][0].start_mark.index, bool(node.flow_style), entries, cls))
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    self.scalars.append((key.start_mark.index, key.end_mark.index, str(key.value), True, False))
                self._walk(value, path + (str(key.value),))


FUZZ = [_Example(p) for p in FUZZ_EXAMPLES]
Edit = tuple  # (start, end, new text) in the example's text


def _quoted(rng: random.Random, value: str, escape: str) -> str:
    """`value` as a double-quoted YAML string (JSON's form), with `escape` put somewhere in it."""
    body = json.dumps(value)[1:-1]
    at = rng.randint(0, len(body))
    while at and body[at - 1] == "\\":  # not inside one of json's own escapes
        at -= 1
    return '"' + body[:at] + escape + body[at:] + '"'


def _huge(rng: random.Random) -> str:
    n = rng.choice([1001, 1001, 1200, 4301])  # past stackc's limit, and past Python's int-to-text limit
    return rng.choice(["0x" + "f" * n, "9" * n, "-" + "1" * n, "0o" + "7" * n, "0b" + "1" * n, "1_" * (n // 2) + "0",
                       "9" * n + ".5", "1e" + "9" * n])


def _deep(rng: random.Random) -> str:
    d = rng.choice([50, 99, 101, 300, 1000, 3000])
    return rng.choice(["[" * d + "]" * d, "{a: " * d + "1" + "}" * d, "[{a: " * (d // 2) + "x" + "}]" * (d // 2),
                       "[" * d + "1, " * 3 + "]" * d, '["x", ' * d + "'y'" + "]" * d])


def _anchors(rng: random.Random) -> tuple[str, str]:
    """Top-level keys defining an alias chain, and an alias to the end of it."""
    if rng.random() < 0.2:  # doubling: the billion laughs
        n = rng.choice([10, 18, 25])
        lines = ["za0: &a0 [x, x]"] + [f"za{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, n)]
    else:  # each level holds the one before it: nesting through aliases
        n = rng.choice([10, 99, 102, 150])
        lines = ["za0: &a0 [x]"] + [f"za{i}: &a{i} [*a{i - 1}]" for i in range(1, n)]
    return "\n".join(lines) + "\n", f"*a{n - 1}"


def _block_deep(rng: random.Random, indent: int) -> str:
    d = rng.choice([99, 102])
    if rng.random() < 0.5:
        return "\n" + "".join(" " * (indent + 2 + i) + f"k{i}:\n" for i in range(d)) + " " * (indent + 3 + d) + "x"
    return "\n" + "".join(" " * (indent + 2 + i) + "-\n" for i in range(d)) + " " * (indent + 3 + d) + "x"


def edits(rng: random.Random, ex: _Example, kind: str, slot=None) -> list[Edit] | str:
    """The edits of one mutation, or a whole new text."""
    text = ex.text
    if kind == "surrogate":
        if rng.random() < 0.15 and isinstance(ex.data, dict):  # a spec a JSON writer wrote, with an emoji or half of one
            data = copy.deepcopy(ex.data)
            data["name"] = str(data.get("name")) + rng.choice(["\U0001F600", "\ud83d", "\ude00", "\ude00\ud83d"])
            return json.dumps(data, indent=rng.choice([None, 1, 2]))
        start, end, value, _, _ = rng.choice(ex.scalars)
        return [(start, end, _quoted(rng, value, rng.choice(SURROGATES)))]
    if kind == "huge-int":
        start, end, _, _, _ = rng.choice(ex.ints if rng.random() < 0.8 else ex.values)
        return [(start, end, _huge(rng))]
    if kind == "control":
        char, roll = rng.choice(CONTROL), rng.random()
        if roll < 0.45:  # a raw character anywhere in the file
            at = rng.randint(0, len(text))
            return [(at, at, char)]
        if roll < 0.55:  # every line ending changed
            return text.replace("\n", rng.choice(["\r\n", "\r", "\u2028", "\x85", "\x0c\n"]))
        start, end, value, _, _ = rng.choice(ex.scalars if rng.random() < 0.3 else ex.values)
        return [(start, end, _quoted(rng, value, rng.choice(ESCAPES)))]
    if kind == "count":
        if slot is None:
            (mapping, chain), value = rng.choice(ex.slots), rng.choice(COUNTS)
        else:
            mapping, chain, value = slot
        first, flow, entries, _ = mapping
        written = entries.get(chain[0])
        new = str(value) if len(chain) == 1 else f"{{{chain[1]}: {value}}}"
        if written is not None:  # replace the value written there
            return [(written.start_mark.index, written.end_mark.index, new)]
        indent = first - (text.rfind("\n", 0, first) + 1)
        return [(first, first, f"{chain[0]}: {new}" + (", " if flow else "\n" + " " * indent))]
    if kind == "deep":
        start, end, _, _, _ = rng.choice(ex.values)
        roll = rng.random()
        if roll < 0.35:
            defs, alias = _anchors(rng)
            return [(ex.top, ex.top, defs), (start, end, alias)]
        if roll < 0.5 and not any(c in text[text.rfind("\n", 0, start):start] for c in "[{"):
            return [(start, end, _block_deep(rng, start - text.rfind("\n", 0, start) - 1))]
        return [(start, end, _deep(rng))]
    if kind == "long":
        n = rng.choice([81, 100, 300, 2000])  # 4 MiB values: test_a_4_mib_value_makes_a_short_diagnostic
        start, end, _, _, _ = rng.choice(ex.scalars if rng.random() < 0.2 else ex.values)
        return [(start, end, rng.choice(["a" * n, "x-" * (n // 2), "模" * n, json.dumps("a\n" * (n // 2))]))]
    if kind == "mixed":  # two or three edits at different places
        out: list[Edit] = []
        for _ in range(rng.randint(2, 3)):
            more = edits(rng, ex, rng.choice(KINDS[:-1]))
            if not isinstance(more, str):
                out += more
        return out
    raise AssertionError(kind)


def mutate(rng: random.Random, ex: _Example, kind: str, slot=None) -> str:
    changes = edits(rng, ex, kind, slot)
    if isinstance(changes, str):
        return changes
    text, last = ex.text, len(ex.text) + 1
    for start, end, new in sorted(changes, key=lambda e: (e[0], e[1]), reverse=True):
        if end <= last:  # overlapping edits: the later one wins
            text, last = text[:start] + new + text[end:], start
    return text


def validate_in_process(path: Path) -> tuple[list, dict]:
    """What `stackc validate --all-envs` computes, through the library."""
    session = pipeline.open_spec(str(path), "stack.yaml")
    diags = list(session.diagnostics)
    if session.document is not None and not any(d.is_error for d in diags):
        for env in pipeline.units(session, None, True, True):
            diags += pipeline.analyse(session, env, upto="plan").diagnostics
    return diags, session.sources


def _problems(diags, sources) -> dict[str, list]:
    errors = [d for d in diags if d.is_error]
    lines = {f: len(re.split(r"\r\n|\r|\n", t)) for f, t in sources.items()}  # lines as the parser counts them
    return {
        "unpositioned": [d for d in errors if d.span is None or d.span.line < 1 or d.span.col < 1
                         or d.span.line > lines.get(d.span.file, d.span.line)],
        "without help": [d for d in errors if not d.help],
        "concise not one line": [d for d in diags if len(render_concise([d]).splitlines()) != 1],
        "not UTF-8": [d for d in diags if not _encodes(render_full([d], sources))],
        "oversized": [d for d in diags if len(render_full([d], sources).encode("utf-8", "replace")) > 4096],
    }


def _encodes(text: str) -> bool:
    """Whether the terminal (or a file) can be given this text: no lone surrogate in it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


TALLY = ("internal errors (SC000)", "unpositioned", "without help", "concise not one line", "not UTF-8", "oversized")


def _fuzz_chunk(jobs: list[tuple[int, int, str, int, int]]) -> tuple[dict, list]:
    """Mutate and validate some runs of the plan: (run, example, kind, slot, count) each."""
    tally, failures = dict.fromkeys(TALLY, 0), []
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp, "stack.yaml")
        for run, e, kind, slot, value in jobs:
            ex = FUZZ[e]
            rng = random.Random(FUZZ_SEED * 1_000_003 + run)  # each run's own: the same specs in any process
            text = mutate(rng, ex, kind, (*ex.slots[slot], value) if slot >= 0 else None)
            stack.write_bytes(text.encode("utf-8", "surrogatepass"))
            try:
                diags, sources = validate_in_process(stack)
            except Exception as exc:  # noqa: BLE001 - counted, then reported
                tally["internal errors (SC000)"] += 1
                failures.append((run, f"{ex.name} {kind}: {type(exc).__name__}: {str(exc)[:200]} in {text[:300]!r}"))
                continue
            for problem, found in _problems(diags, sources).items():
                if found:
                    tally[problem] += 1
                    failures.append((run, f"{ex.name} {kind}: {problem}: {str(found[0])[:400]} in {text[:200]!r}"))
    return tally, failures


def test_fuzz_every_example_with_10000_mutations(record_property):
    """10,000 mutated examples: every one ends in diagnostics with a position and a help line.

    The plan is seeded (STACKC_FUZZ_SEED, STACKC_FUZZ_RUNS): first every integer field of every
    model the valid examples write (in the smallest example that writes the model) at 0 and at
    -1, then examples and kinds at random. The
    runs are spread over up to 8 processes; each run has its own seed, so the specs are the same
    however many there are."""
    import multiprocessing

    rng = random.Random(FUZZ_SEED)
    plan, covered = [], set()
    for e, ex in sorted(enumerate(FUZZ), key=lambda item: len(item[1].text)):  # each field in the smallest example
        for slot, (mapping, chain) in enumerate(ex.slots):
            field = (mapping[3].__name__, chain)
            if not ex.name.startswith("sc") and field not in covered:
                covered.add(field)
                plan += [(e, "count", slot, v) for v in (0, -1)]
    weights = [1 / max(1.0, len(ex.text) / 1500) for ex in FUZZ]  # a 7 KB example costs five times a 1 KB one
    while len(plan) < FUZZ_RUNS:
        plan.append((rng.choices(range(len(FUZZ)), weights)[0], rng.choice(KINDS), -1, 0))
    jobs = [(run, *job) for run, job in enumerate(plan)]
    chunks = [jobs[i::64] for i in range(64)]
    started = time.perf_counter()
    workers = min(8, os.cpu_count() or 1)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_fuzz_chunk, chunks)
    else:
        results = [_fuzz_chunk(chunk) for chunk in chunks]
    wall = time.perf_counter() - started
    tally = {"runs": len(jobs), **{k: sum(r[0][k] for r in results) for k in TALLY}}
    failures = sorted(f for r in results for f in r[1])
    per_kind = {k: sum(1 for job in plan if job[1] == k) for k in KINDS}
    summary = (f"{tally}, per kind {per_kind}, {len(covered)} integer fields at 0 and -1, "
               f"{wall:.1f} s in {workers} process(es)")
    print(f"\nfuzz: {summary}")
    record_property("fuzz", summary)
    assert tally["runs"] >= min(FUZZ_RUNS, 10_000), summary
    assert not failures, f"{summary}; first failures:\n" + "\n".join(f for _, f in failures[:8])


CHATBOT = (EXAMPLES_DIR / "chatbot-8b-l40s.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("change", ["    replicas: 0\n", "    replicas: -1\n", "    enabled: false\n"])
@pytest.mark.parametrize("target", ["compose", "helm", "systemd", "terraform"])
def test_a_model_with_no_replica_is_an_error_on_every_target(tmp_path, change, target):
    """`replicas: 0` once validated, crashed helm and gave compose and systemd a stack with no
    engine; a stack whose only model is left out did the same."""
    from .conftest import run_cli

    stack = tmp_path / "s.yaml"
    stack.write_text(CHATBOT.replace("    concurrency: 8\n", "    concurrency: 8\n" + change))
    result = run_cli("build", str(stack), "-t", target, "-o", str(tmp_path / "out"), env={"STACKC_DEBUG": "1"})
    assert result.exit_code == 1 and "error[SC206]" in result.output and "= help:" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_4_mib_value_makes_a_short_diagnostic(tmp_path):
    """It once made 12.5 MB of diagnostics: the message, the label and the source line echoed it."""
    from stackc.diagnostics import render

    stack = tmp_path / "s.yaml"
    stack.write_text(CHATBOT.replace("name: helpdesk", "name: " + "a" * (4 * 1024 * 1024 - 2000)))
    diags, sources = validate_in_process(stack)
    assert [d.code for d in diags] == ["SC207"]
    for fmt in ("full", "concise", "json", "github"):
        assert len(render(fmt, diags, sources).encode()) < 4096, fmt
