"""Run the stackc command line and SIGKILL it just before its Nth change to the filesystem.

    STACKC_KILL_AT=N python tests/killpoint.py build SPEC --target T -o DIR

Python raises an audit event before every file-system call (`open`, `os.rename` for renames and
replaces, `os.remove`, `os.mkdir`, `os.rmdir`, `shutil.rmtree`); the hook counts those that
change something and sends the process a real SIGKILL at the Nth, so the kill lands between two
system calls exactly as `kill -9` could. `STACKC_KILL_AT=0` only counts: the total is written to
the file named by `STACKC_KILL_COUNT` when the process exits. Nothing in stackc knows about it.
"""

import atexit
import os
import signal
import sys

AT = int(os.environ.get("STACKC_KILL_AT", "0"))
COUNT_FILE = os.environ.get("STACKC_KILL_COUNT")
_CHANGES = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree", "os.truncate", "os.chmod"}
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
seen = 0


def _hook(event, args):
    global seen
    if event == "open":
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if not flags & _WRITING:
            return
    elif event not in _CHANGES:
        return
    seen += 1
    if seen == AT:
        os.kill(os.getpid(), signal.SIGKILL)


def _report():
    if COUNT_FILE:
        with open(COUNT_FILE, "w") as handle:
            handle.write(str(seen))


if __name__ == "__main__":
    atexit.register(_report)
    from stackc.console import main

    sys.argv = ["stackc", *sys.argv[1:]]
    sys.addaudithook(_hook)
    main()
