"""Every example's output, run as written: compose, systemd and the terraform module's node
folders, each on namespaces of its own, through the real router, gateway and Prometheus, with a
stand-in wherever an engine listens (tests/harness).

The test only tells the harness what the spec says (which replicas belong to which model name,
which overflow conditions are declared); every address, port, flag and path comes from the
emitted files. The stacks run a few at a time; each case reports on its own.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import example_builds
from tests.harness.checks import Expect, Report, exercise
from tests.harness.stack import RunningStack, missing_tools, stack_root

TARGETS = ("compose", "systemd", "terraform")
PARALLEL = 4


def _cases() -> list[tuple[str, str, object, dict[str, bytes]]]:
    return [(target, name, unit, files) for target in TARGETS for name, unit, files in example_builds(target)]


CASES = _cases()


def expect_from(unit) -> Expect:
    """What the spec says: the replicas of each model name clients send, and the overflow
    conditions declared for each generative model."""
    replicas: dict[str, set[str]] = {}
    for s in unit.deployment.services:
        if s.role != "engine":
            continue
        ec = s.engine
        for name in [ec.served_name, *ec.served_names, *(a for a, _ in ec.adapters)]:
            replicas.setdefault(name, set()).add(s.name)
    tiering = unit.stack.tiering
    when = set().union(*(o.when for o in tiering.overflow)) if tiering and tiering.overflow else set()
    overflow = {}
    for s in unit.deployment.services:
        if s.role == "engine" and s.engine.task == "generate":
            for name in [s.engine.served_name, *s.engine.served_names]:
                overflow[name] = {"error" if c in ("error", "saturated") else c for c in when}
    return Expect(replicas, overflow)


def _run(files: dict[str, bytes], expect: Expect) -> tuple[Report, float]:
    out = Path(tempfile.mkdtemp(prefix="stackc-serve-"))
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    start = time.monotonic()
    with RunningStack(stack_root(out), out / ".harness") as stack:
        return exercise(stack, expect), time.monotonic() - start


@pytest.fixture(scope="module")
def reports(request):
    """Runs the cases this session selected, a few at a time, once for both tests of each."""
    why = missing_tools()
    if why:
        pytest.skip(why)
    wanted = {(item.callspec.params["target"], item.callspec.params["name"]) for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")}
    if any(item.module is request.module and item.name == "test_every_case_ran" for item in request.session.items):
        wanted = {(t, n) for t, n, _, _ in CASES}
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {(t, n): pool.submit(_run, files, expect_from(unit)) for t, n, unit, files in CASES
                   if (t, n) in wanted}
        return {key: _outcome(f) for key, f in futures.items()}


def _report(reports, target: str, name: str):
    """The case's report and its unit; a case whose stack did not start fails here."""
    outcome = reports[(target, name)]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome[0], next(u for t, n, u, _ in CASES if (t, n) == (target, name))


def _outcome(future):
    try:
        return future.result()
    except Exception as exc:  # reported by the case it belongs to
        return exc


@pytest.mark.parametrize("target,name", [(t, n) for t, n, _, _ in CASES], ids=[f"{t}-{n}" for t, n, _, _ in CASES])
def test_output_serves_as_written(reports, target, name):
    report, unit = _report(reports, target, name)
    assert report.requests > 0
    assert not [p for p in report.problems if not p.startswith("not scraped")], "\n".join(report.problems)
    assert report.right == report.requests
    for model, own in expect_from(unit).replicas.items():
        assert report.reached.get(model) == own, f"`{model}`: reached {sorted(report.reached.get(model, ()))} of {sorted(own)}"


@pytest.mark.parametrize("target,name", [(t, n) for t, n, _, _ in CASES], ids=[f"{t}-{n}" for t, n, _, _ in CASES])
def test_prometheus_scrapes_every_target_it_lists(reports, target, name):
    report, unit = _report(reports, target, name)
    if report.skipped:
        pytest.skip("; ".join(report.skipped))
    if not any(s.role == "metrics" for s in unit.deployment.services):
        pytest.skip("this stack runs no Prometheus")
    assert report.scraped > 0 and not report.scrape_down, report.scrape_down


def test_every_case_ran(reports):
    """The counts the issue asks for: stacks run, requests, right routes, wrong routes (0)."""
    done = [r for r in reports.values() if not isinstance(r, Exception)]
    by_target = {}
    for (target, _), outcome in reports.items():
        if isinstance(outcome, Exception):
            continue
        report, _ = outcome
        t = by_target.setdefault(target, {"stacks": 0, "requests": 0, "right": 0, "wrong": 0})
        t["stacks"] += 1
        t["requests"] += report.requests
        t["right"] += report.right
        t["wrong"] += len(report.wrong)
    print("\nserving harness:", by_target)
    assert len(done) == len(reports) and set(by_target) == set(TARGETS)
    assert all(t["wrong"] == 0 for t in by_target.values())
