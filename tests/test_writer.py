"""The writer against a hostile or broken output directory: nothing is written outside `-o`,
nothing is followed, nothing a person wrote or edited is lost, and every refusal is a diagnostic.

The links and names planted here are the ones a pull request can commit (git stores links), or an
interrupted run can leave. Kill-at-every-point atomicity is in test_atomic.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stackc import writer

from .conftest import EXAMPLES, run_cli

BUILD_A = {"compose.yaml": b"a\n", "config/gateway/config.yaml": b"g\n", "config/router/haproxy.cfg": b"h\n"}
BUILD_B = {"compose.yaml": b"b\n", "config/gateway/config.yaml": b"g2\n", "units/x.service": b"u\n"}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and not p.is_symlink()}


@pytest.fixture
def victim(tmp_path):
    """A file outside the output directory that no build may touch."""
    path = tmp_path / "victim"
    path.write_text("precious")
    return path


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "a//b", "", "C:/x", "a\\b", "./a", "a/\x00"])
def test_paths_outside_the_output_are_refused(tmp_path, path):
    with pytest.raises(writer.OutputError) as err:
        writer.write(str(tmp_path / "out"), {path: b"x"})
    assert err.value.code == "SC710" and err.value.help
    assert not (tmp_path / "x").exists()


def test_write_records_a_manifest_and_removes_stale_files(tmp_path):
    out = tmp_path / "out"
    writer.write(str(out), {"a.yaml": b"1", "sub/b.yaml": b"2"})
    manifest = json.loads((out / writer.MANIFEST).read_text())
    assert manifest["files"] == {"a.yaml": writer.digest(b"1"), "sub/b.yaml": writer.digest(b"2")}
    (out / "mine.txt").write_text("user file")
    result = writer.write(str(out), {"a.yaml": b"1b"})
    assert result.removed == ["sub/b.yaml"] and not (out / "sub").exists()
    assert (out / "a.yaml").read_bytes() == b"1b" and (out / "mine.txt").read_text() == "user file"
    assert sorted(p.name for p in out.iterdir()) == [".stackc-manifest.json", "a.yaml", "mine.txt"]


def test_write_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "compose.yaml").write_text("hand-written")
    with pytest.raises(writer.OutputError, match="did not write it") as err:
        writer.write(str(out), {"compose.yaml": b"generated", "other.yaml": b"x"})
    assert err.value.code == "SC711"
    assert (out / "compose.yaml").read_text() == "hand-written" and not (out / "other.yaml").exists()
    assert sorted(p.name for p in out.iterdir()) == ["compose.yaml"]


def test_a_link_at_the_old_staging_name_is_not_written_through(tmp_path, victim):
    """The attack of the report: `ln -s ~/victim out/.compose.yaml.stackc-tmp` made the next build
    truncate the victim and turn compose.yaml into a link to it."""
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    os.symlink(victim, out / ".compose.yaml.stackc-tmp")
    os.symlink(victim, out / ".stackc-manifest.json.stackc-tmp")
    writer.write(str(out), BUILD_B)
    assert victim.read_text() == "precious"
    assert not (out / "compose.yaml").is_symlink() and (out / "compose.yaml").read_bytes() == b"b\n"
    assert not os.path.lexists(out / ".compose.yaml.stackc-tmp")  # the old temp name is cleared


def test_a_hard_link_to_a_generated_file_keeps_the_other_name_intact(tmp_path, victim):
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    (out / "compose.yaml").unlink()
    os.link(victim, out / "compose.yaml")
    manifest = json.loads((out / writer.MANIFEST).read_text())
    manifest["files"]["compose.yaml"] = writer.digest(b"precious")  # as if a build had written it
    (out / writer.MANIFEST).write_text(json.dumps(manifest))
    writer.write(str(out), BUILD_B)
    assert victim.read_text() == "precious" and (out / "compose.yaml").read_bytes() == b"b\n"


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_planted_manifest_link_is_replaced_not_followed(tmp_path, victim, kind):
    out = tmp_path / "out"
    out.mkdir()
    (os.symlink if kind == "symlink" else os.link)(victim, out / writer.MANIFEST)
    writer.write(str(out), {"compose.yaml": b"x"})
    assert victim.read_text() == "precious"
    assert not (out / writer.MANIFEST).is_symlink()
    assert json.loads((out / writer.MANIFEST).read_text())["files"] == {"compose.yaml": writer.digest(b"x")}


@pytest.mark.parametrize("link", ["config", "config/gateway"])
def test_a_linked_directory_is_refused_even_above_folders_that_do_not_exist(tmp_path, link):
    """`ln -s /elsewhere out/config`, then a build that creates `config/gateway/...`."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere, out / link)
    with pytest.raises(writer.OutputError, match="symbolic link") as err:
        writer.write(str(out), BUILD_A)
    assert err.value.code == "SC710"
    assert list(elsewhere.rglob("*")) == []
    assert [p.name for p in out.iterdir()] == [link.split("/")[0]]  # nothing staged is left either


