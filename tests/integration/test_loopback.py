"""The generated router and gateway, run for real in front of stand-in replicas.

Each routing mode compiles the same two-model stack (two replicas each, a hosted overflow
destination for every condition), writes the target's files and runs them as written with
the serving harness: HAProxy and LiteLLM with their emitted configs, a stand-in wherever a
replica's unit or service says it listens. Every request loop is bounded in count and time.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from .loopback import Loopback, hosted_key, require_tools, served_by

SPEC = """\
stack: v1
name: loop
hardware: {{gpu: h100-sxm, gpus_per_node: 8}}
models:
  - {{name: chat, model: meta-llama/Llama-3.1-8B-Instruct, served_names: [assistant], max_context: 8192,
     replicas: 2, max_in_flight: 4}}
  - {{name: code, model: Qwen/Qwen2.5-7B-Instruct, max_context: 8192, replicas: 2}}
tiering:
  routing: ROUTING
  overflow:
    - {{name: burst, base_url: "https://burst.example/v1", model: hosted-llama,
       api_key: {{secret: BURST_API_KEY}}, when: [saturated, error, context_too_long]}}
gateway: {{api_key: {{secret: STACK_API_KEY}}}}
observability: {{metrics: true}}
secrets: {{STACK_API_KEY: {{}}, BURST_API_KEY: {{}}}}
"""


def start(tmp_path_factory, routing: str, target: str = "systemd") -> Loopback:
    require_tools()
    stack = Loopback(tmp_path_factory.mktemp(f"{routing}-{target}"), SPEC.replace("ROUTING", routing).format(), target)
    try:
        return stack.start()
    except BaseException:
        stack.stop()
        raise


@pytest.fixture(scope="module", params=["systemd", "compose"])
def round_robin(tmp_path_factory, request):
    stack = start(tmp_path_factory, "round-robin", request.param)
    yield stack
    stack.stop()


def in_parallel(calls, workers: int = 16):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


# ---- round-robin, the gateway's overflow, keys, streaming


def test_each_model_reaches_only_its_replicas_and_round_robin_spreads_them(round_robin):
    s = round_robin
    s.reset()
    chat = [served_by(r) for r in (s.chat("chat") for _ in range(20))]
    code = [served_by(r) for r in (s.chat("code") for _ in range(20))]
    alias = [served_by(s.chat("assistant")) for _ in range(4)]
    assert set(chat) == {"chat-0", "chat-1"} and set(code) == {"code-0", "code-1"}
    assert set(alias) <= {"chat-0", "chat-1"}
    assert min(Counter(chat).values()) >= 8 and min(Counter(code).values()) >= 8
    assert s.hosted["burst"].total == 0


def test_requests_beyond_max_in_flight_go_to_the_hosted_api_and_none_is_lost(round_robin):
    s = round_robin
    s.reset(chat={"delay": 1.0})
    replies = in_parallel([lambda: s.chat("chat")] * 10)
    assert [r.status for r in replies] == [200] * 10
    where = Counter(served_by(r) for r in replies)
    local = where["chat-0"] + where["chat-1"]
    assert where["burst"] == 10 - local and local <= 4 and where["burst"] >= 6
    # the local replicas never had more than `max_in_flight: 4` open between them
    assert s.fakes["chat-0"].max_in_flight + s.fakes["chat-1"].max_in_flight <= 4
    # the hosted API was sent its own model name and key; clients sent `chat`
    seen = s.hosted["burst"].requests
    assert {r["model"] for r in seen} == {"hosted-llama"}
    assert {r["headers"]["authorization"] for r in seen} == {f"Bearer {hosted_key()}"}


def test_a_failing_replica_is_retried_on_the_other_one(round_robin):
    s = round_robin
    s.reset()
    s.fakes["chat-0"].fail = True
    replies = [s.chat("chat") for _ in range(8)]
    assert [r.status for r in replies] == [200] * 8
    assert {served_by(r) for r in replies} == {"chat-1"}
    assert s.hosted["burst"].total == 0


def test_when_every_replica_fails_the_next_tier_answers(round_robin):
    s = round_robin
    s.reset(chat={"fail": True})
    replies = [s.chat("chat") for _ in range(4)] + [s.chat("chat", stream=True) for _ in range(2)]
    assert [r.status for r in replies] == [200] * 6
    assert {served_by(r) for r in replies} == {"burst"}
    assert s.fakes["chat-0"].served and s.fakes["chat-1"].served  # tried locally first


def test_a_prompt_longer_than_the_local_context_goes_to_the_hosted_api(round_robin):
    s = round_robin
    s.reset(chat={"max_context": 50})
    short, long = s.chat("chat", "short"), s.chat("chat", "x" * 2000)
    assert short.status == 200 and served_by(short) in ("chat-0", "chat-1")
    assert long.status == 200 and served_by(long) == "burst"


def test_a_request_without_the_gateway_key_is_refused(round_robin):
    s = round_robin
    s.reset()
    assert s.chat("chat", key=None).status == 401
    assert s.get("/v1/models", key=None).status == 401
    assert sum(f.total for f in s.fakes.values()) == 0


def test_streaming_passes_through_intact(round_robin):
    s = round_robin
    s.reset()
    reply = s.chat("chat", stream=True)
    assert reply.status == 200
    events = [line for line in reply.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) >= 4
    assert served_by(reply) in ("chat-0", "chat-1")


def test_prometheus_scrapes_what_the_router_and_gateway_serve(round_robin):
    """Prometheus, run with the emitted config, finds the router's and the gateway's metrics."""
    s = round_robin.stack
    if s.layout.prometheus is None or any("prometheus" in m for m in s.missing):
        pytest.skip(f"Prometheus is not running here: {s.missing}")
    host, address, port = s.layout.prometheus
    deadline = time.monotonic() + 60
    while True:
        targets = s.get(f"http://{address}:{port}/api/v1/targets", host=host).body["data"]["activeTargets"]
        jobs = {t["labels"]["job"]: t for t in targets}
        if all(jobs.get(j, {}).get("health") == "up" for j in ("router", "gateway")) or time.monotonic() > deadline:
            break
        time.sleep(1)
    for job, prefix in (("router", "haproxy_backend_"), ("gateway", "litellm_")):
        assert jobs[job]["health"] == "up", jobs[job]
        scraped = s.get(jobs[job]["scrapeUrl"], host=host)
        assert scraped.status == 200 and prefix in scraped.text, job


def test_models_lists_every_served_name(round_robin):
    reply = round_robin.get("/v1/models")
    assert reply.status == 200
    assert {"chat", "assistant", "code"} <= {m["id"] for m in reply.body["data"]}


# ---- the other routing modes


def test_least_load_sends_more_to_the_replica_that_answers_faster(tmp_path_factory):
    s = start(tmp_path_factory, "least-load")
    try:
        s.reset()
        s.fakes["chat-0"].delay, s.fakes["chat-1"].delay = 0.05, 0.8
        replies = in_parallel([lambda: s.chat("chat")] * 24, workers=4)
        where = Counter(served_by(r) for r in replies if r.status == 200)
        assert sum(where.values()) == 24
        assert where["chat-0"] > 2 * where["chat-1"], where
    finally:
        s.stop()


def test_session_routing_keeps_a_session_on_one_replica(tmp_path_factory):
    s = start(tmp_path_factory, "session")
    try:
        s.reset()
        sessions = defaultdict(set)
        for n in range(8):
            for turn in range(4):
                reply = s.chat("chat", f"turn {turn}", headers={"x-session-id": f"session-{n}"})
                sessions[n].add(served_by(reply))
        assert all(len(replicas) == 1 for replicas in sessions.values()), sessions
        assert set.union(*sessions.values()) == {"chat-0", "chat-1"}
        # the header reached the replicas through the gateway and the router
        assert all(r["headers"].get("x-session-id") for f in s.fakes.values() for r in f.requests)
    finally:
        s.stop()


def test_prefix_aware_routing_keeps_a_shared_prefix_on_one_replica(tmp_path_factory):
    s = start(tmp_path_factory, "prefix-aware")
    try:
        s.reset()
        prefixes = defaultdict(set)
        for n in range(8):
            system = f"You answer questions about document {n}. " * 12
            for question in range(4):
                prefixes[n].add(served_by(s.chat("chat", f"question {question}", system=system)))
        assert all(len(replicas) == 1 for replicas in prefixes.values()), prefixes
        assert set.union(*prefixes.values()) == {"chat-0", "chat-1"}
    finally:
        s.stop()
