"""Every generated compose stack, checked by the real tools: the Compose binary and the Compose
JSON Schema. Both can pass bad input in places, so the tests also assert on what they print.
Secrets: the test fills `.env` with recognisable values and then greps every generated file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackc.pipeline import analyse, emit, open_spec

from .conftest import example_specs, run_tool, tool

SECRET_VALUE = "stackc-test-secret-{name}-4f9c2a"


def _compose_variants():
    out = []
    for spec in example_specs():
        session = open_spec(str(spec), spec.name)
        for env in [None, *session.environment_names]:
            files, _ = emit(analyse(session, env), "compose", spec.name)
            if files is not None:
                out.append(pytest.param(spec, env, id=f"{spec.stem}-{env or 'base'}"))
    return out


VARIANTS = _compose_variants()


@pytest.fixture
def built(tmp_path, request):
    spec, env = request.param
    session = open_spec(str(spec), spec.name)
    unit = analyse(session, env)
    files, _ = emit(unit, "compose", spec.name)
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    names = [d.name for d in unit.deployment.secrets]
    (tmp_path / ".env").write_text("".join(f"{n}={SECRET_VALUE.format(name=n)}\n" for n in names))
    return tmp_path, files, names, unit.deployment


def test_there_is_something_to_check():
    assert len(VARIANTS) >= 6


@pytest.mark.parametrize("built", [v.values for v in VARIANTS], ids=[v.id for v in VARIANTS], indirect=True)
def test_compose_binary_accepts_it(built):
    out, files, _, dep = built
    compose = tool("docker-compose")
    result = run_tool(compose, "-f", "compose.yaml", "config", "-q", cwd=out)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # `config -q` checks; `config --format json` shows what Compose understood: assert on it
    result = run_tool(compose, "-f", "compose.yaml", "config", "--format", "json", cwd=out)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert model["name"] == dep.project
    for svc in dep.services:
        got = model["services"][svc.name]
        assert got["image"] == svc.image.ref
        if svc.gpus and svc.gpus.vendor == "nvidia":
            device = got["deploy"]["resources"]["reservations"]["devices"][0]
            assert device["capabilities"] == ["gpu"] and device["device_ids"] == [str(i) for i in svc.gpus.indices]
        for dep_ in svc.depends_on:
            assert dep_.service in got["depends_on"]
        if svc.role == "engine":
            assert got["healthcheck"]["start_period"]  # a start period from the plan's load time
            download = f"{svc.group}-download"
            if download in model["services"]:  # weights are fetched before the engine starts
                assert got["depends_on"][download]["condition"] == "service_completed_successfully"
        if svc.role == "gateway":
            assert not any(s.role == "engine" for s in dep.services if s.name in got.get("depends_on", {}))
            edge = next((s.name for s in dep.services if s.role == "edge"), None)
            if edge is None:
                assert got["ports"][0]["published"] == str(dep.gateway_port)
            else:  # TLS: clients reach the gateway through the edge only
                assert "ports" not in got and model["services"][edge]["ports"][0]["published"] == str(dep.gateway_port)
                tls = [m for m in model["services"][edge]["volumes"] if m["target"].startswith("/run/credentials/")]
                assert len(tls) == 2 and all(m["type"] == "bind" and m["read_only"] for m in tls)
        # logs rotate: Docker's json-file driver keeps every line unless told otherwise
        assert got["logging"]["driver"] == "json-file" and got["logging"]["options"]["max-size"], svc.name
        # the token only where it is used: downloads, never an engine that loads from the cache
        secrets = {k for k, v in (got.get("environment") or {}).items() if v == SECRET_VALUE.format(name=k)}
        if svc.role == "engine":
            assert "HF_TOKEN" not in secrets, svc.name


@pytest.mark.parametrize("built", [v.values for v in VARIANTS], ids=[v.id for v in VARIANTS], indirect=True)
def test_compose_json_schema_accepts_it(built):
    out, _, _, _ = built
    result = run_tool(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml", cwd=out)
    assert result.returncode == 0 and "ok -- validation done" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("built", [v.values for v in VARIANTS], ids=[v.id for v in VARIANTS], indirect=True)
def test_no_secret_value_in_any_generated_file(built):
    out, files, names, _ = built
    assert names, "every example declares at least one secret"
    for rel, data in files.items():
        for name in names:
            assert SECRET_VALUE.format(name=name).encode() not in data, (rel, name)
    # the values only ever come from .env, which stackc never writes
    assert ".env" not in files


@pytest.mark.parametrize("built", [v.values for v in VARIANTS], ids=[v.id for v in VARIANTS], indirect=True)
def test_yaml_files_pass_yamllint(built):
    out, files, _, _ = built
    yaml_files = [rel for rel in files if rel.endswith((".yaml", ".yml"))]
    result = run_tool(tool("yamllint"), "-s", "-f", "parsable", "-d",
                      "{extends: relaxed, rules: {key-duplicates: enable, line-length: disable}}", *yaml_files, cwd=out)
    assert result.returncode == 0 and result.stdout == "", result.stdout


def test_compose_binary_rejects_what_it_should(tmp_path):
    """The validator is real: a broken file fails (so a pass above means something)."""
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x\n    depends_on: [missing]\n")
    result = run_tool(tool("docker-compose"), "-f", "compose.yaml", "config", "-q", cwd=tmp_path)
    assert result.returncode != 0 and "missing" in result.stderr


def test_every_image_is_pinned():
    from stackc import images

    for name, image in images.ALL.items():
        assert image.tag and image.tag != "latest" and not image.tag.endswith("-latest"), name
    for variant in VARIANTS:
        spec, env = variant.values
        session = open_spec(str(spec), spec.name)
        for svc in analyse(session, env).deployment.services:
            assert svc.image.tag and svc.image.tag != "latest", svc.image.ref


ROUTED = [v for v in VARIANTS if "router/haproxy.cfg" in emit(analyse(open_spec(str(v.values[0]), v.values[0].name),
                                                                       v.values[1]), "compose", "x")[0]]


def test_some_examples_run_a_router():
    assert len(ROUTED) >= 2


def _haproxy() -> str:
    import shutil

    found = shutil.which("haproxy")
    if found is None:
        pytest.skip("haproxy is not installed (tests/tools.sh installs Debian's package as root)")
    return found


@pytest.mark.parametrize("built", [v.values for v in ROUTED], ids=[v.id for v in ROUTED], indirect=True)
def test_haproxy_accepts_the_router_config(built):
    out, files, _, dep = built
    result = run_tool(_haproxy(), "-c", "-f", "router/haproxy.cfg", cwd=out)
    assert result.returncode == 0 and "Configuration file is valid" in result.stdout, result.stdout + result.stderr
    # the replicas' names resolve on the stack's network, not here; anything else is a finding
    engines = {s.name for s in dep.services if s.role == "engine"}
    warnings = [line for line in result.stderr.splitlines() if "[WARNING]" in line
                and not any(f"could not resolve address '{name}'" in line for name in engines)]
    assert warnings == [], result.stderr
    for svc in dep.services:
        if svc.role == "engine" and f"server {svc.name} " in files["router/haproxy.cfg"].decode():
            assert f"server {svc.name} {svc.name}:{svc.port} check" in files["router/haproxy.cfg"].decode()


def test_haproxy_rejects_what_it_should(tmp_path):
    (tmp_path / "bad.cfg").write_text("defaults\n  mode http\nbackend b\n  balance nosuchalgorithm\n")
    result = run_tool(_haproxy(), "-c", "-f", "bad.cfg", cwd=tmp_path)
    assert result.returncode != 0 and "balance only supports" in result.stderr


GATEWAY_PYTHON = Path(__file__).resolve().parent.parent / ".venv-gateway" / "bin" / "python"
LOAD_GATEWAY_CONFIGS = """
import json, sys, yaml
from litellm import Router
for path in sys.argv[1:]:
    config = yaml.safe_load(open(path))
    router = Router(model_list=config["model_list"], **config.get("router_settings", {}))
    print(json.dumps({"path": path, "deployments": len(router.get_model_list())}))
