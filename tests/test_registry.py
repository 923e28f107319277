"""A target is one folder and one registry line: a throw-away target, in a package of its own
installed nowhere but a temporary directory (its distribution metadata names it in the
`stackc.targets` entry-point group), is built with `stackc build --target`, listed in the
help and in "use a target that does" messages, owns a spec section of its own (`echo:`, its
options model, its own lowering and check), with no file of stackc's touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

STACKC = Path(sys.executable).with_name("stackc")

TARGET = '''
from dataclasses import dataclass

from stackc.diagnostics import Diagnostic
from stackc.ir import Deployment, Feature, specialise
from stackc.targets import Capabilities, Target

from .options import SECTION


@dataclass(frozen=True)
class EchoDeployment(Deployment):
    prefix: str = ""


class EchoTarget(Target):
    name = "echo"
    description = "one line per service: its name and image"
    capabilities = Capabilities(multi_node=True, gpu_vendors=("nvidia", "amd"), kv_tiers=True, overflow=True,
                                routing=("round-robin", "least-load", "session", "prefix-aware"), tls_edge=True)
    section = SECTION

    def prepare(self, dep, plan):
        options = plan.stack.spec.section("echo")
        found = (Feature("echo-shout", plan.stack.where("echo", "prefix")),) if options.prefix.isupper() else ()
        return specialise(dep, EchoDeployment, prefix=options.prefix, features=dep.features + found)

    def check(self, dep):
        return super().check(dep) + [Diagnostic.error("SC607", "the echo target does not shout", f.span,
                                                      help="write `echo.prefix` in lowercase")
                                     for f in dep.features if f.name == "echo-shout"]

    def emit(self, dep, spec_name):
        return {"services.txt": "".join(f"{dep.prefix}{s.name} {s.image.ref}\\n" for s in dep.services).encode()}
'''

OPTIONS = '''
from pydantic import Field

from stackc.spec_values import _Strict
from stackc.targets.section import Section


class Echo(_Strict):
    """Settings only the echo target reads."""

    prefix: str = Field("", description="Written before every line.")


SECTION = Section("echo", Echo, "Settings for the echo target.")
'''


def _install(tmp_path: Path) -> dict[str, str]:
    """The package and its metadata on PYTHONPATH: what `pip install` of it would leave."""
    site = tmp_path / "site"
    (site / "stackc_echo").mkdir(parents=True)
    (site / "stackc_echo" / "__init__.py").write_text(TARGET)
    (site / "stackc_echo" / "options.py").write_text(OPTIONS)
    meta = site / "stackc_echo-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: stackc-echo\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text("[stackc.targets]\necho = stackc_echo:EchoTarget\n")
    return {**os.environ, "PYTHONPATH": str(site), "NO_COLOR": "1"}


def _stackc(env, *args, cwd=ROOT):
    return subprocess.run([str(STACKC), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_target_from_another_package_builds_like_a_built_in_one(tmp_path):
    env = _install(tmp_path)
    out = tmp_path / "out"
    result = _stackc(env, "build", "examples/chatbot-8b-l40s.yaml", "--target", "echo", "-o", str(out))
    assert result.returncode == 0, result.stderr
    lines = (out / "services.txt").read_text().splitlines()
    assert any(line.startswith("chat-0 vllm/vllm-openai:") for line in lines), lines
    assert json.loads((out / ".stackc-manifest.json").read_text())["files"].keys() >= {"services.txt"}

    helped = _stackc(env, "build", "--help")
    assert "compose, echo, helm, systemd, terraform, or all" in " ".join(helped.stdout.split())
    both = _stackc(env, "build", "examples/moe-deepseek-r1-8xh200.yaml", "--target", "all", "-o", str(tmp_path / "all"))
    assert both.returncode == 0, both.stderr
    assert (tmp_path / "all" / "echo" / "services.txt").exists() and (tmp_path / "all" / "helm" / "values.yaml").exists()


def test_a_target_owns_its_spec_section(tmp_path):
    """`echo:` is checked by the target's own model (in the schema too), read by its `prepare`,
    and refused by its own `check` with a span in the section; without the target it is unknown."""
    env = _install(tmp_path)
    base = (ROOT / "examples" / "chatbot-8b-l40s.yaml").read_text()
    spec = tmp_path / "echo.yaml"
    spec.write_text(base + "echo:\n  prefix: '> '\n")
    result = _stackc(env, "build", str(spec), "--target", "echo", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "services.txt").read_text().startswith("> ")
    assert _stackc(env, "build", str(spec), "--target", "compose", "-o", str(tmp_path / "c")).returncode == 0

    schema = json.loads(_stackc(env, "schema").stdout)
    assert schema["properties"]["echo"]["description"] == "Settings for the echo target."
    assert schema["$defs"]["EnvironmentOverlay"]["properties"]["echo"]["description"] == "Changes to `echo:`."

    spec.write_text(base + "echo:\n  prefx: x\n")
    wrong = _stackc(env, "validate", str(spec))
    assert wrong.returncode == 1 and "`prefx`" in wrong.stdout and f"{spec}:" in wrong.stdout, wrong.stdout

    spec.write_text(base + "echo:\n  prefix: LOUD\n")
    lines = base.count("\n")
    shout = _stackc(env, "build", str(spec), "--target", "echo", "-o", str(tmp_path / "o2"), "-f", "json")
    found = json.loads(shout.stdout or shout.stderr)
    assert shout.returncode == 1 and not (tmp_path / "o2").exists()
    assert [(d["code"], d["line"]) for d in found] == [("SC607", lines + 2)], found

    spec.write_text(base + "echo:\n  prefix: x\n")
    alone = _stackc({**os.environ, "NO_COLOR": "1"}, "validate", str(spec))
    assert alone.returncode == 1 and "`echo`" in alone.stdout, alone.stdout


def test_which_targets_can_messages_read_the_registry(tmp_path):
    env = _install(tmp_path)
    spec = tmp_path / "amd.yaml"
    spec.write_text((ROOT / "examples" / "chatbot-8b-l40s.yaml").read_text().replace("gpu: l40s", "gpu: mi300x"))
    result = _stackc(env, "build", str(spec), "--target", "helm", "-o", str(tmp_path / "x"))
    assert result.returncode == 1 and "error[SC602]" in result.stderr
    assert "use a target that does: compose, echo" in result.stderr


def test_validate_and_help_import_no_target():
    """`validate` reads the targets' spec sections (their `options` modules, found through the
    registry) and nothing else of them: no Target, no translation, not `base`."""
    probe = ("import sys; from stackc.cli import app; from typer.testing import CliRunner; "
             "r = CliRunner().invoke(app, ['validate', 'examples/chatbot-8b-l40s.yaml']); "
             "print(r.exit_code, sorted(m for m in sys.modules if m.startswith('stackc.targets.')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    sections = ["helm.options", "systemd.options", "terraform.options"]
    packages = ["compose", "helm", "systemd", "terraform"]  # docstrings only: a submodule's import runs them
    loaded = sorted(f"stackc.targets.{m}" for m in ["entry_points", "registry", "section", *sections, *packages])
    assert result.stdout == f"0 {loaded}\n", result.stdout + result.stderr


READERS = ("import json, sys; from importlib.metadata import entry_points; from stackc.targets.entry_points import scan\n"
           "groups = sys.argv[1:]\n"
           "ours = {g: sorted((e.name, e.value) for e in scan(g)) for g in groups}\n"
           "theirs = {g: sorted((e.name, e.value) for e in entry_points(group=g)) for g in groups}\n"
           "print(json.dumps([ours, theirs]))")


def test_entry_points_are_read_as_importlib_metadata_reads_them(tmp_path):
    """The registry's own reader (importlib.metadata costs a plain `validate` a tenth of its time)
    gives importlib.metadata's answer: on this environment, with a plug-in on PYTHONPATH, and with
    two copies of one distribution on the path, where the first on the path wins."""
    env = _install(tmp_path)
    shadow = tmp_path / "shadow" / "Stackc.Echo-0.2.dist-info"
    shadow.mkdir(parents=True)
    (shadow / "METADATA").write_text("Metadata-Version: 2.1\nName: stackc-echo\nVersion: 0.2\n")
    (shadow / "entry_points.txt").write_text("# a comment\n[stackc.targets]\necho = shadow_echo:EchoTarget [extra]\n")
    groups = ["stackc.targets", "console_scripts", "pydantic"]
    for path in (env["PYTHONPATH"], f"{env['PYTHONPATH']}{os.pathsep}{shadow.parent}", f"{shadow.parent}{os.pathsep}{env['PYTHONPATH']}"):
        result = subprocess.run([sys.executable, "-c", READERS, *groups], env={**env, "PYTHONPATH": path},
                                capture_output=True, text=True, timeout=120)
        ours, theirs = json.loads(result.stdout)
        assert ours == theirs, path
        first = "shadow_echo:EchoTarget [extra]" if path.startswith(str(shadow.parent)) else "stackc_echo:EchoTarget"
        assert ["echo", first] in ours["stackc.targets"] and len(ours["console_scripts"]) > 3, ours


def test_a_plain_validate_never_imports_importlib_metadata():
    """Neither the registry nor pydantic's plugin loader imports it when every plugin is off (as
    the console script sets it); a user who names plugins to disable gets pydantic's own loader."""
    probe = ("import sys; sys.argv = ['stackc', 'validate', 'examples/chatbot-8b-l40s.yaml']\n"
             "from stackc.console import main\ntry:\n    main()\nexcept SystemExit as exit:\n"
             "    print(exit.code, 'importlib.metadata' in sys.modules)")
    for setting, loaded in ((None, False), ("__all__", False), ("some_plugin", True)):
        env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
        env.update({"PYDANTIC_DISABLE_PLUGINS": setting} if setting else {})
        result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.stdout.split() == ["0", str(loaded)], (setting, result.stdout + result.stderr)


