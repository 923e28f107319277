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

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from typing import Iterable, Optional

MANIFEST = ".stackc-manifest.json"
JOURNAL = ".stackc-journal.json"
STAGING_PREFIX = ".stackc-staging-"
_STAGING_NAME = re.compile(r"\.stackc-staging-[0-9a-f]{16}")
_LEGACY_TMP = ".stackc-tmp"  # `.<name>.stackc-tmp`, what stackc before 0.2 staged beside each file
_MAX_READ = 256 * 1024 * 1024  # a file bigger than this is not one stackc wrote

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class OutputError(Exception):
    """The build cannot be written: the message says what is in the way, `help` how to clear it."""

    def __init__(self, code: str, message: str, help: str) -> None:
        super().__init__(message)
        self.code, self.message, self.help = code, message, help


def check_relative(path: str) -> str:
    """A generated path: relative, `/`-separated, without `.`, `..` or empty parts."""
    if not isinstance(path, str) or not path or path.startswith(("/", "\\")) or "\\" in path \
            or re.match(r"[A-Za-z]:", path) or "\x00" in path:
        raise OutputError("SC710", f"refusing to write `{path}`: output paths are relative",
                          "this is a bug in the target that produced the path; please report it")
    if any(p in ("", ".", "..") for p in path.split("/")):
        raise OutputError("SC710", f"refusing to write `{path}`: it would leave the output directory",
                          "this is a bug in the target that produced the path; please report it")
    return path


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# the output directory itself


def _system_roots() -> set[str]:
    roots = {os.path.realpath(os.sep)}
    home = os.path.expanduser("~")
    if home not in ("~", os.sep):
        roots.add(os.path.realpath(home))
    return roots


def _refuse_system_root(path: str, shown: str) -> None:
    real = os.path.realpath(path)
    if real in _system_roots() or os.path.dirname(real) == os.sep:
        raise OutputError(
            "SC712", f"refusing to write into `{shown}`: it is the filesystem root, a directory directly "
            "under it, or your home directory",
            "choose a directory of its own for the generated files, e.g. `-o deploy/out`")