"""


def test_litellm_loads_every_gateway_config(tmp_path):
    """LiteLLM's own Router accepts every deployment of every example's gateway (one process:
    importing LiteLLM takes seconds)."""
    if not GATEWAY_PYTHON.exists():
        pytest.skip(f"the gateway is not installed at {GATEWAY_PYTHON} (tests/tools.sh installs it with hashes)")
    from ruamel.yaml import YAML

    paths, expected, env = [], {}, {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for variant in VARIANTS:
        spec, environment = variant.values
        unit = analyse(open_spec(str(spec), spec.name), environment)
        files, _ = emit(unit, "compose", spec.name)
        path = tmp_path / f"{variant.id}.yaml"
        path.write_bytes(files["gateway/config.yaml"])
        paths.append(str(path))
        expected[str(path)] = len(YAML(typ="safe").load(path.read_text())["model_list"])
        env.update({d.name: SECRET_VALUE.format(name=d.name) for d in unit.deployment.secrets})
    result = run_tool(str(GATEWAY_PYTHON), "-c", LOAD_GATEWAY_CONFIGS, *paths, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = {r["path"]: r["deployments"] for r in map(json.loads, result.stdout.splitlines())}
    assert loaded == expected  # every deployment of every config was accepted


def test_litellm_rejects_what_it_should(tmp_path):
    if not GATEWAY_PYTHON.exists():
        pytest.skip(f"the gateway is not installed at {GATEWAY_PYTHON} (tests/tools.sh installs it with hashes)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list:\n  - {model_name: x, litellm_params: {api_base: 'http://a'}}\n"
                   "router_settings: {routing_strategy: nonsense}\n")
    # as the gateway runs: without the local cost map LiteLLM fetches one at import and, offline,
    # fails on its own import cycle instead of on the config
    result = run_tool(str(GATEWAY_PYTHON), "-c", LOAD_GATEWAY_CONFIGS, str(bad), env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert result.returncode != 0 and "Field required" in result.stderr
