"""A stand-in engine in a process of its own, for a test that runs a real wrapper around it
(the drain wrapper): `python -m tests.harness.standin_process --name N --listen H:P ...`.

It logs each request it answers as a JSON line (`--log`), and on SIGTERM behaves like vLLM
with `--shutdown-timeout`: it stops taking connections, finishes what it holds, then exits.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time

from .standins import StandIn


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--kind", default="vllm")
    parser.add_argument("--models", default="")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(64)
    s = StandIn(args.name, args.kind, frozenset(args.models.split(",")) if args.models else None, delay=args.delay)
    s.serve(sock)
    log = open(args.log, "a", buffering=1)
    seen = 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.05)
        while seen < len(s.requests):
            log.write(json.dumps({"t": time.time(), "path": s.requests[seen]["path"]}) + "\n")
            seen += 1
    log.write(json.dumps({"t": time.time(), "event": "sigterm"}) + "\n")
    for server in s._servers:  # no new connections; what is open finishes
        server.socket.close()
    while s.in_flight:
        time.sleep(0.05)
    log.write(json.dumps({"t": time.time(), "event": "exit", "served": s.total}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
