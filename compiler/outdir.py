"""The output directory, walked without following a link: the root `-o` names, and every
directory and file below it opened relative to its parent with `O_NOFOLLOW`, so a link planted
anywhere in a path is refused, never followed, and no check-then-use race is left open. The
writer (`writer.py`) stages, journals and switches a build on top of this.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from typing import Iterable, Optional

_MAX_READ = 256 * 1024 * 1024  # a file bigger than this is not one stackc wrote

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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
            raise os_error(exc, out_dir) from None
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
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            return None
        try:
            os.mkdir(name, 0o777, dir_fd=parent_fd)
            return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            raise os_error(exc, shown) from None
    except OSError as exc:
        raise _in_the_way(exc, parent_fd, name, shown) from None


def link_error(path: str) -> OutputError:
    return OutputError(
        "SC710", f"refusing to write through `{path}`: it is a symbolic link",
        "stackc never follows links inside the output directory; remove the link (it may have come from a "
        "commit) and build again")


def _in_the_way(exc: OSError, parent_fd: int, name: str, rel: str) -> OutputError:
    """What a failed `O_NOFOLLOW` directory open means, in words."""
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except OSError:
        return os_error(exc, rel)
    if stat.S_ISLNK(st.st_mode):
        return link_error(rel)
    if not stat.S_ISDIR(st.st_mode):
        return OutputError("SC710", f"refusing to write under `{rel}`: it is a file, not a directory",
                           f"move `{rel}` away or choose another output directory")
    return os_error(exc, rel)


def os_error(exc: OSError, rel: str) -> OutputError:
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


class Cursor:
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


def lstat(dir_fd: Optional[int], name: str) -> Optional[os.stat_result]:
    if dir_fd is None:
        return None
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def read(dir_fd: Optional[int], name: str) -> Optional[bytes]:
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


def sorted_paths(rels: Iterable[str]) -> list[str]:
    return sorted(rels, key=lambda r: r.split("/"))


def prune(cursor: Cursor, rel: str) -> None:
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