def test_a_link_at_a_generated_file_is_refused(tmp_path, victim):
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    (out / "compose.yaml").unlink()
    os.symlink(victim, out / "compose.yaml")
    with pytest.raises(writer.OutputError, match="symbolic link"):
        writer.write(str(out), BUILD_B)
    assert victim.read_text() == "precious"
    assert (out / "config/gateway/config.yaml").read_bytes() == b"g\n"  # the old build is whole


def test_a_relative_output_path_through_a_link_is_refused(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "deploy")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(writer.OutputError, match="symbolic link"):
        writer.write("deploy/out", BUILD_A)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_an_absolute_output_path_is_taken_as_the_user_wrote_it(tmp_path):
    """macOS's /tmp is a link to /private/tmp: an absolute `-o` through a link is the user's choice."""
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    writer.write(str(tmp_path / "alias" / "out"), BUILD_A)
    assert _tree(tmp_path / "real" / "out").keys() == {*BUILD_A, writer.MANIFEST}


@pytest.mark.parametrize("where", ["/", "/etc", "/tmp", "HOME", "HOME/."])
def test_system_directories_are_refused(tmp_path, monkeypatch, where):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(writer.OutputError) as err:
        writer.write(where.replace("HOME", str(home)), BUILD_A)
    assert err.value.code == "SC712" and "-o" in err.value.help
    assert list(home.iterdir()) == []


def test_an_edited_stale_file_is_kept_and_reported_unless_forced(tmp_path):
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    (out / "config/router/haproxy.cfg").write_text("tuned by hand\n")
    result = writer.write(str(out), BUILD_B)
    assert result.kept == ["config/router/haproxy.cfg"] and result.removed == []
    assert (out / "config/router/haproxy.cfg").read_text() == "tuned by hand\n"
    assert writer.compare(str(out), BUILD_B).stale == ["config/router/haproxy.cfg"]  # --check still names it
    assert writer.write(str(out), BUILD_B).kept == ["config/router/haproxy.cfg"]  # and so does every build
    result = writer.write(str(out), BUILD_B, force=True)
    assert result.removed == ["config/router/haproxy.cfg"] and not (out / "config/router").exists()
    assert writer.compare(str(out), BUILD_B).clean


def test_what_an_interrupted_staging_left_is_reported_then_cleared(tmp_path):
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    stray = out / ".stackc-staging-0123456789abcdef"
    (stray / "files").mkdir(parents=True)
    (stray / "files" / "compose.yaml").write_text("half")
    (out / ".compose.yaml.stackc-tmp").write_text("older stackc")
    assert writer.compare(str(out), BUILD_A).leftover == [stray.name, ".compose.yaml.stackc-tmp"]
    result = writer.write(str(out), BUILD_A)
    assert result.recovered.staging == [stray.name]
    assert writer.compare(str(out), BUILD_A).clean
    assert _tree(out).keys() == {*BUILD_A, writer.MANIFEST}


def test_a_planted_staging_link_is_removed_not_followed(tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim.parent, out / ".stackc-staging-0123456789abcdef")
    writer.write(str(out), BUILD_A)
    assert victim.read_text() == "precious" and not os.path.lexists(out / ".stackc-staging-0123456789abcdef")


def test_a_forged_journal_cannot_touch_files_whose_content_it_does_not_know(tmp_path):
    """A journal is committed as easily as a link. Each step it names carries the digest of the file
    it replaces or removes; a user's `.env` next to the stack does not match and is kept."""
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    (out / ".env").write_text("HF_TOKEN=hf_real\n")
    staging = out / ".stackc-staging-00000000000000aa"
    (staging / "files").mkdir(parents=True)
    (staging / "files" / ".env").write_text("HF_TOKEN=attacker\n")
    (out / writer.JOURNAL).write_text(json.dumps({
        "staging": staging.name, "install": {".env": "0" * 64}, "remove": {"compose.yaml": "1" * 64}}))
    found = writer.recover(str(out))
    assert found.journal and found.kept == [".env", "compose.yaml"]
    assert (out / ".env").read_text() == "HF_TOKEN=hf_real\n" and (out / "compose.yaml").read_bytes() == b"a\n"
    assert not os.path.lexists(out / writer.JOURNAL) and not staging.exists()


