"""A build is atomic under `kill -9` at any instant: the output directory holds the whole old
build or, once the next run has finished the journal, the whole new one; nothing else survives.

Each case replaces one build with another and sends SIGKILL just before the Nth change the writer
makes to the filesystem (Python's audit events: every open for writing, rename, unlink, mkdir,
rmdir), for every N until the build completes. Most kills hit a forked child that runs the writer
(milliseconds each); every tenth point runs the whole `stackc build` command line in a fresh
process instead (tests/killpoint.py), so the real command is killed at the same points too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stackc import writer

from .conftest import EXAMPLES, ROOT, run_cli

KILLPOINT = ROOT / "tests" / "killpoint.py"
USER_FILE = "notes.md"  # a file of the user's beside the generated ones
CASES = [  # (old spec, new spec, target): fewer nodes, more nodes, another layout
    ("bare-metal-2x4-l40s.yaml", "chatbot-8b-l40s.yaml", "systemd"),
    ("chatbot-8b-l40s.yaml", "bare-metal-2x4-l40s.yaml", "systemd"),
    ("chatbot-8b-l40s.yaml", "hybrid-70b-overflow.yaml", "compose"),
]
_CHANGES = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"}
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _state(out: Path) -> dict[str, bytes]:
    """Every regular file and link under `out`, with what an interrupted run may leave set aside."""
    found = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if rel.startswith(writer.STAGING_PREFIX) or rel == writer.JOURNAL:
            continue
        if path.is_symlink():
            found[rel] = b"link:" + os.readlink(path).encode()
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def _build(spec: str, target: str, out: Path) -> dict[str, bytes]:
    result = run_cli("build", str(EXAMPLES / spec), "--target", target, "-o", str(out))
    assert result.exit_code == 0, result.output
    return {rel: data for rel, data in _state(out).items() if rel != writer.MANIFEST}


def _kill_writer_at(n: int, out: Path, files: dict[str, bytes]) -> int:
    """Fork; the child runs the writer and is SIGKILLed before its nth change. Returns how it ended."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        seen = 0

        def hook(event, args):
            nonlocal seen
            if event == "open" and not (len(args) > 2 and isinstance(args[2], int) and args[2] & _WRITING):
                return
            if event != "open" and event not in _CHANGES:
                return
            seen += 1
            if seen == n:
                os.kill(os.getpid(), signal.SIGKILL)

        sys.addaudithook(hook)
        try:
            writer.write(str(out), files)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _kill_cli_at(n: int, out: Path, spec: str, target: str) -> int:
    env = {**os.environ, "STACKC_KILL_AT": str(n), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, str(KILLPOINT), "build", str(EXAMPLES / spec), "--target", target,
                           "-o", str(out)], env=env, capture_output=True, cwd=ROOT, timeout=120).returncode


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill test forks")
@pytest.mark.parametrize("old_spec,new_spec,target", CASES)
def test_a_build_killed_at_any_point_leaves_the_old_build_or_a_journal_that_completes_it(
        tmp_path, old_spec, new_spec, target):
    template, scratch = tmp_path / "template", tmp_path / "scratch"
    new_files = _build(new_spec, target, scratch)
    new_state = _state(scratch) | {USER_FILE: b"mine\n"}
    old_files = _build(old_spec, target, template)
    (template / USER_FILE).write_text("mine\n")
    old_state = _state(template)
    assert old_state != new_state

    tried, violations, finished_by_journal, cli_points = 0, [], 0, 0
    for n in range(1, 10_000):
        case = tmp_path / f"kill-{n}"
        out = case / "out"
        shutil.copytree(template, out, symlinks=True)
        if n % 10 == 0:
            ended = _kill_cli_at(n, out, new_spec, target)
            cli_points += 1
        else:
            ended = _kill_writer_at(n, out, new_files)
        if ended == 0:
            assert _state(out) == new_state and writer.compare(str(out), new_files).clean
            break
        assert ended == -signal.SIGKILL, f"point {n} ended with {ended}"
        tried += 1
        journal = (out / writer.JOURNAL).exists()
        before = _state(out)
        if not journal and before != old_state and before != new_state:
            violations.append(f"point {n}: neither the old nor the new build, and no journal to finish")
        interrupted = [p.name for p in out.iterdir() if p.name.startswith(writer.STAGING_PREFIX)] + (
            [writer.JOURNAL] if journal else [])
        if sorted(writer.compare(str(out), old_files).leftover) != sorted(interrupted):
            violations.append(f"point {n}: --check does not name what the interrupted run left")
        found = writer.recover(str(out))
        after = _state(out)
        if journal:
            finished_by_journal += 1
            if after != new_state:
                violations.append(f"point {n}: the journal did not complete the new build")
        elif after != before:
            violations.append(f"point {n}: recovery changed a directory without a journal")
        if found.kept:
            violations.append(f"point {n}: recovery kept {found.kept}")
        leftovers = [p.name for p in out.iterdir() if p.name.startswith(writer.STAGING_PREFIX) or p.name == writer.JOURNAL]
        if leftovers:
            violations.append(f"point {n}: {leftovers} left after recovery")
        # and the directory is never wedged: the old spec builds into it again
        writer.write(str(out), old_files)
        if _state(out) != old_state or not writer.compare(str(out), old_files).clean:
            violations.append(f"point {n}: rebuilding the old spec did not give the old build back")
        if list(case.iterdir()) != [out]:
            violations.append(f"point {n}: something was written beside the output directory")
        shutil.rmtree(case)
    else:
        pytest.fail("the build never completed")
    print(f"\n{old_spec} -> {new_spec} ({target}): {tried} kill points ({cli_points} of the whole command), "
          f"{finished_by_journal} finished from the journal, {len(violations)} violations")
    assert tried > 50 and finished_by_journal > 10 and cli_points > 3
    assert violations == []