def open_root(out_dir: str, create: bool) -> Optional[int]:
    """A file descriptor of the output directory, creating it when asked.

    The directory is the user's choice, so a link in an absolute `-o` path is followed (`/tmp`
    is one on macOS); a relative path, though, lies in the working tree where links may have
    been planted, so none of its parts may be one. Returns None when it does not exist and
    `create` is false."""
    _refuse_system_root(out_dir, out_dir)
    absolute = os.path.isabs(out_dir)
    parts = [p for p in out_dir.split(os.sep) if p not in ("", ".")]
    if absolute:
        head, tail = os.sep, parts
        while tail and os.path.isdir(os.path.join(head, tail[0])):  # the part that exists, as the user named it
            head, tail = os.path.join(head, tail[0]), tail[1:]
        try:
            fd = os.open(head, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _os_error(exc, out_dir) from None
    else:
        fd, tail = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), parts
    shown = head if absolute else ""
    try:
        for part in tail:
            shown = os.path.join(shown, part) if shown else part
            child = _child(fd, part, shown, create)
            os.close(fd)
            if child is None:
                return None
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _child(parent_fd: int, name: str, shown: str, create: bool) -> Optional[int]:
    """Directory `name` below `parent_fd`, opened without following a link and made when asked;
    None when it does not exist and `create` is false."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            return None
        try:
            os.mkdir(name, 0o777, dir_fd=parent_fd)
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            raise _os_error(exc, shown) from None
    except OSError as exc:
        raise _in_the_way(exc, parent_fd, name, shown) from None


def _link_error(path: str) -> OutputError:
    return OutputError(
        "SC710", f"refusing to write through `{path}`: it is a symbolic link",
        "stackc never follows links inside the output directory; remove the link (it may have come from a "
        "commit) and build again")


def _in_the_way(exc: OSError, parent_fd: int, name: str, rel: str) -> OutputError:
    """What a failed `O_NOFOLLOW` directory open means, in words."""
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except OSError:
        return _os_error(exc, rel)
    if stat.S_ISLNK(st.st_mode):
        return _link_error(rel)
    if not stat.S_ISDIR(st.st_mode):
        return OutputError("SC710", f"refusing to write under `{rel}`: it is a file, not a directory",
                           f"move `{rel}` away or choose another output directory")
    return _os_error(exc, rel)


def _os_error(exc: OSError, rel: str) -> OutputError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    helps = {
        errno.EACCES: "check the directory's owner and permissions, or choose another output directory with `-o`",
        errno.EPERM: "check the directory's owner and permissions, or choose another output directory with `-o`",
        errno.ENOSPC: "free space on that filesystem and build again; nothing was changed",
        errno.EDQUOT: "free space within your quota and build again; nothing was changed",
        errno.EROFS: "the filesystem is read-only; choose another output directory with `-o`",
        errno.ENOTDIR: "a file is where a directory should be; move it away or choose another output directory",
        errno.EEXIST: "move it away or choose another output directory",
    }
    return OutputError("SC714", f"cannot write `{rel}`: {reason.lower()}",
                       helps.get(exc.errno or 0, "fix the cause above and build again"))


# ---------------------------------------------------------------------------------------------
# walking below the root without following links


class _Cursor:
    """Open directories below a root, one path at a time, never through a link.

    Paths are visited in sorted order, so consecutive files share their directories: the
    cursor keeps the chain of the current path open and reopens only what changed, which holds
    at most one descriptor per level however many directories a build has."""

    def __init__(self, root_fd: int, shown: str) -> None:
        self.root_fd, self.shown = root_fd, shown
        self.names: list[str] = []
        self.fds: list[int] = []

    def dir(self, parts: Iterable[str], create: bool) -> Optional[int]:
        parts = list(parts)
        keep = 0
        while keep < min(len(parts), len(self.names)) and parts[keep] == self.names[keep]:
            keep += 1
        self._close_from(keep)
        fd = self.fds[-1] if self.fds else self.root_fd
        for part in parts[keep:]:
            child = _child(fd, part, os.path.join(self.shown, *self.names, part), create)
            if child is None:
                return None
            self.names.append(part)
            self.fds.append(child)
            fd = child
        return fd

    def parent(self, rel: str, create: bool = False) -> tuple[Optional[int], str]:
        *dirs, name = rel.split("/")
        return self.dir(dirs, create), name

    def _close_from(self, level: int) -> None:
        while len(self.fds) > level:
            os.close(self.fds.pop())
            self.names.pop()

    def close(self) -> None:
        self._close_from(0)


def _lstat(dir_fd: Optional[int], name: str) -> Optional[os.stat_result]:
    if dir_fd is None:
        return None
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def _read(dir_fd: Optional[int], name: str) -> Optional[bytes]:
    """The bytes of a regular file, or None when there is none (a link, a FIFO and a directory
    are not files stackc wrote, and are never opened)."""
    if dir_fd is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_READ:
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _sorted(rels: Iterable[str]) -> list[str]:
    return sorted(rels, key=lambda r: r.split("/"))


def _prune(cursor: _Cursor, rel: str) -> None:
    """Remove the directories a removed file leaves empty, deepest first."""
    dirs = rel.split("/")[:-1]
    while dirs:
        fd = cursor.dir(dirs[:-1], create=False)
        if fd is None:
            return
        try:
            os.rmdir(dirs[-1], dir_fd=fd)
        except OSError:
            return
        dirs = dirs[:-1]


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
    data = _read(root_fd, MANIFEST)
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


def _leftovers(root_fd: int, rels: Iterable[str], cursor: _Cursor) -> Leftovers:
    found = Leftovers(journal=_lstat(root_fd, JOURNAL) is not None)
    found.staging = sorted(n for n in os.listdir(root_fd) if n.startswith(STAGING_PREFIX))
    for rel in _sorted(set(rels)):
        try:
            fd, name = cursor.parent(rel)
        except OutputError:
            continue
        tmp = f".{name}{_LEGACY_TMP}"
        if _lstat(fd, tmp) is not None:
            found.temp.append("/".join(rel.split("/")[:-1] + [tmp]))
    return found


def _remove_entry(parent_fd: int, name: str) -> None:
    """Delete a leftover: a link or a file is unlinked (never followed), a directory removed
    without following anything inside it."""
    st = _lstat(parent_fd, name)
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
        staging = os.open(journal.staging, _DIR_FLAGS, dir_fd=root_fd)
    except OSError:
        staging = None
    target, source = _Cursor(root_fd, shown), _Cursor(staging, shown) if staging is not None else None
    try:
        if source is not None:
            for rel in _sorted(journal.install):
                src_fd = source.dir(["files"] + rel.split("/")[:-1], create=False)
                name = rel.split("/")[-1]
                if _lstat(src_fd, name) is None:
                    continue  # installed before the interruption
                dst_fd, _ = target.parent(rel, create=True)
                expected = journal.install[rel]
                present = _lstat(dst_fd, name)
                if present is not None:
                    current = _read(dst_fd, name)
                    if current is None or digest(current) != expected:
                        kept.append(rel)
                        continue
                os.replace(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        for rel in _sorted(journal.remove):
            try:
                fd, name = target.parent(rel)
            except OutputError:
                continue
            current = _read(fd, name)
            if current is None:
                continue
            if digest(current) != journal.remove[rel]:
                kept.append(rel)
                continue
            os.unlink(name, dir_fd=fd)
            _prune(target, rel)
        if staging is not None and _lstat(staging, "manifest.json") is not None:
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
    found = Leftovers(journal=_lstat(root_fd, JOURNAL) is not None)
    if found.journal:
        journal = _Journal.load(_read(root_fd, JOURNAL) or b"")
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
        result.kept = _sorted(kept)
        _stage(root, journal, files, kept, out_dir)
        try:
            _sync(root)
            os.replace(f"{journal.staging}/journal.json", JOURNAL, src_dir_fd=root, dst_dir_fd=root)
        except OSError as exc:
            _remove_entry(root, journal.staging)
            raise _os_error(exc, os.path.join(out_dir, JOURNAL)) from None
        _apply(root, journal, out_dir)
        result.written = _sorted(files)
        result.removed = _sorted(journal.remove)
        return result
    finally:
        os.close(root)


def _decide(root_fd: int, files: dict[str, bytes], shown: str, force: bool) -> tuple[_Journal, dict[str, str]]:
    """Check every path against what is on disk, before anything is written."""
    old = _manifest_at(root_fd)
    cursor = _Cursor(root_fd, shown)
    install: dict[str, Optional[str]] = {}
    remove: dict[str, str] = {}
    kept: dict[str, str] = {}
    try:
        for rel in _sorted(files):
            fd, name = cursor.parent(rel)
            st = _lstat(fd, name)
            if st is None:
                install[rel] = None
                continue
            path = os.path.join(shown, rel)
            if stat.S_ISLNK(st.st_mode):
                raise _link_error(path)
            if stat.S_ISDIR(st.st_mode):
                raise OutputError("SC710", f"refusing to write `{path}`: a directory is in the way",
                                  f"move `{path}` away or choose another output directory")
            if rel not in old:
                raise OutputError(
                    "SC711", f"refusing to overwrite `{path}`: stackc did not write it (it is not in {MANIFEST})",
                    "move it away or choose another output directory")
            current = _read(fd, name)
            if current is None:
                raise OutputError("SC710", f"refusing to write `{path}`: it is not a regular file",
                                  f"move `{path}` away or choose another output directory")
            install[rel] = digest(current)
        for rel in _sorted(set(old) - set(files)):
            try:
                fd, name = cursor.parent(rel)
            except OutputError:
                continue  # a link or a file where its directory was: not ours to touch
            current = _read(fd, name)
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
            raise _os_error(exc, shown) from None


def _stage(root_fd: int, journal: _Journal, files: dict[str, bytes], kept: dict[str, str], shown: str) -> None:
    """Every new file, the new manifest and the journal, inside the staging directory."""
    staging = os.open(journal.staging, _DIR_FLAGS, dir_fd=root_fd)
    cursor = _Cursor(staging, journal.staging)
    failure: Optional[OutputError] = None
    try:
        for rel in _sorted(files):
            fd = cursor.dir(["files"] + rel.split("/")[:-1], create=True)
            _create(fd, rel.split("/")[-1], files[rel])
        _create(staging, "manifest.json", manifest_bytes(files, kept))
        _create(staging, "journal.json", journal.dump())
    except OutputError as exc:
        failure = exc
    except OSError as exc:
        failure = _os_error(exc, shown)
    finally:
        cursor.close()
        os.close(staging)
    if failure is not None:
        _remove_entry(root_fd, journal.staging)  # nothing of the old build was touched
        raise failure


def _create(dir_fd: int, name: str, data: bytes) -> None:
    fd = os.open(name, _NEW_FILE, 0o666, dir_fd=dir_fd)
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
        result.missing = _sorted(files)
        return result
    cursor = _Cursor(root, out_dir)
    try:
        old = _manifest_at(root)
        for rel in _sorted(files):
            try:
                fd, name = cursor.parent(rel)
            except OutputError:
                result.unsafe.append(rel)
                continue
            st = _lstat(fd, name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                result.unsafe.append(rel)
                continue
            current = _read(fd, name)
            if current is None:
                result.missing.append(rel)
            elif current != files[rel]:
                result.changed.append(rel)
        for rel in _sorted(set(old) - set(files)):
            try:
                fd, name = cursor.parent(rel)
            except OutputError:
                continue
            if _lstat(fd, name) is not None:
                result.stale.append(rel)
        found = _leftovers(root, list(files) + list(old), cursor)
        result.leftover = ([JOURNAL] if found.journal else []) + found.staging + found.temp
    finally:
        cursor.close()
        os.close(root)
    return result
