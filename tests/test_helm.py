"""The helm target: values the vLLM production-stack chart accepts, objects Kubernetes accepts,
no unexplained high-severity policy finding, and the chart's rules (one probe, no surge without
spare GPUs, secrets by reference, nothing the chart writes twice) kept."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from stackc.pipeline import analyse, emit, open_spec

from stackc.targets.helm import chart
from stackc.targets.helm.cluster import release_name
from stackc.targets.helm.objects import escape

from .conftest import MINIMAL, ROOT, compile_spec, example_builds, run_cli, run_tool, tool, write_spec

DOC = ROOT / "docs" / "targets" / "helm.md"
CRD_KINDS = {"ServiceMonitor@monitoring.coreos.com/v1", "ScaledObject@keda.sh/v1alpha1"}


def helm_builds() -> list[tuple[str, str, dict, str]]:
    """(id, release, values, README) for every example variant the helm target accepts."""
    return [(name, release_name(unit.deployment.name), yaml.safe_load(files["values.yaml"]), files["README.md"].decode())
            for name, unit, files in example_builds("helm")]


BUILDS = helm_builds()
IDS = [b[0] for b in BUILDS]


def test_most_examples_build_for_helm():
    assert len(BUILDS) >= 7, IDS


def as_installed(obj, release: str, namespace: str = "ns"):
    """What the chart's `tpl` makes of an extra object."""
    text = json.dumps(obj)
    text = text.replace("{{ .Release.Name }}", release).replace("{{ .Release.Namespace }}", namespace)
    return json.loads(text.replace('{{ \\"{{\\" }}', "{{"))