def test_an_unreadable_journal_is_a_diagnostic(tmp_path):
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    (out / writer.JOURNAL).write_text("{not json")
    with pytest.raises(writer.OutputError) as err:
        writer.write(str(out), BUILD_B)
    assert err.value.code == "SC713" and writer.JOURNAL in err.value.help
    assert _tree(out).keys() == {*BUILD_A, writer.MANIFEST, writer.JOURNAL}


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_special_files_in_the_way_are_refused_without_being_opened(tmp_path, kind):
    out = tmp_path / "out"
    writer.write(str(out), BUILD_A)
    (out / "compose.yaml").unlink()
    (os.mkfifo if kind == "fifo" else os.mkdir)(out / "compose.yaml")
    with pytest.raises(writer.OutputError) as err:
        writer.write(str(out), BUILD_B)
    assert err.value.code == "SC710"


def _mounted(tmp_path: Path, name: str, options: str):
    """A tmpfs of its own for the test (root only), unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small or read-only filesystem needs root")
    where = tmp_path / name
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, name, str(where)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    yield from _mounted(tmp_path, "small", "size=256k")


@pytest.fixture
def read_only(tmp_path):
    yield from _mounted(tmp_path, "ro", "ro,size=64k")


def test_a_full_disk_leaves_the_previous_build_whole(small_disk):
    out = small_disk / "out"
    writer.write(str(out), BUILD_A)
    before = _tree(out)
    with pytest.raises(writer.OutputError) as err:
        writer.write(str(out), {"compose.yaml": b"b\n", "big.bin": b"x" * (512 * 1024)})
    assert err.value.code == "SC714" and "no space left" in err.value.message
    assert "nothing was changed" in err.value.help
    assert _tree(out) == before and sorted(p.name for p in out.iterdir()) == sorted(
        {".stackc-manifest.json", "compose.yaml", "config"})


def test_a_read_only_filesystem_is_a_diagnostic(read_only):
    with pytest.raises(writer.OutputError) as err:
        writer.write(str(read_only / "out"), BUILD_A)
    assert err.value.code == "SC714" and "read-only" in err.value.message


def test_the_cli_renders_output_errors_as_diagnostics(tmp_path):
    spec = EXAMPLES / "chatbot-8b-l40s.yaml"
    (tmp_path / "afile").write_text("")
    result = run_cli("build", str(spec), "--target", "compose", "-o", str(tmp_path / "afile" / "out"),
                     "--format", "json")
    assert result.exit_code == 1
    shown = {d["code"]: d for d in json.loads(result.stderr)}
    assert sorted(shown) == ["SC710", "SC716"]  # the output error, and the plain-HTTP gateway it would publish
    diag = shown["SC710"]
    assert diag["code"] == "SC710" and "is a file" in diag["message"] and diag["help"]
    result = run_cli("build", str(spec), "--target", "compose", "-o", "/")
    assert result.exit_code == 1 and "error[SC712]" in result.stderr and "help:" in result.stderr
    assert "Errno" not in result.stderr


def test_check_names_links_and_leftovers(tmp_path, victim):
    spec, out = EXAMPLES / "chatbot-8b-l40s.yaml", tmp_path / "out"
    assert run_cli("build", str(spec), "--target", "compose", "-o", str(out)).exit_code == 0
    (out / ".stackc-staging-0123456789abcdef").mkdir()
    result = run_cli("build", str(spec), "--target", "compose", "-o", str(out), "--check")
    assert result.exit_code == 3 and f"left over: {out}/.stackc-staging-0123456789abcdef" in result.stdout
    assert run_cli("build", str(spec), "--target", "compose", "-o", str(out)).exit_code == 0
    (out / "compose.yaml").unlink()
    os.symlink(victim, out / "compose.yaml")
    result = run_cli("build", str(spec), "--target", "compose", "-o", str(out), "--check")
    assert result.exit_code == 3 and f"unsafe: {out}/compose.yaml" in result.stdout


def test_an_edited_stale_file_is_a_warning_on_the_command_line(tmp_path):
    out = tmp_path / "out"
    assert run_cli("build", str(EXAMPLES / "bare-metal-2x4-l40s.yaml"), "--target", "systemd", "-o", str(out)).exit_code == 0
    (out / "node-1" / "install.sh").write_text("# my changes\n")
    result = run_cli("build", str(EXAMPLES / "chatbot-8b-l40s.yaml"), "--target", "systemd", "-o", str(out))
    assert result.exit_code == 0
    assert f"warning[SC715]: kept `{out}/node-1/install.sh`" in result.stderr and "--force" in result.stderr
    assert (out / "node-1" / "install.sh").read_text() == "# my changes\n"
    result = run_cli("build", str(EXAMPLES / "chatbot-8b-l40s.yaml"), "--target", "systemd", "-o", str(out), "--force")
    assert result.exit_code == 0 and f"removed {out}/node-1/install.sh" in result.stdout
    assert not (out / "node-1").exists()
