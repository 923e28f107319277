"""A replica stops without cutting a request: the emitted drain wrapper runs for real (around a
stand-in engine in a process of its own), HAProxy runs with the emitted config and its agent
checks, and the replica is sent SIGTERM as `docker stop` or `systemctl stop` (KillMode=mixed)
would send it: the router sends new requests to the other replica at once, the request the
stopping replica holds finishes, and only then does the engine get its own SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stackc.pipeline import analyse, emit, open_spec
from tests.harness.stack import RunningStack, missing_tools

SPEC = """\
stack: v1
name: drain
hardware: {gpu: l40s, gpus_per_node: 2}
models:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, replicas: 2}
gateway: {api_key: {secret: STACK_API_KEY}}
secrets: {STACK_API_KEY: {}}
"""
DELAY = 5.0  # each stand-in answer takes this long: the first request is still open when the engine is told to stop


def build(tmp_path: Path, target: str) -> Path:
    (tmp_path / "stack.yaml").write_text(SPEC)
    session = open_spec(str(tmp_path / "stack.yaml"), "stack.yaml")
    files, diags = emit(analyse(session, None), target, "stack.yaml")
    assert files is not None, diags
    out = tmp_path / "out"
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    return out


def chat(stack: RunningStack, text: str):
    return stack.gateway("POST", "/v1/chat/completions", {"model": "chat", "messages": [{"role": "user", "content": text}]},
                         timeout=30)


@pytest.mark.parametrize("target", ["systemd", "compose"])
def test_a_stopping_replica_is_drained_and_finishes_what_it_holds(tmp_path, target):
    why = missing_tools()
    if why:
        pytest.skip(why)
    out = build(tmp_path, target)
    with RunningStack(out, tmp_path / "harness", real_drain=frozenset({"chat-0", "chat-1"}), delay=DELAY) as stack:
        with ThreadPoolExecutor(8) as pool:
            # the router puts a replica in rotation after two passed health checks (5 s apart)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                both = [pool.submit(chat, stack, f"warm {i}") for i in range(2)]
                if sorted(f.result().served_by for f in both) == ["chat-0", "chat-1"]:
                    break
                time.sleep(1)
            warm = len(stack.served_log("chat-0"))
            first = [pool.submit(chat, stack, f"first {i}") for i in range(2)]  # round robin: one on each replica
            time.sleep(0.5)
            stopping = stack.processes["chat-0"]
            stack.stopped.add("chat-0")
            drained_at = time.time()
            os.kill(stopping.pid, signal.SIGTERM)  # the wrapper only, as docker stop and KillMode=mixed do
            time.sleep(1.5)  # the router's agent check runs every second
            later = [pool.submit(chat, stack, f"later {i}") for i in range(6)]
            replies = [f.result() for f in first + later]
        stopping.wait(timeout=30)
        log = stack.served_log("chat-0")
    assert [r.status for r in replies] == [200] * 8, [r.text[:200] for r in replies]
    assert sorted(r.served_by for r in replies[:2]) == ["chat-0", "chat-1"]
    assert {r.served_by for r in replies[2:]} == {"chat-1"}  # nothing new reached the draining replica
    requests = [e for e in log if "path" in e][warm:]
    sigterm = next(e["t"] for e in log if e.get("event") == "sigterm")
    assert len(requests) == 1 and requests[0]["t"] < drained_at  # it held the one it had before
    assert sigterm - drained_at >= 2.9  # the engine's SIGTERM came after the wrapper's wait
    assert next(e for e in log if e.get("event") == "exit")["served"] == warm + 1  # and it finished that request
    assert stopping.returncode == 0