# ---- the chart's own contract


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_values_validate_against_the_charts_schema(build, shared_reference):
    import jsonschema

    schema = json.loads((shared_reference / "vllm-production-stack.values.schema.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(build[2]), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def schema_paths(schema: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        out.add(path)
        out |= schema_paths(sub, path)
        if isinstance(sub.get("items"), dict):
            out |= schema_paths(sub["items"], path + "[]")
    return out


def value_paths(node, prefix: str = "") -> set[str]:
    out = set()
    if isinstance(node, dict):
        for key, sub in node.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            out |= value_paths(sub, path)
    elif isinstance(node, list) and prefix != "extraObjects":  # Kubernetes objects, checked below
        for sub in node:
            if isinstance(sub, dict):
                out |= value_paths(sub, prefix + "[]")
    return out


def open_maps(schema_path_set: set[str]) -> set[str]:
    """Keys whose values are free-form maps in the chart (labels, env entries, probes' bodies)."""
    return {"servingEngineSpec.labels", "routerSpec.labels", "servingEngineSpec.serviceMonitor.additionalLabels",
            "routerSpec.serviceMonitor.additionalLabels", "servingEngineSpec.tolerations", "servingEngineSpec.strategy",
            "servingEngineSpec.modelSpec[].env", "servingEngineSpec.modelSpec[].nodeSelectorTerms",
            "servingEngineSpec.modelSpec[].extraVolumes", "servingEngineSpec.modelSpec[].extraVolumeMounts",
            "servingEngineSpec.modelSpec[].initContainer.env"}


def test_keys_the_schema_does_not_list_are_the_template_only_keys_in_the_table(shared_reference):
    schema = json.loads((shared_reference / "vllm-production-stack.values.schema.json").read_text())
    known = schema_paths(schema)
    free = open_maps(known)
    used = set().union(*(value_paths(b[2]) for b in BUILDS))
    unlisted = {p for p in used if p not in known and not any(p.startswith(f + ".") or p.startswith(f + "[]") for f in free)}
    assert unlisted <= set(chart.TEMPLATE_ONLY_KEYS), sorted(unlisted - set(chart.TEMPLATE_ONLY_KEYS))
    assert set(chart.TEMPLATE_ONLY_KEYS) <= used | {"servingEngineSpec.modelSpec[].pvcExistingClaimName"}
    for key in chart.TEMPLATE_ONLY_KEYS:
        assert key not in known, f"{key} is in the schema now: drop it from TEMPLATE_ONLY_KEYS"
    # and each is one the field study found in the chart's templates (anchors-k8s.md 2.13)
    text = (shared_reference / "anchors-k8s.md").read_text()
    section = text[text.index("### 2.13"):text.index("## 3.")]
    for key in chart.TEMPLATE_ONLY_KEYS:
        segments = key.split("[].", 1)[1].split(".")
        assert any(f"`{s}`" in section for s in segments), key


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_no_flag_is_given_twice(build):
    """A flag the chart writes from a key never appears again in `extraArgs`."""
    written = set(chart.FLAG_KEYS) | set(chart.SWITCH_KEYS) | set(chart.CHART_FLAGS)
    written |= {f.replace("--", "--no-", 1) for f in chart.SWITCH_KEYS}
    for model in build[2]["servingEngineSpec"]["modelSpec"]:
        args = model["vllmConfig"].get("extraArgs", [])
        assert not written & set(args), (model["name"], written & set(args))
        assert len([a for a in args if a.startswith("--")]) == len({a for a in args if a.startswith("--")})
        assert "enablePrefixCaching" in model["vllmConfig"] and "tensorParallelSize" in model["vllmConfig"]
        if model.get("lmcacheConfig", {}).get("enabled"):
            assert "--kv-transfer-config" not in args  # the chart adds LMCache's connector itself


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_secrets_are_references_only(build):
    _, release, values, readme = build
    for model in values["servingEngineSpec"]["modelSpec"]:
        if "hf_token" in model:
            assert set(model["hf_token"]) == {"secretName", "secretKey"}
    for entry in env_entries(values):
        assert "value" in entry or "secretKeyRef" in entry.get("valueFrom", {}), entry
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert f"create secret generic {ref['name']}" in readme and f"--from-literal={ref['key']}=" in readme
    assert "routerSpec" in values and "hf_token" not in values["routerSpec"]  # the router's is a literal


def env_entries(node):
    if isinstance(node, dict):
        for key, sub in node.items():
            if key == "env" and isinstance(sub, list):
                yield from sub
            else:
                yield from env_entries(sub)
    elif isinstance(node, list):
        for sub in node:
            yield from env_entries(sub)


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_readme_pins_the_chart(build):
    readme = build[3]
    assert f"--version {chart.VERSION}" in readme and f"helm upgrade --install {build[1]} " in readme
    assert f"helm repo add {chart.REPO_ALIAS} {chart.REPOSITORY}" in readme


# ---- the extra objects, as Kubernetes and the policy scanner see them


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_extra_objects_only_use_the_templating_they_mean(build):
    """Every `{{` in an extra object is the release's name or namespace, or an escaped literal."""
    allowed = re.compile(r'\{\{ (\.Release\.Name|\.Release\.Namespace|"\{\{") \}\}')
    text = json.dumps(build[2]["extraObjects"])
    assert "{{" not in allowed.sub("", text.replace('\\"', '"'))


def test_escape_keeps_literal_braces_for_tpl():
    assert escape({"a": ["{{model}}"]}) == {"a": ['{{ "{{" }}model}}']}


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_extra_objects_pass_kubernetes_validate(build, tmp_path):
    _, release, values, _ = build
    objects = [as_installed(o, release) for o in values["extraObjects"]]
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=True))
    result = run_tool(tool("kubernetes-validate"), "--strict", "-k", "1.32", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    core = [o for o in objects if f"{o['kind']}@{o['apiVersion']}" not in CRD_KINDS]
    passed = re.findall(r"^INFO .*passed for resource (\S+) against", output, re.M)
    assert len(passed) == len(core), output  # it exits 0 for kinds it has no schema for
    for line in output.splitlines():
        if line.startswith("WARN"):
            kind = re.search(r"kind (\S+) with api version (\S+)", line)
            assert kind and f"{kind[1]}@{kind[2]}" in CRD_KINDS, line
    crd_checks(objects, values, release)


def crd_checks(objects: list[dict], values: dict, release: str) -> None:
    """What kubernetes-validate has no schema for, checked by hand: each ScaledObject scales a
    Deployment the chart creates on a trigger list, each ServiceMonitor selects a Service
    stackc writes, by a port that Service has."""
    models = {m["name"] for m in values["servingEngineSpec"]["modelSpec"]}
    services = [o for o in objects if o["kind"] == "Service"]
    for o in objects:
        if o["kind"] == "ScaledObject":
            target = o["spec"]["scaleTargetRef"]
            assert target["kind"] == "Deployment"
            assert target["name"] in {f"{release}-{m}-deployment-vllm" for m in models}
            triggers = o["spec"]["triggers"]
            assert isinstance(triggers, list) and triggers and all(t["metadata"]["query"] for t in triggers)
            model = target["name"][len(release) + 1:-len("-deployment-vllm")]
            assert o["spec"]["minReplicaCount"] <= o["spec"]["maxReplicaCount"]
            assert any(model in t["metadata"]["query"] for t in triggers)
        if o["kind"] == "ServiceMonitor":
            wanted = o["spec"]["selector"]["matchLabels"]
            port = o["spec"]["endpoints"][0]["port"]
            matching = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
            assert matching and all(port in {p["name"] for p in s["spec"]["ports"]} for s in matching), o["metadata"]


def explained_findings() -> set[tuple[str, str]]:
    """(check id, container) pairs docs/targets/helm.md explains."""
    return set(re.findall(r"^\| (KSV-\d+) \| `([a-z-]+)` \|", DOC.read_text(), re.M))


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_policy_scan_has_no_unexplained_high_finding(build, tmp_path):
    _, release, values, _ = build
    for i, o in enumerate(values["extraObjects"]):
        (tmp_path / f"{i:02d}.yaml").write_text(yaml.safe_dump(as_installed(o, release)))
    result = run_tool(tool("trivy"), "config", "--skip-check-update", "--quiet", "--format", "json", str(tmp_path),
                      env={"TRIVY_CACHE_DIR": str(tmp_path / ".trivy")})
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr, result.stderr  # a file it could not parse is only logged
    report = json.loads(result.stdout)
    scanned = {r["Target"] for r in report.get("Results", [])}
    workloads = [o for o in values["extraObjects"] if o["kind"] in ("Deployment", "DaemonSet")]
    assert len([t for t in scanned if yaml.safe_load((tmp_path / t).read_text())["kind"] in ("Deployment", "DaemonSet")]) \
        == len(workloads)  # every workload was read
    explained = explained_findings()
    unexplained = []
    for r in report.get("Results", []):
        for m in r.get("Misconfigurations") or []:
            if m["Severity"] in ("HIGH", "CRITICAL"):
                container = re.search(r"Container '([^']+)'", m.get("Message", ""))
                if (m["ID"], container[1] if container else "") not in explained:
                    unexplained.append(f"{m['ID']} {m['Severity']}: {m['Message']}")
    assert not unexplained, "\n".join(unexplained)


# ---- determinism


def test_output_is_identical_across_runs_and_hash_seeds(tmp_path):
    outputs = []
    for seed in ("0", "1", "12345"):
        out = tmp_path / f"out-{seed}"
        subprocess.run([sys.executable, "-m", "stackc", "build", "examples/spec-complete.yaml", "--env", "prod",
                        "--target", "helm", "-o", str(out)], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1] == outputs[2] and "values.yaml" in outputs[0]


# ---- what the chart cannot express, said


def build(tmp_path, text: str, env: str | None = None):
    files, diags, shown = compile_spec(tmp_path, text, "helm", env)
    return files, [(d.code, d.severity) for d in diags], shown


def test_engines_the_chart_cannot_run_point_at_the_engine(tmp_path):
    text = MINIMAL.replace("max_context: 8192}", "max_context: 8192, engine: sglang}")
    files, codes, shown = build(tmp_path, text)
    assert files is None and ("SC605", "error") in codes
    assert "stack.yaml:5:" in shown and "engine: vllm" in shown


def test_weights_from_s3_are_refused(tmp_path):
    text = MINIMAL.replace("max_context: 8192}", "max_context: 8192, weights: s3://bucket/llama}")
    files, codes, _ = build(tmp_path, text)
    assert files is None and ("SC606", "error") in codes


def test_least_load_routing_has_no_chart_equivalent(tmp_path):
    text = MINIMAL.replace("max_context: 8192}", "max_context: 8192, replicas: 2}").replace(
        "gpus_per_node: 1}", "gpus_per_node: 2}") + "tiering: {routing: least-load}\n"
    files, codes, shown = build(tmp_path, text)
    assert files is None and ("SC604", "error") in codes and "round-robin" in shown


def test_a_shared_read_write_once_cache_across_nodes_is_refused(tmp_path):
    text = MINIMAL.replace("gpus_per_node: 1}", "gpus_per_node: 1, nodes: 2}").replace(
        "max_context: 8192}", "max_context: 8192, replicas: 2}")
    files, codes, shown = build(tmp_path, text)
    assert files is None and ("SC607", "error") in codes and "ReadWriteMany" in shown
    files, codes, _ = build(tmp_path, text + "kubernetes: {model_cache_access: ReadWriteMany}\n")
    values = yaml.safe_load(files["values.yaml"])
    assert values["servingEngineSpec"]["modelSpec"][0]["pvcAccessMode"] == ["ReadWriteMany"]


def test_an_unknown_gpu_label_value_is_asked_for(tmp_path):
    text = MINIMAL + "kubernetes: {gpu_label: example.com/accelerator}\n"
    files, codes, shown = build(tmp_path, text)
    assert files is None and ("SC607", "error") in codes and "gpu_label_value" in shown
    files, _, _ = build(tmp_path, MINIMAL + "kubernetes: {gpu_label: example.com/accelerator, gpu_label_value: l40s}\n")
    term = yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["modelSpec"][0]["nodeSelectorTerms"][0]
    assert term == {"matchExpressions": [{"key": "example.com/accelerator", "operator": "In", "values": ["l40s"]}]}


def test_a_replica_across_nodes_is_refused(tmp_path):
    text = """\
stack: v1
name: big
hardware: {gpu: h100-sxm, gpus_per_node: 4, nodes: 2}
models:
  - {name: chat, model: meta-llama/Llama-3.1-405B-Instruct-FP8, max_context: 8192, parallel: {tensor: 4, pipeline: 2}}
"""
    files, codes, _ = build(tmp_path, text)
    assert files is None and ("SC608", "error") in codes


def test_models_sharing_a_gpu_get_one_each_where_the_gpus_are_there(tmp_path):
    """The planner packs small models onto one GPU; a pod takes whole GPUs."""
    text = """\
stack: v1
name: small
hardware: {gpu: l40s, gpus_per_node: 1}
models:
  - {name: embed, model: BAAI/bge-m3, task: embed, max_context: 8192}
  - {name: rerank, model: BAAI/bge-reranker-v2-m3, task: rerank, max_context: 8192}
"""
    files, codes, shown = build(tmp_path, text)
    assert files is None and ("SC609", "error") in codes and "`embed`, `rerank`" in shown
    files, codes, _ = build(tmp_path, text.replace("gpus_per_node: 1", "gpus_per_node: 2"))
    assert files is not None and ("SC609", "warning") in codes
    assert [m["requestGPU"] for m in yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["modelSpec"]] == [1, 1]


# ---- the chart's rules, kept


def test_one_startup_probe_long_enough_for_the_slowest_model():
    session = open_spec(str(ROOT / "examples/spec-complete.yaml"), "x")
    unit = analyse(session, "prod")
    files, _ = emit(unit, "helm", "x")
    probe = yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["startupProbe"]
    slowest = max(s.startup_budget_s for s in unit.deployment.services if s.role == "engine")
    fastest = min(s.startup_budget_s for s in unit.deployment.services if s.role == "engine")
    assert fastest < slowest <= probe["periodSeconds"] * probe["failureThreshold"]
    assert probe["httpGet"] == {"path": "/health", "port": 8000}


@pytest.mark.parametrize("gpus,surge", [(1, 0), (2, 1)])
def test_rollouts_surge_only_onto_spare_gpus(tmp_path, gpus, surge):
    files, _, _ = build(tmp_path, MINIMAL.replace("gpus_per_node: 1", f"gpus_per_node: {gpus}"))
    rolling = yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["strategy"]["rollingUpdate"]
    assert rolling == {"maxSurge": surge, "maxUnavailable": 1 - surge}


def test_an_existing_claim_replaces_the_charts_one(tmp_path):
    files, _, _ = build(tmp_path, MINIMAL + "kubernetes: {model_cache_claim: shared-models}\n")
    model = yaml.safe_load(files["values.yaml"])["servingEngineSpec"]["modelSpec"][0]
    assert model["pvcExistingClaimName"] == "shared-models" and "pvcAccessMode" not in model


def test_all_envs_writes_one_values_file_per_environment(tmp_path):
    spec = write_spec(tmp_path, MINIMAL + "environments:\n  staging: {}\n  prod:\n    models:\n"
                      "      - {name: chat, replicas: {min: 1, max: 2}, autoscale: {metric: kv_cache_usage, target: 0.8}}\n"
                      "    hardware: {gpus_per_node: 2}\n")
    result = run_cli("build", str(spec), "--target", "helm", "--all-envs", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("values.yaml")) == [
        "prod/values.yaml", "staging/values.yaml"]
    prod = yaml.safe_load((tmp_path / "out/prod/values.yaml").read_text())
    scaler = next(o for o in prod["extraObjects"] if o["kind"] == "ScaledObject")
    assert scaler["spec"]["triggers"][0]["metadata"]["query"] == 'sum(vllm:kv_cache_usage_perc{model_name="chat"})'


def test_scaling_to_zero_is_refused_until_something_wakes_the_model(tmp_path):
    """KEDA scales on vLLM's own metrics, which vanish with the last pod."""
    text = MINIMAL.replace("gpus_per_node: 1", "gpus_per_node: 2").replace("max_context: 8192}", "max_context: 8192, replicas: {min: 0, max: 2}, "
                                                  "autoscale: {metric: queue_depth, target: 8}}")
    files, codes, shown = build(tmp_path, text)
    assert files is None and ("SC611", "error") in codes and "replicas.min: 1" in shown
    files, codes, _ = build(tmp_path, text.replace("min: 0", "min: 1"))
    assert files is not None and not any(c == "SC611" for c, _ in codes)
    scaled = [o for o in yaml.safe_load(files["values.yaml"])["extraObjects"] if o["kind"] == "ScaledObject"]
    assert scaled and all(o["spec"]["minReplicaCount"] >= 1 for o in scaled)


# ---- the network edge: an Ingress for `gateway.tls`, NetworkPolicies always

TLS_SPEC = MINIMAL.replace("gateway: {api_key: {secret: STACK_API_KEY}}",
                           "gateway: {api_key: {secret: STACK_API_KEY}, ui: open-webui,\n"
                           "          tls: {cert: tls/llm.crt, key: tls/llm.key, host: llm.example.com}}")
# the pod labels the production-stack chart 0.1.12 sets (_helpers.tpl: engineStandardLabels, routerStandardLabels)
CHART_POD_LABELS = {
    "serving-engine": {"app.kubernetes.io/instance": "demo-llm", "app.kubernetes.io/component": "serving-engine",
                       "app.kubernetes.io/name": "chat", "app.kubernetes.io/part-of": "vllm-stack"},
    "router": {"app.kubernetes.io/instance": "demo-llm", "app.kubernetes.io/component": "router",
               "app.kubernetes.io/name": "router", "app.kubernetes.io/part-of": "vllm-stack"},
}


def _objects(files, kind: str) -> list[dict]:
    values = yaml.safe_load(files["values.yaml"])
    return [as_installed(o, "demo-llm") for o in values["extraObjects"] if o["kind"] == kind]


def _pod_labels(files, component: str) -> dict:
    """The labels a pod of the stack's own objects carries (gateway, UI), from the values."""
    deployment = next(o for o in _objects(files, "Deployment") if o["metadata"]["name"] == f"demo-llm-{component}")
    return deployment["spec"]["template"]["metadata"]["labels"]


def _admits(policy: dict, labels: dict, namespace: str = "demo", port: int | None = None) -> bool:
    """Whether `policy` lets a pod with `labels` in `namespace` reach its pods on `port`."""
    for rule in policy["spec"]["ingress"]:
        if port is not None and port not in [p["port"] for p in rule.get("ports", [])]:
            continue
        for peer in rule["from"]:
            if "podSelector" in peer and namespace == "demo" and \
                    peer["podSelector"]["matchLabels"].items() <= labels.items():
                return True
            if "namespaceSelector" in peer and peer["namespaceSelector"]["matchLabels"] == \
                    {"kubernetes.io/metadata.name": namespace}:
                return True
    return False


def test_tls_is_an_ingress_that_routes_only_the_api_and_the_ui(tmp_path):
    files, codes, shown = build(tmp_path, TLS_SPEC)
    assert files is not None, shown
    [ingress] = _objects(files, "Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": ["llm.example.com"], "secretName": "demo-gateway-tls"}]
    [rule] = ingress["spec"]["rules"]
    routes = {(p["path"], p["pathType"]): p["backend"]["service"] for p in rule["http"]["paths"]}
    assert rule["host"] == "llm.example.com" and routes == {
        ("/v1", "Prefix"): {"name": "demo-llm-gateway", "port": {"number": 4000}},
        ("/", "Prefix"): {"name": "demo-llm-open-webui", "port": {"number": 8080}}}  # never /metrics/ or /key/
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    readme = files["README.md"].decode()
    assert "kubectl -n demo create secret tls demo-gateway-tls --cert=tls/llm.crt --key=tls/llm.key" in readme
    assert "https://llm.example.com/v1" in readme
    assert not _objects(files, "Secret")  # the certificate is the operator's: stackc writes no TLS Secret


