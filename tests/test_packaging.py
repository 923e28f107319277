"""Both a normal and an editable install import `stackc` (from compiler/) and `stackc.targets`
(from targets/), in a fresh virtual environment, and run the console script.

To stay fast, the fresh venv gets stackc itself with `--no-deps` (pip fetches only the build
backend, setuptools, from the package index) and finds the runtime dependencies through
PYTHONPATH: this test's own site-packages, whose .pth files (such as an editable install of
stackc) are not processed from PYTHONPATH, so only the fresh install can provide `stackc`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def _copy_source(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    names = files.stdout.split() if files.returncode == 0 and files.stdout else None
    if names is None:  # not a git checkout: copy the tree without caches
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", "out"))
        return dest
    for name in names:
        if name.startswith("tests/"):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def _dependencies_only(dest: Path) -> Path:
    """This interpreter's site-packages minus stackc (and an editable install's finder)."""
    dest.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if entry.name.startswith(("__editable__", "stackc", "_stackc")):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


@pytest.mark.parametrize("editable", [False, True], ids=["normal", "editable"])
def test_fresh_install_imports_both_packages(tmp_path, editable):
    source = _copy_source(tmp_path / "src")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": str(_dependencies_only(tmp_path / "deps")), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    args = [str(python), "-m", "pip", "install", "--quiet", "--no-deps"]
    args += ["-e", str(source)] if editable else [str(source)]
    result = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    probe = ("import stackc, stackc.targets, stackc.cli, stackc.engines; "
             "from stackc.targets import REGISTRY; "
             "print(stackc.__file__); print(stackc.targets.__file__); print(sorted(REGISTRY))")
    result = subprocess.run([str(python), "-c", probe], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    core, targets, registry = result.stdout.splitlines()
    if editable:
        assert Path(core).parent == source / "compiler" and Path(targets).parent == source / "targets"
    else:
        assert str(env_dir) in core and str(env_dir) in targets
    assert registry == "['compose', 'helm', 'systemd', 'terraform']"  # every built-in, through its entry point

    help_ = subprocess.run([str(env_dir / "bin" / "stackc"), "--help"], env=env, capture_output=True, text=True)
    assert help_.returncode == 0 and "validate" in help_.stdout
    # the catalog data ships in the package
    cat = subprocess.run([str(env_dir / "bin" / "stackc"), "catalog", "gpus"], env=env, capture_output=True, text=True)
    assert cat.returncode == 0 and "h100-sxm" in cat.stdout
    built = subprocess.run([str(env_dir / "bin" / "stackc"), "build", str(ROOT / "examples" / "chatbot-8b-l40s.yaml"),
                            "--target", "systemd", "-o", str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert built.returncode == 0 and (tmp_path / "out" / "install.sh").exists(), built.stderr
