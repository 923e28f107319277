"""`python -m tests.harness OUT [OUT ...]`: run each output directory as written and report.

OUT is what `stackc build` wrote: a compose or systemd directory, or a terraform module (its
`stack/` folder is run). Needs root (network namespaces), HAProxy, the gateway in
`.venv-gateway` (tests/tools.sh) and, for the scrape check, Prometheus.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .checks import exercise
from .stack import RunningStack, missing_tools, stack_root


def main(argv: list[str]) -> int:
    why = missing_tools()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    bad = 0
    for arg in argv:
        root = stack_root(Path(arg))
        start = time.monotonic()
        with RunningStack(root) as stack:
            report = exercise(stack)
        print(f"{arg}: {report.requests} requests, {report.right} served right, {len(report.wrong)} wrong routes, "
              f"{report.health_checked} health checks, {report.scraped} targets scraped "
              f"({time.monotonic() - start:.1f} s)")
        for problem in report.problems:
            print(f"  {problem}")
        bad += bool(report.problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