ENGINE = '''
from stackc.engines.vllm import Vllm


class Echo(Vllm):
    """vLLM's behaviour under another name: every fact the compiler needs comes from the class."""

    name = "echo"
    title = "Echo"


ENGINE = Echo()
'''

BUILD = '''
import sys
sys.path.insert(0, sys.argv[1])
import stackc.engines
stackc.engines.MODULES["echo"] = "echo_engines.echo"  # the one registry line
from stackc.console import main
sys.argv = ["stackc", *sys.argv[2:]]
main()
'''


def test_an_engine_is_one_module_and_one_registry_line(tmp_path):
    """A throw-away engine module and its registry line: the spec accepts `engine: echo`, the
    planner, the lowering and the targets read everything from the engine, and the schema
    lists it; nothing else is edited."""
    (tmp_path / "echo_engines").mkdir()
    (tmp_path / "echo_engines" / "__init__.py").write_text("")
    (tmp_path / "echo_engines" / "echo.py").write_text(ENGINE)
    spec = tmp_path / "echo.yaml"
    text = (ROOT / "examples" / "chatbot-8b-l40s.yaml").read_text()
    spec.write_text(text.replace("    max_context: 16384\n", "    max_context: 16384\n    engine: echo\n"))
    assert "engine: echo" in spec.read_text()

    def run(*args):
        return subprocess.run([sys.executable, "-c", BUILD, str(tmp_path), *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})

    for target in ("compose", "systemd"):
        out = tmp_path / target
        built = run("build", str(spec), "--target", target, "-o", str(out))
        assert built.returncode == 0, built.stdout + built.stderr
    compose = (tmp_path / "compose" / "compose.yaml").read_text()
    assert "vllm/vllm-openai:" in compose and "--served-model-name" in compose
    unit = (tmp_path / "systemd" / "units" / "helpdesk-chat-0.service").read_text()
    assert "/opt/stackc/vllm/bin/vllm serve" in unit
    refused = run("build", str(spec), "--target", "helm", "-o", str(tmp_path / "helm"))
    assert refused.returncode == 1 and "the `helm` target cannot run the `echo` engine" in refused.stderr
    schema = run("schema")
    assert '"echo"' in schema.stdout and "tensorrt-llm or echo" in schema.stdout


def test_a_broken_section_is_named_not_a_traceback(tmp_path):
    env = _install(tmp_path)
    (tmp_path / "site" / "stackc_echo" / "options.py").write_text("raise ImportError('a missing dependency')\n")
    for args in (("schema",), ("validate", "examples/chatbot-8b-l40s.yaml")):
        result = _stackc(env, *args)
        shown = result.stdout + result.stderr
        assert result.returncode == 1 and "Traceback" not in shown, shown
        assert "error[SC000]" in shown and "`stackc_echo.options`" in shown and "a missing dependency" in shown, shown
