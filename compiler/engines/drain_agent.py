"""Run an engine so a router can drain it before it stops (shipped beside the engine as
`engines/drain.py`; standard library only, Python 3.8 and later).

    python3 drain.py --agent HOST:PORT --wait SECONDS -- ENGINE ARGV...

It starts the engine and answers HAProxy's agent check on HOST:PORT: `ready up` while the
engine runs, `drain` once a stop was asked for. On SIGTERM (docker stop, systemctl stop) it
says `drain`, waits SECONDS so the router's next agent check sees it and sends new requests
elsewhere, then passes SIGTERM to the engine, whose own shutdown timeout lets the requests it
holds (streams included) finish. Its exit status is the engine's.
"""

import argparse
import signal
import socket
import subprocess
import sys
import threading
import time


def main(argv):
    parser = argparse.ArgumentParser(prog="drain.py")
    parser.add_argument("--agent", required=True, help="HOST:PORT to answer the router's agent check on")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds between `drain` and the engine's SIGTERM")
    parser.add_argument("engine", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    engine = args.engine[1:] if args.engine[:1] == ["--"] else args.engine
    if not engine:
        parser.error("no engine command after --")
    host, _, port = args.agent.rpartition(":")
    state = {"say": b"ready up\n"}

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host or "0.0.0.0", int(port)))
    listener.listen(16)

    def answer():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                conn.sendall(state["say"])
            except OSError:
                pass
            finally:
                conn.close()

    threading.Thread(target=answer, daemon=True).start()
    child = subprocess.Popen(engine)
    stopping = threading.Event()

    def stop(signum, frame):
        if stopping.is_set():
            return
        stopping.set()
        state["say"] = b"drain\n"
        print(f"drain.py: draining for {args.wait:g} s before stopping the engine", file=sys.stderr, flush=True)

        def later():
            time.sleep(args.wait)
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

        threading.Thread(target=later, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = child.wait()
    listener.close()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
