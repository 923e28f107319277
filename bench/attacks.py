"""Attack the output directory of `stackc build` and report what each attack achieved.

    python bench/attacks.py                  # the stackc this Python imports
    PYTHONPATH=/path/to/old bench/attacks.py # another version, for a before/after table

Every victim file lives in a temporary directory: nothing outside it is touched. Each row says
whether the attack worked ("clobbered", "wrote outside", ...) or was stopped, and how. The
`-o` at a directory under `/` row runs only as root, inside a private mount namespace with a
tmpfs over `/srv`. Stdlib only; prints a Markdown table, exits 0 whatever it finds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ONE_NODE = EXAMPLES / "chatbot-8b-l40s.yaml"
TWO_NODES = EXAMPLES / "bare-metal-2x4-l40s.yaml"
KILLPOINT = ROOT / "tests" / "killpoint.py"


def stackc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackc", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def build(spec: Path, target: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return stackc("build", str(spec), "--target", target, "-o", str(out), *extra)


def code_of(done: subprocess.CompletedProcess) -> str:
    for line in (done.stderr + done.stdout).splitlines():
        if line.startswith(("error[", "warning[")):
            return line.split("]")[0].split("[")[1]
    return f"exit {done.returncode}"


def _victim(tmp: Path) -> Path:
    victim = tmp / "victim"
    victim.write_text("precious\n")
    return victim


def _planted(tmp: Path, name: str, plant) -> str:
    """Plant `plant(victim, out/name)` in a built directory, build again, and look at the victim."""
    victim, out = _victim(tmp), tmp / "out"
    build(ONE_NODE, "compose", out)
    plant(victim, out / name)
    done = build(ONE_NODE, "compose", out)
    return "victim clobbered" if victim.read_text() != "precious\n" else f"victim intact ({code_of(done)})"


def staging_symlink(tmp: Path) -> str:
    return _planted(tmp, ".compose.yaml.stackc-tmp", os.symlink)


def staging_hardlink(tmp: Path) -> str:
    return _planted(tmp, ".compose.yaml.stackc-tmp", os.link)


def manifest_staging_symlink(tmp: Path) -> str:
    return _planted(tmp, ".stackc-manifest.json.stackc-tmp", os.symlink)


def linked_directory(tmp: Path) -> str:
    out, elsewhere = tmp / "out", tmp / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    os.symlink(elsewhere, out / "config")
    done = build(ONE_NODE, "systemd", out)
    landed = [p for p in elsewhere.rglob("*") if p.is_file()]
    return f"wrote {len(landed)} files outside" if landed else f"stopped ({code_of(done)})"


def relative_output_through_link(tmp: Path) -> str:
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp / "deploy")
    done = subprocess.run([sys.executable, "-m", "stackc", "build", str(ONE_NODE), "--target", "compose", "-o",
                           "deploy/out"], cwd=tmp, capture_output=True, text=True)
    landed = [p for p in elsewhere.rglob("*") if p.is_file()]
    return f"wrote {len(landed)} files outside" if landed else f"stopped ({code_of(done)})"


def output_under_root(tmp: Path) -> str:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "not run (needs root and unshare)"
    script = (f"mount -t tmpfs none /srv && {sys.executable} -m stackc build {ONE_NODE} --target helm -o /srv; "
              "echo rc=$?; ls -A /srv | wc -l")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})
    files = int(done.stdout.strip().splitlines()[-1] or 0)
    return f"wrote {files} files into /srv" if files else f"stopped ({code_of(done)})"


def edited_stale_file(tmp: Path) -> str:
    out = tmp / "out"
    build(TWO_NODES, "systemd", out)
    (out / "node-1" / "install.sh").write_text("# my changes\n")
    done = build(ONE_NODE, "systemd", out)
    return "deleted silently" if not (out / "node-1" / "install.sh").exists() else f"kept ({code_of(done)})"


def _kill(out: Path, spec: Path, target: str, at: int) -> None:
    env = {**os.environ, "STACKC_KILL_AT": str(at), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, str(KILLPOINT), "build", str(spec), "--target", target, "-o", str(out)],
                   env=env, capture_output=True)


def _count(out: Path, spec: Path, target: str) -> int:
    scratch = out.parent / "count"
    shutil.copytree(out, scratch, symlinks=True)
    counter = out.parent / "n"
    env = {**os.environ, "STACKC_KILL_AT": "0", "STACKC_KILL_COUNT": str(counter), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, str(KILLPOINT), "build", str(spec), "--target", target, "-o", str(scratch)],
                   env=env, capture_output=True)
    shutil.rmtree(scratch)
    return int(counter.read_text())


def kill_during_commit(tmp: Path) -> str:
    """SIGKILL three quarters of the way through the build's file changes, then build again."""
    out = tmp / "out"
    build(TWO_NODES, "systemd", out)
    _kill(out, ONE_NODE, "systemd", _count(out, ONE_NODE, "systemd") * 3 // 4)
    check = build(ONE_NODE, "systemd", out, "--check")
    again = build(ONE_NODE, "systemd", out)
    wedged = again.returncode != 0
    temp = [p for p in out.rglob("*") if "stackc-tmp" in p.name or "stackc-staging" in p.name]
    parts = [f"--check exit {check.returncode}", "next build refused" if wedged else "next build completes",
             f"{len(temp)} temp files left" if temp else "no temp files"]
    return "; ".join(parts)


def kill_during_staging(tmp: Path) -> str:
    out = tmp / "out"
    build(TWO_NODES, "systemd", out)
    _kill(out, ONE_NODE, "systemd", 5)
    temp_after_kill = [p for p in out.rglob("*") if "stackc-tmp" in p.name or "stackc-staging" in p.name]
    build(TWO_NODES, "systemd", out)
    temp = [p for p in out.rglob("*") if "stackc-tmp" in p.name or "stackc-staging" in p.name]
    return f"{len(temp_after_kill)} temp entries after the kill, {len(temp)} after the next build"


def literal_credentials(tmp: Path) -> str:
    """The 15 injections of tests/test_credentials.py, each built for every target."""
    import copy

    sys.path.insert(0, str(ROOT))
    from tests.test_credentials import BASE, CANARY, INJECTIONS, TARGETS

    written = tried = 0
    for name, (change, _) in sorted(INJECTIONS.items()):
        doc = copy.deepcopy(BASE)
        change(doc)
        spec = tmp / "spec.yaml"
        spec.write_text(json.dumps(doc))
        for target in TARGETS:
            out = tmp / f"out-{tried}"
            build(spec, target, out, *(["--all-envs"] if "environments" in doc else []))
            tried += 1
            texts = [p.read_text(errors="replace").lower() for p in out.rglob("*") if p.is_file()] if out.exists() else []
            written += any(CANARY.lower()[:16] in t for t in texts)
    return f"{written} of {tried} builds wrote the credential"


ATTACKS = [
    ("symlink at the staging name (`.compose.yaml.stackc-tmp` -> victim)", staging_symlink),
    ("hard link at the staging name", staging_hardlink),
    ("symlink at the manifest's staging name", manifest_staging_symlink),
    ("symlinked directory above folders not yet made (`out/config` -> elsewhere)", linked_directory),
    ("relative `-o` through a committed link (`deploy` -> elsewhere)", relative_output_through_link),
    ("`-o` a directory directly under `/` (helm)", output_under_root),
    ("generated file edited, then no longer generated", edited_stale_file),
    ("`kill -9` during the commit step", kill_during_commit),
    ("`kill -9` during staging", kill_during_staging),
    ("literal credentials in URLs, engine_args, names, overrides", literal_credentials),
]


def main() -> None:
    version = stackc("--version").stdout.strip()
    print(f"{version} from `{json.dumps(os.environ.get('PYTHONPATH') or 'the installed package')}`\n")
    print("| attack | result |\n| --- | --- |")
    for title, attack in ATTACKS:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                result = attack(Path(tmp))
            except Exception as exc:  # noqa: BLE001 - a report, not a test
                result = f"harness error: {type(exc).__name__}: {exc}"
        print(f"| {title} | {result} |")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    main()
