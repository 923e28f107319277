"""What a running stack must do, checked through its gateway with real requests.

`exercise(stack, expect)` sends, for every model name the gateway serves locally, requests of
the kind its deployments are for (chat, embeddings, rerank), plain and streamed, and checks
that each is answered by one of that model's own replicas; that no request reaches a hosted
API while the replicas are healthy; that overflow happens under the conditions declared for
it and never otherwise; that every health endpoint answers; and that Prometheus scrapes every
target it lists. `expect` (from the spec, optional) names each model's replicas and the
overflow conditions; without it they are read from the engines' own flags and the gateway's
configuration.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional

from .stack import Reply, RunningStack

PROMETHEUS_WAIT_S = 60


@dataclass
class Expect:
    replicas: dict[str, set[str]]  # model name clients send -> the services that may answer it
    overflow: dict[str, set[str]] = field(default_factory=dict)  # model name -> conditions declared for it


@dataclass
class Report:
    stack: str
    requests: int = 0
    right: int = 0  # answered by one of the model's own replicas, or by overflow under its condition
    wrong: list[str] = field(default_factory=list)  # answered by something else
    failed: list[str] = field(default_factory=list)  # not answered as it should have been
    reached: dict[str, set[str]] = field(default_factory=dict)  # model -> replicas that answered
    health_checked: int = 0
    scraped: int = 0
    scrape_down: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # checks this machine cannot make, and why

    @property
    def problems(self) -> list[str]:
        return [*(f"wrong route: {w}" for w in self.wrong), *(f"failed: {f}" for f in self.failed),
                *(f"not scraped: {t}" for t in self.scrape_down)]


def models(stack: RunningStack) -> dict[str, dict]:
    """Per model name the gateway serves: its mode, upstream model names, local and hosted
    deployments (in order), and whether long prompts have a fallback."""
    out: dict[str, dict] = {}
    fallbacks = set()
    for item in (stack.config.get("router_settings") or {}).get("context_window_fallbacks") or []:
        fallbacks |= set(item)
    for entry in stack.config.get("model_list", []):
        name, params = entry["model_name"], entry["litellm_params"]
        m = out.setdefault(name, {"mode": (entry.get("model_info") or {}).get("mode", "chat"), "local": [],
                                  "hosted": [], "long_context": name in fallbacks})
        host = urllib.parse.urlsplit(params.get("api_base", "")).hostname or ""
        where = "hosted" if host in stack.hosted else "local"
        m[where].append(params)
    return out


def inferred(stack: RunningStack) -> Expect:
    replicas: dict[str, set[str]] = {}
    for name, m in models(stack).items():
        upstream = {p["model"].split("/", 1)[1] for p in m["local"]}
        replicas[name] = {e.name for e in stack.layout.engines if e.served is None or e.served & upstream}
    return Expect(replicas)


def exercise(stack: RunningStack, expect: Optional[Expect] = None, rounds: int = 8) -> Report:
    expect = expect or inferred(stack)
    report = Report(str(stack.root))
    report.health_checked = sum(len(p.health) + bool(p.ollama_show) for p in stack.layout.procs)
    table = models(stack)
    local = {n: m for n, m in table.items() if m["local"]}
    for name, m in sorted(local.items()):
        own = expect.replicas.get(name, set())
        count = max(4, rounds * len(own))
        failed = len(report.failed)
        for i in range(count):
            _check(stack, report, name, own, _call(stack, name, m["mode"], f"question {i} about topic {i * 7919 % 1000}"))
            if len(report.failed) - failed >= 3:
                report.failed.append(f"{name}: stopped after 3 failures")
                break
        if m["mode"] == "chat":
            _check(stack, report, name, own, _call(stack, name, "chat", "stream this", stream=True), stream=True)
    hosted_hits = sum(s.total for s in stack.hosted.values())
    if hosted_hits:
        report.failed.append(f"{hosted_hits} requests reached a hosted API while every replica was healthy")
    for name, m in sorted(local.items()):
        if m["mode"] == "chat":
            _overflow_on_error(stack, report, name, m, expect)
            _overflow_on_long_prompt(stack, report, name, m, expect)
    _prometheus(stack, report)
    return report


def _call(stack: RunningStack, name: str, mode: str, text: str, stream: bool = False) -> Reply:
    if mode == "embedding":
        return stack.gateway("POST", "/v1/embeddings", {"model": name, "input": text})
    if mode == "rerank":
        return stack.gateway("POST", "/v1/rerank", {"model": name, "query": text, "documents": ["a", "b"]})
    return stack.gateway("POST", "/v1/chat/completions",
                         {"model": name, "messages": [{"role": "user", "content": text}], "stream": stream})


def _check(stack: RunningStack, report: Report, name: str, own: set[str], reply: Reply, stream: bool = False) -> None:
    report.requests += 1
    who = reply.served_by
    if reply.status != 200 or who is None:
        report.failed.append(f"{name}: {reply.status} {reply.text[:300]}")
        return
    if stream and not reply.text.rstrip().endswith("data: [DONE]"):
        report.failed.append(f"{name}: the stream did not end with [DONE]")
        return
    if who in own:
        report.right += 1
        report.reached.setdefault(name, set()).add(who)
    else:
        report.wrong.append(f"`{name}` answered by `{who}`, not by one of {sorted(own)}")


def _declared(expect: Expect, name: str, condition: str, m: dict) -> bool:
    if name in expect.overflow:
        return condition in expect.overflow[name]
    return bool(m["hosted"]) if condition == "error" else m["long_context"]


def _overflow_on_error(stack: RunningStack, report: Report, name: str, m: dict, expect: Expect) -> None:
    """Every replica of the model failing: the first hosted tier answers if `error` is declared,
    else the client sees the error and no hosted API is called."""
    own = expect.replicas.get(name, set())
    for s in stack.standins.values():
        s.reset()
    for s in stack.hosted.values():
        s.reset()
    for replica in own:
        stack.standins[replica].fail = True
    try:
        reply = _call(stack, name, "chat", "while every replica fails")
    finally:
        for replica in own:
            stack.standins[replica].fail = False
    report.requests += 1
    hits = {h: s.requests for h, s in stack.hosted.items() if s.total}
    if _declared(expect, name, "error", m):
        first = sorted(m["hosted"], key=lambda p: p.get("order", 0))[0]
        host = urllib.parse.urlsplit(first["api_base"]).hostname
        sent = hits.get(host, [])
        if reply.status == 200 and reply.served_by == host and sent and \
                sent[-1]["model"] == first["model"].split("/", 1)[1] and _key_ok(first, sent[-1]):
            report.right += 1
        else:
            report.failed.append(f"`{name}` with failing replicas: {reply.status} from {reply.served_by}, "
                                 f"expected the hosted `{host}` with its own model name and key")
    elif hits or reply.status == 200:
        report.wrong.append(f"`{name}` overflowed on an error without `error` declared ({sorted(hits)})")
    else:
        report.right += 1


def _overflow_on_long_prompt(stack: RunningStack, report: Report, name: str, m: dict, expect: Expect) -> None:
    own = expect.replicas.get(name, set())
    limits = [stack.standins[r].max_context for r in own if stack.standins[r].max_context]
    if not limits or any(stack.standins[r].kind == "ollama" for r in own):
        return  # Ollama truncates long prompts instead of refusing them
    for s in stack.hosted.values():
        s.reset()
    reply = _call(stack, name, "chat", "x" * (4 * max(limits) + 400))
    report.requests += 1
    hits = [h for h, s in stack.hosted.items() if s.total]
    if _declared(expect, name, "context_too_long", m):
        if reply.status == 200 and reply.served_by in stack.hosted:
            report.right += 1
        else:
            report.failed.append(f"`{name}`: a prompt over the context got {reply.status} from {reply.served_by}")
    elif hits:
        report.wrong.append(f"`{name}`: a prompt over the context went to {hits} without `context_too_long`")
    elif reply.status == 400:
        report.right += 1
    else:
        report.failed.append(f"`{name}`: a prompt over the context got {reply.status}, expected the engine's 400")


def _key_ok(params: dict, request: dict) -> bool:
    from .compose import secret_value

    key = params.get("api_key")
    if not key:
        return "authorization" not in request["headers"]
    value = secret_value(key.split("/", 1)[1]) if key.startswith("os.environ/") else key
    return request["headers"].get("authorization") == f"Bearer {value}"


def _prometheus(stack: RunningStack, report: Report) -> None:
    running = {name for name in stack.processes}
    prom = [p for p in stack.layout.procs if p.argv and "prometheus" in p.argv[0]]
    if stack.layout.prometheus is None or not prom:
        return
    if prom[0].name not in running:
        report.skipped.append(f"the scrape check: {', '.join(stack.missing)}")
        return
    host, address, port = stack.layout.prometheus
    deadline = time.monotonic() + PROMETHEUS_WAIT_S
    while True:
        reply = stack.get(f"http://{address}:{port}/api/v1/targets", host=host)
        targets = (reply.body or {}).get("data", {}).get("activeTargets", []) if reply.status == 200 else []
        down = [f"{t['scrapeUrl']} ({t.get('lastError') or t['health']})" for t in targets if t["health"] != "up"]
        if targets and not down:
            report.scraped = len(targets)
            return
        if time.monotonic() > deadline:
            report.scraped = len(targets) - len(down)
            report.scrape_down = down or ["no targets"]
            return
        time.sleep(1)
