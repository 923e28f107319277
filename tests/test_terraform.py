"""The terraform target: modules `terraform fmt` leaves alone (checked by Terraform where it is
installed, by the formatting rules everywhere), that an HCL parser reads, that `terraform
validate` accepts with the AWS provider where a mirror of it is on the machine, that use only
arguments the provider has, with no unexplained high finding of a policy scan, no secret value
anywhere, and a first-boot script that is valid shell and fits in user data."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stackc.targets.terraform.target import TerraformTarget
from stackc.targets.terraform.arguments import ARGUMENTS, META_ARGUMENTS

from .conftest import MINIMAL, ROOT, compile_spec, example_builds, example_specs, run_tool, tool

SECRET_VALUE = "stackc-test-secret-{name}-4f1d"


def terraform_builds() -> list[tuple[str, dict[str, bytes], list[str]]]:
    return [(name, files, [d.name for d in unit.deployment.secrets]) for name, unit, files in example_builds("terraform")]


BUILDS = terraform_builds()
IDS = [b[0] for b in BUILDS]


def module_dir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    d = tmp_path / "module"
    for path, data in files.items():
        (d / path).parent.mkdir(parents=True, exist_ok=True)
        (d / path).write_bytes(data)
    return d


def tf_files(files: dict[str, bytes]) -> dict[str, str]:
    return {p: d.decode() for p, d in files.items() if p.endswith(".tf")}


def test_cloud_examples_build_for_terraform():
    assert {b[0] for b in BUILDS} >= {"moe-deepseek-r1-8xh200-base", "cloud-aws-2x-l40s-base", "cloud-gcp-a3-h100-base",
                                      "cloud-azure-a100-base"}, IDS


def terraform_env(tmp_path: Path) -> dict:
    empty = tmp_path / "empty.tfrc"
    empty.write_text("")
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(empty), "TF_IN_AUTOMATION": "1"}


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_terraform_fmt_changes_nothing(build, tmp_path):
    terraform = shutil.which("terraform") or pytest.skip("terraform is not installed")
    d = module_dir(tmp_path, build[1])
    result = subprocess.run([terraform, "fmt", "-check", "-diff", "-no-color", "-recursive", str(d)],
                            capture_output=True, text=True, env=terraform_env(tmp_path), timeout=60)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def canonical_problems(text: str) -> list[str]:
    """The rules of `terraform fmt` stackc relies on, for machines without Terraform: two-space
    indentation that follows the braces, no trailing blanks, one blank line at most, and the `=`
    of consecutive one-line attributes in one column, one space after the longest name."""
    problems, depth, run = [], 0, []
    lines = text.split("\n")
    assert lines[-1] == "", "a file ends with one newline"

    def close_run() -> None:
        if run:
            width = max(len(name) for name, _ in run)
            problems.extend(f"line {n}: `=` not aligned" for name, n in run
                            if not re.match(rf"^\s*{re.escape(name)} {{{width - len(name) + 1}}}= ", lines[n - 1]))
            run.clear()

    for n, line in enumerate(lines[:-1], 1):
        if line != line.rstrip():
            problems.append(f"line {n}: trailing blank")
        if n > 1 and line == "" and lines[n - 2] == "":
            problems.append(f"line {n}: two blank lines")
        stripped = line.strip()
        if stripped.startswith(("}", "]")):
            depth -= 1
        if stripped and not line.startswith("  " * depth) or line.startswith("  " * depth + " "):
            problems.append(f"line {n}: indentation")
        attr = re.match(r"^\s*([\w\"\-:./]+)\s*= (.*)$", line)
        if attr and not attr[2].endswith(("{", "[", "(")):
            run.append((attr[1], n))
        else:
            close_run()
        if stripped.endswith(("{", "[", "(")):
            depth += 1
    close_run()
    return problems


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_modules_are_canonically_formatted_by_rule(build):
    for path, text in tf_files(build[1]).items():
        assert canonical_problems(text) == [], (path, canonical_problems(text)[:5])


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_an_hcl_parser_reads_every_file_and_only_known_arguments_are_used(build):
    hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 (the test extra's HCL parser) is not installed")

    used = {}
    for path, text in tf_files(build[1]).items():
        doc = hcl2.loads(text)
        for kind in ("resource", "data"):
            for entry in doc.get(kind, []):
                for type_, named in entry.items():
                    for body in named.values():
                        collect(body, ("data." if kind == "data" else "") + type_, used)
    unknown = {f"{path}.{arg}" for path, args in used.items() for arg in args - ARGUMENTS.get(path, frozenset())}
    assert not unknown, sorted(unknown)


def collect(body: dict, path: str, used: dict) -> None:
    for key, value in body.items():
        if key in META_ARGUMENTS:
            continue
        used.setdefault(path, set()).add(key)
        if f"{path}.{key}" in ARGUMENTS:  # a nested block, repeated or not
            for item in value if isinstance(value, list) else [value]:
                collect(item, f"{path}.{key}", used)


def mirror() -> Path:
    found = [Path(p) for p in ("/opt/tf-plugins", "/usr/share/terraform/plugins") if (Path(p) / "registry.terraform.io/hashicorp/aws").is_dir()]
    if not shutil.which("terraform") or not found:
        pytest.skip("terraform or a local mirror of the hashicorp/aws provider is not on this machine (validators.md)")
    return found[0]


@pytest.fixture(scope="module")
def aws_schema(tmp_path_factory) -> dict:
    plugins = mirror()
    tmp = tmp_path_factory.mktemp("schema")
    (tmp / "versions.tf").write_text('terraform {\n  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
                                     '      version = ">= 5.100, < 7.0"\n    }\n  }\n}\n')
    env = terraform_env(tmp)
    subprocess.run(["terraform", f"-chdir={tmp}", "init", "-backend=false", "-input=false", "-no-color",
                    f"-plugin-dir={plugins}"], check=True, capture_output=True, env=env, timeout=120)
    out = subprocess.run(["terraform", f"-chdir={tmp}", "providers", "schema", "-json"], check=True,
                         capture_output=True, env=env, timeout=120).stdout
    return json.loads(out)["provider_schemas"]["registry.terraform.io/hashicorp/aws"]


def test_the_argument_table_matches_the_providers_schema(aws_schema):
    for path, args in ARGUMENTS.items():
        if not path.removeprefix("data.").startswith("aws_"):
            continue  # hashicorp/google has no mirror here: its entries come from the provider's docs
        parts = path.split(".")
        kind = "data_source_schemas" if parts[0] == "data" else "resource_schemas"
        parts = parts[1:] if parts[0] == "data" else parts
        block = aws_schema[kind][parts[0]]["block"]
        known: set[str] = set()
        for nested in parts[1:]:
            if nested in block.get("block_types", {}):
                block = block["block_types"][nested]["block"]
            else:  # a list of objects written as blocks (`route` of aws_route_table)
                kind_, (_, fields) = block["attributes"][nested]["type"]
                block, known = {}, set(fields)
        known |= set(block.get("attributes", {})) | set(block.get("block_types", {}))
        assert args <= known, (path, sorted(args - known))


AWS_BUILDS = [b for b in BUILDS if b"hashicorp/aws" in b[1]["versions.tf"]]


@pytest.mark.parametrize("build", AWS_BUILDS, ids=[b[0] for b in AWS_BUILDS])
def test_terraform_validate_with_the_aws_provider(build, tmp_path):
    plugins = mirror()
    d = module_dir(tmp_path, build[1])
    env = terraform_env(tmp_path)
    init = subprocess.run(["terraform", f"-chdir={d}", "init", "-backend=false", "-input=false", "-no-color",
                           f"-plugin-dir={plugins}"], capture_output=True, text=True, env=env, timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    result = subprocess.run(["terraform", f"-chdir={d}", "validate", "-no-color", "-json"], capture_output=True,
                            text=True, env=env, timeout=120)
    report = json.loads(result.stdout)
    assert report["valid"] and report["error_count"] == 0 and report["warning_count"] == 0, report["diagnostics"]


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_policy_scan_has_no_unexplained_high_finding(build, tmp_path):
    d = module_dir(tmp_path, {p: data for p, data in build[1].items() if p.endswith(".tf")})
    result = run_tool(tool("trivy"), "config", "--skip-check-update", "--quiet", "--format", "json", str(d),
                      env={"TRIVY_CACHE_DIR": str(tmp_path / ".trivy")})
    assert result.returncode == 0 and "ERROR" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert any(r.get("MisconfSummary", {}).get("Successes", 0) > 20 for r in report.get("Results", [])), report
    failed = [f"{m['ID']} {m['Severity']}: {m['Title']}" for r in report.get("Results", [])
              for m in r.get("Misconfigurations") or [] if m["Severity"] in ("HIGH", "CRITICAL")]
    assert not failed, failed
    # every finding left in place is ignored at its resource with the reason on the line above
    for path, text in tf_files(build[1]).items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if "trivy:ignore:" in line:
                assert lines[i - 1].startswith("#") and "trivy:" not in lines[i - 1] and len(lines[i - 1]) > 20, (path, i)


def render_boot(template: str, node: str, secrets: dict[str, str]) -> str:
    """What Terraform's templatefile makes of boot.sh.tftpl (the subset it uses)."""
    loop = re.search(r"%\{ for name, id in secrets ~\}\n(.*?)%\{ endfor ~\}\n", template, re.S)
    assert loop, "the secrets loop"
    body = "".join(loop[1].replace("${name}", name).replace("${id}", arn) for name, arn in secrets.items())
    text = template[:loop.start()] + body + template[loop.end():]
    for var, value in (("node", node), ("region", "us-east-1"), ("bucket", "team-stack-1"), ("project", "my-project"),
                       ("account", "teamab12cd34"), ("container", "stack"), ("vault", "team-ab12cd34")):
        text = text.replace("${" + var + "}", value)
    assert "${" not in text and "%{" not in text, "a template expression left over"
    return text


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_boot_script_is_valid_shell_and_fits_in_user_data(build, tmp_path):
    secrets = {name: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:x/{name}-AbCdEf" for name in build[2]}
    script = tmp_path / "boot.sh"
    script.write_text(render_boot(build[1]["boot.sh.tftpl"].decode(), "node-0", secrets))
    syntax = run_tool("bash", "-n", str(script))
    assert syntax.returncode == 0, syntax.stderr
    check = run_tool(tool("shellcheck"), "--severity=warning", str(script))
    assert check.returncode == 0, check.stdout
    assert len(gzip.compress(script.read_bytes())) < 16384 * 3 // 4  # base64 of the gzip within 16 KB


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_no_secret_value_anywhere(build, tmp_path):
    """With the secrets set in the environment of the build, no value reaches a file or the boot."""
    env = {name: SECRET_VALUE.format(name=name) for name in build[2]}
    spec = next(s for s in example_specs() if build[0].startswith(s.stem + "-"))
    env_name = build[0][len(spec.stem) + 1:]
    d = tmp_path / "out"
    chosen = [] if env_name == "base" else ["--env", env_name]
    result = subprocess.run([sys.executable, "-m", "stackc", "build", str(spec), *chosen, "--target", "terraform", "-o", str(d)],
                            capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    texts = [p.read_text() for p in d.rglob("*") if p.is_file()]
    texts.append(render_boot((d / "boot.sh.tftpl").read_text(), "node-0", {n: "arn" for n in build[2]}))
    assert texts and not [v for v in env.values() for t in texts if v in t]


# ---- what the target refuses, and what it writes for the plan


def build_spec(tmp_path, text: str):
    files, diags, shown = compile_spec(tmp_path, text, "terraform")
    return files, [d.code for d in diags if d.is_error], shown


PLAIN_CLOUD = MINIMAL.replace("hardware: {gpu: l40s, gpus_per_node: 1}",
                              "hardware: {gpu: l40s, gpus_per_node: 1, provider: aws, region: us-east-1}")
# a cloud machine has a public address: plain HTTP there is SC716, so every cloud stack here has TLS
CLOUD = PLAIN_CLOUD.replace("gateway: {api_key: {secret: STACK_API_KEY}}",
                            "gateway: {api_key: {secret: STACK_API_KEY}, tls: {}}")


def test_own_servers_are_refused_and_every_cloud_is_emitted(tmp_path):
    files, codes, shown = build_spec(tmp_path, MINIMAL)
    assert files is None and codes == ["SC610"] and "systemd target" in shown
    assert set(TerraformTarget.capabilities.providers or ()) == {"aws", "azure", "gcp"}


def test_replica_ranges_are_refused(tmp_path):
    files, codes, _ = build_spec(tmp_path, CLOUD.replace("gpus_per_node: 1", "gpus_per_node: 4").replace(
        "max_context: 8192}", "max_context: 8192, replicas: {min: 1, max: 2}}"))
    assert files is None and codes == ["SC601"]


def test_one_node_module_writes_the_plan(tmp_path):
    files, codes, _ = build_spec(tmp_path, CLOUD)
    assert not codes
    main, outputs = files["main.tf"].decode(), files["outputs.tf"].decode()
    assert 'instance_type               = "g6e.xlarge"' in main or '"g6e.' in main
    assert "http_tokens                 = \"required\"" in main and "http_put_response_hop_limit = 2" in main
    assert "encrypted             = true" in main and "aws_placement_group" not in main  # one node: no group
    assert "instance_market_options" not in main  # on demand unless `spot`
    assert re.search(r"# cost, on demand: 1 x \S+ in us-east-1, \$[\d.,]+/hour, \$[\d,]+/month", outputs)
    assert 'variable "allowed_cidrs"' in files["variables.tf"].decode()
    allowed = files["variables.tf"].decode().split('variable "allowed_cidrs"')[1].split("\n}\n")[0]
    assert not re.search(r"^\s*default\s*=", allowed, re.M)  # required: the user names who may connect
    assert "stack/node-0/units/demo-chat-0.service" in files


def test_gcp_module_stops_gpus_for_maintenance_and_runs_spot_without_restart(tmp_path):
    text = CLOUD.replace("gpu: l40s", "gpu: h100-sxm").replace("gpus_per_node: 1", "gpus_per_node: 8").replace(
        "provider: aws, region: us-east-1", "provider: gcp, region: us-central1, spot: true")
    files, codes, _ = build_spec(tmp_path, text)
    assert not codes
    main = files["main.tf"].decode()
    assert 'on_host_maintenance         = "TERMINATE"' in main and 'provisioning_model          = "SPOT"' in main
    assert "automatic_restart           = false" in main and 'machine_type              = "a3-highgpu-8g"' in main
    assert 'variable "project_id"' in files["variables.tf"].decode()


def test_compose_boot_runs_the_compose_stack_on_one_machine(tmp_path):
    files, codes, _ = build_spec(tmp_path, CLOUD + "terraform: {boot: compose}\n")
    assert not codes and "stack/node-0/compose.yaml" in files and "stack/node-0/install.sh" not in files
    boot = files["boot.sh.tftpl"].decode()
    assert "docker compose --project-directory /opt/stackc/demo up -d" in boot and "/opt/stackc/demo/.env" in boot
    files, codes, shown = build_spec(tmp_path, CLOUD.replace("gpus_per_node: 1", "gpus_per_node: 1, nodes: 2").replace(
        "max_context: 8192}", "max_context: 8192, replicas: 2}") + "terraform: {boot: compose}\n")
    assert files is None and codes == ["SC603"] and "boot: systemd" in shown


def test_azure_secrets_are_write_only_placeholders(tmp_path):
    """Key Vault has no empty secret: a write-only placeholder is sent once and never stored, and the
    nodes wait until each secret holds something else."""
    text = CLOUD.replace("gpu: l40s", "gpu: a100-80gb").replace("provider: aws, region: us-east-1",
                                                                "provider: azure, region: eastus")
    files, codes, _ = build_spec(tmp_path, text)
    assert not codes
    main = files["main.tf"].decode()
    assert 'value_wo         = "stackc-unset"' in main and "value =" not in main.replace("value_wo", "")
    assert 'required_version = ">= 1.11"' in files["versions.tf"].decode()
    assert 'v == "stackc-unset"' in files["boot.sh.tftpl"].decode()
    assert "shared_access_key_enabled         = false" in main and "rbac_authorization_enabled = true" in main


def boot_program(build_files: dict[str, bytes], secrets: dict[str, str]) -> str:
    """The program the boot unit runs, as the rendered user data writes it."""
    rendered = render_boot(build_files["boot.sh.tftpl"].decode(), "node-0", secrets)
    return re.search(r"<<'STACKC_END_OF_FILE'\n(.*?)\nSTACKC_END_OF_FILE", rendered, re.S).group(1)


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_the_boot_program_passes_shellcheck(build, tmp_path):
    script = tmp_path / "boot"
    script.write_text(boot_program(build[1], {name: f"id-{name}" for name in build[2]}) + "\n")
    check = run_tool(tool("shellcheck"), "--severity=style", str(script))
    assert check.returncode == 0, check.stdout


DAY2_STUBS = {
    # the bucket is a directory; the secret store answers from files, failing while one is empty
    "aws": 'case "$1" in s3) src="${@: -2:1}"; mkdir -p "${@: -1}"; cp -r "$BUCKET/${src#s3://*/}." "${@: -1}";; '
           'secretsmanager) id="${@: -5:1}"; id="${id##*/}"; test -s "$SECRETS/$id" && cat "$SECRETS/$id";; esac',
    "systemctl": 'echo "systemctl $*" >> "$STUB_LOG"',
    "mountpoint": "exit 0",  # the model cache's NVMe is mounted (its own test is below)
    "useradd": 'echo "useradd $*" >> "$STUB_LOG"',
    "apt-get": 'echo "apt-get $*" >> "$STUB_LOG"',
    "dpkg-query": 'echo "install ok installed"',
    "python3": 'if [ "$1" = "-m" ]; then mkdir -p "$3/bin"; printf "#!/bin/sh\\n" > "$3/bin/pip"; chmod +x "$3/bin/pip"; '
               'else exec "$REAL_PYTHON" "$@"; fi',
    "install": 'args=(); while [ $# -gt 0 ]; do case "$1" in -o|-g) shift 2;; *) args+=("$1"); shift;; esac; done; '
               'exec /usr/bin/install "${args[@]}"',
}


def test_the_boot_unit_brings_a_node_up_then_applies_a_changed_spec(tmp_path):
    """Day 2, run for real against stubs: the boot program installs the node's files from the
    bucket once, does nothing while they stay the same, restarts only what a rebuilt spec
    changed, and restarts the units that read a secret whose value changed."""
    def build(text: str) -> dict[str, bytes]:
        where = tmp_path / f"b{len(list(tmp_path.glob('b*')))}"
        where.mkdir()
        files, codes, _ = build_spec(where, text)
        assert files is not None, codes
        return files

    spec = CLOUD + "observability: {metrics: true}\n"
    v1 = build(spec)
    v2 = build(spec.replace("max_context: 8192}", "max_context: 8192, served_names: [assistant]}"))
    bucket, secrets, root = tmp_path / "bucket", tmp_path / "secrets", tmp_path / "root"
    for d in (bucket, secrets, root / "etc", tmp_path / "stubs"):
        d.mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (secrets / "STACK_API_KEY").write_text("sk-one")
    for name, body in DAY2_STUBS.items():
        (tmp_path / "stubs" / name).write_text(f"#!/usr/bin/env bash\nset -eu\n{body}\n")
        (tmp_path / "stubs" / name).chmod(0o755)
    log = tmp_path / "stub.log"

    def publish(files: dict[str, bytes]) -> None:
        shutil.rmtree(bucket / "stack", ignore_errors=True)
        for path, data in files.items():
            if path.startswith("stack/"):
                (bucket / path).parent.mkdir(parents=True, exist_ok=True)
                (bucket / path).write_bytes(data)

    def run(files: dict[str, bytes]) -> subprocess.CompletedProcess:
        program = boot_program(files, {"STACK_API_KEY": "arn:aws:secretsmanager:us-east-1:1:secret:demo/STACK_API_KEY"})
        for inside in ("/opt/stackc", "/var/lib/stackc", "/etc/stackc", "/etc/systemd/system"):
            program = program.replace(inside, f"{root}{inside}")
        script = tmp_path / "boot"
        script.write_text(program + "\n")
        log.write_text("")
        env = {**os.environ, "PATH": f"{tmp_path / 'stubs'}:{os.environ['PATH']}", "BUCKET": str(bucket),
               "SECRETS": str(secrets), "STUB_LOG": str(log), "STACKC_ROOT": str(root),
               "REAL_PYTHON": shutil.which("python3")}
        return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=120)

    publish(v1)
    first = run(v1)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "applied the module's files" in first.stdout and "installed  /etc/systemd/system/demo-gateway.service" in first.stdout
    assert "systemctl start --no-block demo.target" in log.read_text()
    assert (root / "etc/stackc/demo/secrets.env").read_text() == "STACK_API_KEY=sk-one\n"

    same = run(v1)
    assert same.returncode == 0 and "applied" not in same.stdout and "installed" not in same.stdout, same.stdout
    assert "try-restart" not in log.read_text()

    publish(v2)  # terraform apply after a spec change: new objects in the bucket, the same machine
    update = run(v2)
    assert update.returncode == 0, update.stdout + update.stderr
    assert "installed  /etc/stackc/demo/gateway/config.yaml" in update.stdout
    assert "model_name: assistant" in (root / "etc/stackc/demo/gateway/config.yaml").read_text()
    restarted = [line for line in update.stdout.splitlines() if line.startswith("restarted")]
    assert restarted == ["restarted  demo-gateway.service (those running)"], update.stdout

    (secrets / "STACK_API_KEY").write_text("sk-two")  # a rotated key
    rotated = run(v2)
    assert rotated.returncode == 0 and "secrets written" in rotated.stdout
    assert (root / "etc/stackc/demo/secrets.env").read_text() == "STACK_API_KEY=sk-two\n"
    assert "try-restart demo-gateway.service" in log.read_text()

    (secrets / "STACK_API_KEY").write_text("")  # a secret without a value holds the boot, it does not fail it
    publish({})  # and a bucket that cannot be read fails the run, which the unit retries
    assert run(v2).returncode != 0


def test_a_service_user_that_is_the_images_login_is_refused(tmp_path):
    files, codes, shown = build_spec(tmp_path, CLOUD + "systemd: {user: ubuntu}\n")
    assert files is None and codes == ["SC613"] and "systemd.user" in shown and "stack.yaml:" in shown
    azure = CLOUD.replace("gpu: l40s", "gpu: a100-80gb").replace("provider: aws, region: us-east-1",
                                                                 "provider: azure, region: eastus")
    files, codes, _ = build_spec(tmp_path, azure + "systemd: {user: azureuser}\n")
    assert files is None and codes == ["SC613"]
    files, _, _ = build_spec(tmp_path, azure)
    main = files["main.tf"].decode()
    assert re.search(r'admin_username +"?= "azureuser"', main) and re.search(r'username +"?= "azureuser"', main)
    assert re.search(r'sku +"?= "2404"', main) and '"stackc"' not in main


def test_an_engine_version_without_a_lock_or_python_is_refused_before_a_node_boots(tmp_path, monkeypatch):
    old = CLOUD.replace("max_context: 8192}", 'max_context: 8192, image: "vllm/vllm-openai:v0.31.0"}')
    files, codes, shown = build_spec(tmp_path, old)
    assert files is None and codes == ["SC612"] and "vllm==0.31.0" in shown and "remove `image:`" in shown
    # the 22.04 image Azure used to boot: Python 3.10, below vLLM 0.33's 3.11
    from stackc.targets.terraform.target import CLOUDS

    monkeypatch.setattr(type(CLOUDS["aws"]), "image_python", (3, 10))
    files, codes, shown = build_spec(tmp_path, CLOUD)
    assert files is None and codes == ["SC612"] and "needs Python >= 3.11" in shown and "has 3.10" in shown


NVME_STUBS = {
    # lsblk reports the mount point the test gives a disk; blkid knows what mkfs made
    "lsblk": 'for d in "${@: -$#}"; do [ -e "$d.mounted" ] && cat "$d.mounted"; done; true',
    "blkid": 'test -e "$1.fs"',
    "mkfs.ext4": 'echo "mkfs.ext4 $*" >> "$STUB_LOG"; touch "${@: -1}.fs"',
    "mdadm": 'echo "mdadm $*" >> "$STUB_LOG"',
    "mount": 'echo "mount $*" >> "$STUB_LOG"',
    "mountpoint": "exit 1",
}


def cache_on_nvme(tmp_path, disks: list[str], mounted: dict[str, str] = {}) -> tuple[subprocess.CompletedProcess, str, str]:
    """Run the boot program's cache_on_nvme with disks as files under a fake /dev/disk/by-id."""
    from stackc.targets.terraform import boot
    from stackc.targets.terraform.target import CLOUDS

    by_id, dev = tmp_path / "by-id", tmp_path / "dev"
    by_id.mkdir()
    dev.mkdir()
    for i, serial in enumerate(disks):
        (dev / f"nvme{i}n1").write_text("")
        (by_id / f"nvme-Amazon_EC2_NVMe_Instance_Storage_{serial}").symlink_to(dev / f"nvme{i}n1")
        (by_id / f"nvme-Amazon_EC2_NVMe_Instance_Storage_{serial}-part1").symlink_to(dev / f"nvme{i}n1")
    for i, where in mounted.items():
        (dev / f"nvme{i}n1.mounted").write_text(where + "\n")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in NVME_STUBS.items():
        (stubs / name).write_text(f"#!/usr/bin/env bash\nset -eu\n{body}\n")
        (stubs / name).chmod(0o755)
    function = boot.NVME.format(glob=CLOUDS["aws"].local_nvme_glob)
    function = function.replace("/dev/disk/by-id", str(by_id)).replace("/etc/fstab", str(tmp_path / "fstab"))
    function = function.replace("/dev/md/stackc-cache", str(dev / "md-stackc-cache"))
    (tmp_path / "fstab").write_text("")
    script = function + f"\ncache_on_nvme {tmp_path / 'cache'}\n"
    log = tmp_path / "log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STUB_LOG": str(log)}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    return result, log.read_text(), (tmp_path / "fstab").read_text()