def test_cert_manager_issues_the_secret_for_the_host(tmp_path):
    files, _, shown = build(tmp_path, TLS_SPEC + "kubernetes: {cert_issuer: letsencrypt, tls_secret: llm-tls, ingress_class: nginx}\n")
    assert files is not None, shown
    [ingress] = _objects(files, "Ingress")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["ingressClassName"] == "nginx" and ingress["spec"]["tls"][0]["secretName"] == "llm-tls"
    assert "create secret tls" not in files["README.md"].decode()
    files, codes, shown = build(tmp_path, TLS_SPEC.replace(", host: llm.example.com", "") +
                                "kubernetes: {cert_issuer: letsencrypt}\n")
    assert files is None and ("SC607", "error") in codes and "gateway.tls.host" in shown


def test_without_tls_nothing_is_reachable_from_outside(tmp_path):
    files, codes, shown = build(tmp_path, MINIMAL + "kubernetes: {cert_issuer: letsencrypt}\n")
    assert files is not None and ("SC607", "warning") in [(c, s.value) for c, s in codes] and "gateway.tls" in shown
    assert "stack.yaml:8:" in shown  # the setting that does nothing
    files, codes, _ = build(tmp_path, MINIMAL)
    assert not _objects(files, "Ingress") and [s["spec"]["type"] for s in _objects(files, "Service")] == ["ClusterIP"]
    assert "SC716" not in {c for c, _ in codes}
    readme = files["README.md"].decode()
    assert "port-forward svc/demo-llm-gateway 8080:4000" in readme and "$STACK_API_KEY" in readme


