"""Writing a build into its output directory: contained, exclusive, and atomic under `kill -9`.

Anything inside the output directory may have been planted: git stores symbolic links, and
docs/ci.md tells users to commit the generated files, so a pull request can put a link where
the next build writes. The writer therefore trusts no name below the root:

- every directory under the root is opened relative to its parent with `O_NOFOLLOW`, so a link
  anywhere in a path is refused, never followed, and no check-then-use race is left open;
- the new files are written into a private staging directory (a random name, mode 0700, created
  by this run) with `O_CREAT | O_EXCL | O_NOFOLLOW`;
- the switch is journalled. Once everything is staged and synced, one rename makes
  `.stackc-journal.json` appear: the commit point. The journal lists each file to install with
  the digest of what it replaces, and each stale file to remove with the digest it must still
  have. Applying it is idempotent, so a run killed at any instant leaves either the old build
  (plus a staging directory the next run deletes) or a journal the next run finishes.

A digest that no longer matches means a person edited the file: it is kept and reported, never
overwritten or deleted silently. A forged journal can therefore only replace or delete files
whose exact contents its author already knew.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from typing import Iterable, Optional

from .outdir import (DIR_FLAGS, NEW_FILE, Cursor, OutputError, check_relative, link_error, lstat, open_root, os_error,
                     prune, read, sorted_paths)

MANIFEST = ".stackc-manifest.json"
JOURNAL = ".stackc-journal.json"
STAGING_PREFIX = ".stackc-staging-"
_STAGING_NAME = re.compile(r"\.stackc-staging-[0-9a-f]{16}")
_LEGACY_TMP = ".stackc-tmp"  # `.<name>.stackc-tmp`, what stackc before 0.2 staged beside each file


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# the manifest and the journal


def manifest_bytes(files: dict[str, bytes], kept: Optional[dict[str, str]] = None) -> bytes:
    """The record of what stackc wrote. A stale file kept because it was edited stays in it with the
    digest stackc wrote, so every later build (and `--check`) still names it."""
    entries = {rel: digest(data) for rel, data in files.items()} | (kept or {})
    doc = {"generator": "stackc", "note": "files stackc wrote here; it removes them when a later build no longer writes them",
           "files": dict(sorted(entries.items()))}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _manifest_at(root_fd: int) -> dict[str, str]:
    data = read(root_fd, MANIFEST)
    try:
        files = json.loads(data or b"{}").get("files", {})
        return {check_relative(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (ValueError, OutputError, AttributeError, TypeError):
        return {}


def read_manifest(out_dir: str) -> dict[str, str]:
    root = open_root(out_dir, create=False)
    if root is None:
        return {}
    try:
        return _manifest_at(root)
    finally:
        os.close(root)


@dataclass
class _Journal:
    staging: str
    install: dict[str, Optional[str]]  # path -> digest of the file it replaces (None: there is none)
    remove: dict[str, str]  # path -> digest the stale file must still have

    def dump(self) -> bytes:
        return (json.dumps({"generator": "stackc", "staging": self.staging, "install": self.install,
                            "remove": self.remove}, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def load(cls, data: bytes) -> Optional["_Journal"]:
        try:
            raw = json.loads(data)
            staging = raw["staging"]
            install = {check_relative(k): (str(v) if v is not None else None) for k, v in raw["install"].items()}
            remove = {check_relative(k): str(v) for k, v in raw["remove"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, OutputError):
            return None
        if not isinstance(staging, str) or not _STAGING_NAME.fullmatch(staging):
            return None
        return cls(staging, install, remove)


# ---------------------------------------------------------------------------------------------
# recovery: finish a committed build, clear what an interrupted one left


@dataclass
class Leftovers:
    """What interrupted runs left behind: a journal to finish, staging directories, old temp files."""

    journal: bool = False
    staging: list[str] = field(default_factory=list)
    temp: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # files the journal would replace that were edited since


def _leftovers(root_fd: int, rels: Iterable[str], cursor: Cursor) -> Leftovers:
    found = Leftovers(journal=lstat(root_fd, JOURNAL) is not None)
    found.staging = sorted(n for n in os.listdir(root_fd) if n.startswith(STAGING_PREFIX))
    for rel in sorted_paths(set(rels)):
        try:
            fd, name = cursor.parent(rel)
        except OutputError:
            continue
        tmp = f".{name}{_LEGACY_TMP}"
        if lstat(fd, tmp) is not None:
            found.temp.append("/".join(rel.split("/")[:-1] + [tmp]))
    return found


def _remove_entry(parent_fd: int, name: str) -> None:
    """Delete a leftover: a link or a file is unlinked (never followed), a directory removed
    without following anything inside it."""
    st = lstat(parent_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent_fd)
    else:
        os.unlink(name, dir_fd=parent_fd)


def _apply(root_fd: int, journal: _Journal, shown: str) -> list[str]:
    """Carry out a committed journal. Every step can run again: a file already moved is skipped,
    and a file whose content is not what the journal expects is left alone. Returns what it
    kept that way."""
    kept: list[str] = []
    try:
        staging = os.open(journal.staging, DIR_FLAGS, dir_fd=root_fd)
    except OSError:
        staging = None
    target, source = Cursor(root_fd, shown), Cursor(staging, shown) if staging is not None else None
    try:
        if source is not None:
            for rel in sorted_paths(journal.install):
                src_fd = source.dir(["files"] + rel.split("/")[:-1], create=False)
                name = rel.split("/")[-1]
                if lstat(src_fd, name) is None:
                    continue  # installed before the interruption
                dst_fd, _ = target.parent(rel, create=True)
                expected = journal.install[rel]
                present = lstat(dst_fd, name)
                if present is not None:
                    current = read(dst_fd, name)
                    if current is None or digest(current) != expected:
                        kept.append(rel)
                        continue
                os.replace(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        for rel in sorted_paths(journal.remove):
            try:
                fd, name = target.parent(rel)
            except OutputError:
                continue
            current = read(fd, name)
            if current is None:
                continue
            if digest(current) != journal.remove[rel]:
                kept.append(rel)
                continue
            os.unlink(name, dir_fd=fd)
            prune(target, rel)
        if staging is not None and lstat(staging, "manifest.json") is not None:
            os.replace("manifest.json", MANIFEST, src_dir_fd=staging, dst_dir_fd=root_fd)
    finally:
        target.close()
        if source is not None:
            source.close()
        if staging is not None:
            os.close(staging)
    os.unlink(JOURNAL, dir_fd=root_fd)
    _remove_entry(root_fd, journal.staging)
    return kept


def recover(out_dir: str) -> Leftovers:
    """Finish a build that was killed after its commit point and delete the staging
    directories of builds killed before it. Returns what was found."""
    root = open_root(out_dir, create=False)
    if root is None:
        return Leftovers()
    try:
        return _recover(root, out_dir)
    finally:
        os.close(root)


def _recover(root_fd: int, shown: str) -> Leftovers:
    found = Leftovers(journal=lstat(root_fd, JOURNAL) is not None)
    if found.journal:
        journal = _Journal.load(read(root_fd, JOURNAL) or b"")
        if journal is None:
            raise OutputError(
                "SC713", f"`{shown}/{JOURNAL}` is not a journal stackc can finish",
                f"stackc writes it while it switches builds; if no build is running, delete `{JOURNAL}` and build again")
        found.kept = _apply(root_fd, journal, shown)
    for name in sorted(os.listdir(root_fd)):
        if name.startswith(STAGING_PREFIX):
            found.staging.append(name)
            _remove_entry(root_fd, name)
    return found


# ---------------------------------------------------------------------------------------------
# building


@dataclass
class Result:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # stale files a person edited: not deleted
    recovered: Leftovers = field(default_factory=Leftovers)


def write(out_dir: str, files: dict[str, bytes], force: bool = False) -> Result:
    """Write `files` under `out_dir` as one switch from the previous build to this one, and
    remove the files the previous build wrote and this one does not."""
    for rel in files:
        check_relative(rel)
    root = open_root(out_dir, create=True)
    assert root is not None
    try:
        result = Result(recovered=_recover(root, out_dir))
        journal, kept = _decide(root, files, out_dir, force)
        result.kept = sorted_paths(kept)
        _stage(root, journal, files, kept, out_dir)
        try:
            _sync(root)
            os.replace(f"{journal.staging}/journal.json", JOURNAL, src_dir_fd=root, dst_dir_fd=root)
        except OSError as exc:
            _remove_entry(root, journal.staging)
            raise os_error(exc, os.path.join(out_dir, JOURNAL)) from None
        _apply(root, journal, out_dir)
        result.written = sorted_paths(files)
        result.removed = sorted_paths(journal.remove)
        return result
    finally:
        os.close(root)


def _decide(root_fd: int, files: dict[str, bytes], shown: str, force: bool) -> tuple[_Journal, dict[str, str]]:
    """Check every path against what is on disk, before anything is written."""
    old = _manifest_at(root_fd)
    cursor = Cursor(root_fd, shown)
    install: dict[str, Optional[str]] = {}
    remove: dict[str, str] = {}
    kept: dict[str, str] = {}
    try:
        for rel in sorted_paths(files):
            fd, name = cursor.parent(rel)
            st = lstat(fd, name)
            if st is None:
                install[rel] = None
                continue
            path = os.path.join(shown, rel)
            if stat.S_ISLNK(st.st_mode):
                raise link_error(path)
            if stat.S_ISDIR(st.st_mode):
                raise OutputError("SC710", f"refusing to write `{path}`: a directory is in the way",
                                  f"move `{path}` away or choose another output directory")
            if rel not in old:
                raise OutputError(
                    "SC711", f"refusing to overwrite `{path}`: stackc did not write it (it is not in {MANIFEST})",
                    "move it away or choose another output directory")
            current = read(fd, name)
            if current is None:
                raise OutputError("SC710", f"refusing to write `{path}`: it is not a regular file",
                                  f"move `{path}` away or choose another output directory")
            install[rel] = digest(current)
        for rel in sorted_paths(set(old) - set(files)):
            try:
                fd, name = cursor.parent(rel)
            except OutputError:
                continue  # a link or a file where its directory was: not ours to touch
            current = read(fd, name)
            if current is None:
                continue
            if digest(current) == old[rel] or force:
                remove[rel] = digest(current)
            else:
                kept[rel] = old[rel]
        for tmp in _leftovers(root_fd, list(files) + list(old), cursor).temp:
            fd, name = cursor.parent(tmp)
            if fd is not None:
                os.unlink(name, dir_fd=fd)
    finally:
        cursor.close()
    return _Journal(_new_staging(root_fd, shown), install, remove), kept


def _new_staging(root_fd: int, shown: str) -> str:
    while True:
        name = STAGING_PREFIX + secrets.token_hex(8)
        try:
            os.mkdir(name, 0o700, dir_fd=root_fd)
            return name
        except FileExistsError:
            continue
        except OSError as exc:
            raise os_error(exc, shown) from None


def _stage(root_fd: int, journal: _Journal, files: dict[str, bytes], kept: dict[str, str], shown: str) -> None:
    """Every new file, the new manifest and the journal, inside the staging directory."""
    staging = os.open(journal.staging, DIR_FLAGS, dir_fd=root_fd)
    cursor = Cursor(staging, journal.staging)
    failure: Optional[OutputError] = None
    try:
        for rel in sorted_paths(files):
            fd = cursor.dir(["files"] + rel.split("/")[:-1], create=True)
            _create(fd, rel.split("/")[-1], files[rel])
        _create(staging, "manifest.json", manifest_bytes(files, kept))
        _create(staging, "journal.json", journal.dump())
    except OutputError as exc:
        failure = exc
    except OSError as exc:
        failure = os_error(exc, shown)
    finally:
        cursor.close()
        os.close(staging)
    if failure is not None:
        _remove_entry(root_fd, journal.staging)  # nothing of the old build was touched
        raise failure


def _create(dir_fd: int, name: str, data: bytes) -> None:
    fd = os.open(name, NEW_FILE, 0o666, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _sync(root_fd: int) -> None:
    """Staged data reaches the disk before the journal names it, so a power cut cannot leave a
    committed journal pointing at empty files. One filesystem-wide sync instead of one per file."""
    os.sync()


# ---------------------------------------------------------------------------------------------
# --check


@dataclass
class Comparison:
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    leftover: list[str] = field(default_factory=list)  # an interrupted build's journal, staging or temp files
    unsafe: list[str] = field(default_factory=list)  # a link where a generated file or directory belongs

    @property
    def clean(self) -> bool:
        return not (self.missing or self.changed or self.stale or self.leftover or self.unsafe)


def compare(out_dir: str, files: dict[str, bytes]) -> Comparison:
    """What `--check` reports: files to be written that are absent or differ, files a previous
    build wrote that this one would remove, and anything an interrupted build left."""
    result = Comparison()
    root = open_root(out_dir, create=False)
    if root is None:
        result.missing = sorted_paths(files)
        return result
    cursor = Cursor(root, out_dir)
    try:
        old = _manifest_at(root)
        for rel in sorted_paths(files):
            try:
                fd, name = cursor.parent(rel)
            except OutputError:
                result.unsafe.append(rel)
                continue
            st = lstat(fd, name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                result.unsafe.append(rel)
                continue
            current = read(fd, name)
            if current is None:
                result.missing.append(rel)
            elif current != files[rel]:
                result.changed.append(rel)
        for rel in sorted_paths(set(old) - set(files)):
            try:
                fd, name = cursor.parent(rel)
            except OutputError:
                continue
            if lstat(fd, name) is not None:
                result.stale.append(rel)
        found = _leftovers(root, list(files) + list(old), cursor)
        result.leftover = ([JOURNAL] if found.journal else []) + found.staging + found.temp
    finally:
        cursor.close()
        os.close(root)
    return result