def test_the_model_cache_goes_on_the_machines_nvme_disks(tmp_path):
    """Two raw instance-store disks: one RAID 0, formatted once, mounted at the cache, in fstab."""
    result, log, fstab = cache_on_nvme(tmp_path, ["AWS1", "AWS2"])
    assert result.returncode == 0, result.stderr
    assert "mdadm --create" in log and "--raid-devices=2" in log and f"{tmp_path}/dev/nvme0n1 {tmp_path}/dev/nvme1n1" in log
    assert "mkfs.ext4 -F -q -L stackc-cache" in log and f"mount -o noatime {tmp_path}/dev/md-stackc-cache {tmp_path}/cache" in log
    assert f" {tmp_path}/cache ext4 noatime,nofail" in fstab


def test_disks_the_image_mounted_are_shared_never_formatted(tmp_path):
    image_mount = tmp_path / "opt-dlami-nvme"  # where the Deep Learning AMI mounts its instance store
    result, log, fstab = cache_on_nvme(tmp_path, ["AWS1"], {0: str(image_mount)})
    assert result.returncode == 0, result.stderr
    assert "mkfs" not in log and "mdadm" not in log
    assert f"mount --bind {image_mount}/stackc {tmp_path}/cache" in log and "bind,nofail" in fstab


def test_no_nvme_disk_fails_the_boot_with_a_reason(tmp_path):
    result, log, _ = cache_on_nvme(tmp_path, [])
    assert result.returncode == 1 and "no local NVMe disk" in result.stderr and log == ""