@pytest.mark.parametrize("spec", [MINIMAL, TLS_SPEC], ids=["plain", "tls"])
def test_only_the_router_and_prometheus_reach_the_engines(tmp_path, spec):
    files, _, shown = build(tmp_path, spec)
    assert files is not None, shown
    policies = {p["metadata"]["name"]: p for p in _objects(files, "NetworkPolicy")}
    engines, router = policies["demo-llm-engines"], policies["demo-llm-router"]
    assert engines["spec"]["podSelector"]["matchLabels"].items() <= CHART_POD_LABELS["serving-engine"].items()
    assert router["spec"]["podSelector"]["matchLabels"].items() <= CHART_POD_LABELS["router"].items()
    gateway = _pod_labels(files, "gateway")
    assert _admits(engines, CHART_POD_LABELS["router"], port=chart.CONTAINER_PORT)
    assert _admits(engines, {}, namespace="monitoring", port=chart.CONTAINER_PORT)
    assert not _admits(engines, gateway) and not _admits(engines, {"app": "anything"})
    assert not _admits(engines, CHART_POD_LABELS["router"], namespace="other")
    assert _admits(router, gateway, port=chart.ROUTER_CONTAINER_PORT) and not _admits(router, {"app": "anything"})
    if spec is TLS_SPEC:
        front = policies["demo-llm-gateway"]
        assert _admits(front, {}, namespace="ingress-nginx", port=4000) and _admits(front, _pod_labels(files, "open-webui"))
        assert not _admits(front, {"app": "anything"}) and not _admits(front, CHART_POD_LABELS["serving-engine"])
        assert _admits(policies["demo-llm-open-webui"], {}, namespace="ingress-nginx", port=8080)
    else:  # in-cluster clients call the gateway: no policy closes it
        assert set(policies) == {"demo-llm-engines", "demo-llm-router"}