TLS_CLOUD = PLAIN_CLOUD.replace("gateway: {api_key: {secret: STACK_API_KEY}}",
                                "gateway: {port: 443, api_key: {secret: STACK_API_KEY}, tls: {}}")


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_tls_comes_from_the_secret_store_and_the_url_is_https(tmp_path, provider):
    spec = TLS_CLOUD
    if provider != "aws":
        region = {"gcp": "us-central1", "azure": "eastus"}[provider]
        gpu = {"gcp": "gpu: l4", "azure": "gpu: a100-80gb"}[provider]
        spec = spec.replace("provider: aws, region: us-east-1", f"provider: {provider}, region: {region}").replace(
            "gpu: l40s", gpu)
    assert "tls: {}" in spec
    files, codes, shown = build_spec(tmp_path, spec)
    assert files is not None and codes == [], shown
    outputs, main = files["outputs.tf"].decode(), files["main.tf"].decode()
    assert re.search(r'value += "https://\$\{[^}]+\}:443/v1"', outputs)
    assert '"STACKC_GATEWAY_PEM", "STACKC_GATEWAY_PEM_KEY"' in main  # empty entries in the store, read at boot
    assert "443" in main and "4000" not in main  # the edge's port is opened, the gateway's is not
    boot = files["boot.sh.tftpl"].decode()
    assert 'install -D -m 0600 -o root -g root "$files/STACKC_GATEWAY_PEM" /etc/stackc/demo/tls/gateway.crt' in boot
    assert "systemctl try-restart demo-edge.service" in boot  # a renewed certificate restarts the edge
    unit = files["stack/node-0/units/demo-edge.service"].decode()
    assert "LoadCredential=gateway.pem:/etc/stackc/demo/tls/gateway.crt" in unit
    assert "BEGIN" not in "".join(f.decode(errors="replace") for f in files.values())  # no PEM anywhere
