"""Time stackc as whole processes, side by side with check-jsonschema.

    python bench/run.py [--repeat N] [--json out.json]

Stdlib only. Every command runs once untimed (warm-up: OS file cache, .pyc
files), then N timed rounds; the rounds are interleaved (each round runs
every command once), so load from elsewhere on the machine hits all
commands alike. The table shows the median and the minimum wall clock.
Targets are printed as PASS/FAIL for information only: the exit status is 0
whatever the timings (2 only for bad arguments). See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import PER_ENVIRONMENT, make_spec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = (25, 50, 100, 200)
TARGET_MODELS = 200
TARGET_SECONDS = 2.0


def find_tool(name: str) -> str | None:
    """The executable next to this interpreter (a venv's bin/), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(name)


def largest_example() -> Path | None:
    files = sorted((ROOT / "examples").glob("*.yaml"), key=lambda p: (p.stat().st_size, p.name))
    return files[-1] if files else None


def child_env(tmp: Path) -> dict[str, str]:
    """Let the children cache bytecode, in tmp: an installed package has .pyc files, but
    PYTHONDONTWRITEBYTECODE=1 with an editable install would recompile stackc on every run."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


ENV: dict[str, str] | None = None  # set by main()


def run_once(argv: list[str]) -> tuple[int, str]:
    proc = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def error_codes(argv: list[str]) -> str:
    """The distinct error codes a failing stackc command reports."""
    out = run_once(argv + ["--format", "concise"])[1]
    return ", ".join(sorted(set(re.findall(r"error\[(SC\d+)\]", out)))) or "see its output"


def measure(jobs: dict[str, dict], repeat: int) -> None:
    """Run every job 1 + repeat times, round-robin; store times (the warm-up dropped)."""
    for job in jobs.values():
        job["times_s"] = []
    for i in range(repeat + 1):
        print(f"round {i}/{repeat}{' (warm-up)' if i == 0 else ''}", file=sys.stderr)
        for job in jobs.values():
            start = time.perf_counter()
            proc = subprocess.run(job["argv"], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            job["exit"] = proc.returncode
            if i:
                job["times_s"].append(elapsed)
    for job in jobs.values():
        job["median_s"] = statistics.median(job["times_s"])
        job["min_s"] = min(job["times_s"])
        job["runs"] = len(job["times_s"])


def machine(version: str, repeat: int) -> dict:
    """When, what and where a report was measured."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "stackc_version": version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "repeat": repeat,
    }


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b*x; returns (a, b, R^2)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time stackc as whole processes.")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command (default 7)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    tools = {name: find_tool(name) for name in ("stackc", "check-jsonschema")}
    stackc = tools["stackc"]
    notes: list[str] = []
    jobs: dict[str, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="stackc-bench-"))
    global ENV
    ENV = child_env(tmp)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        notes.append("PYTHONDONTWRITEBYTECODE is set here; the timed commands ran without it, caching bytecode "
                     "in a temporary PYTHONPYCACHEPREFIX (as an installed stackc has its .pyc files).")

    def job(key: str, label: str, tool: str, rest: list[str | None], note: str = "") -> None:
        exe = tools[tool]
        if exe is None or None in rest:
            why = f"`{tool}` not found next to the interpreter or on PATH" if exe is None else \
                "no schema: schemas/stack.schema.json is absent and there is no stackc to generate it"
            print(f"skip: {label}: {why}", file=sys.stderr)
            notes.append(f"skipped `{label}`: {why}")
        else:
            jobs[key] = {"command": label, "argv": [exe, *rest], "note": note}

    try:
        version = run_once([stackc, "--version"])[1] if stackc else "stackc not found"
        schema = ROOT / "schemas" / "stack.schema.json"
        if not schema.is_file() and stackc:
            schema = tmp / "stack.schema.json"
            with open(schema, "w") as out:
                subprocess.run([stackc, "schema"], cwd=ROOT, env=ENV, stdout=out, check=True)
            notes.append("schemas/stack.schema.json is absent: check-jsonschema used the output of "
                         "`stackc schema > stack.schema.json` (in a temporary directory) instead.")
        schema_arg = str(schema) if schema.is_file() else None

        # (a) startup
        job("help", "stackc --help", "stackc", ["--help"])

        # (b), (c) the largest example
        example = largest_example()
        if example is None:
            notes.append("no examples/*.yaml: the example rows are skipped.")
        else:
            rel = example.relative_to(ROOT)
            notes.append(f"largest example: {rel} ({example.stat().st_size} bytes)")
            job("ex-validate", f"stackc validate {rel}", "stackc", ["validate", str(example)])
            job("ex-cjs", f"check-jsonschema --schemafile schemas/stack.schema.json {rel}",
                "check-jsonschema", ["--schemafile", schema_arg, str(example)])
            job("ex-build", f"stackc build {rel} --target compose --all-envs",
                "stackc", ["build", str(example), "--target", "compose", "--all-envs", "-o", str(tmp / "out-ex")])

        # (d) generated specs: N one-GPU models in environments of 50 (gen_spec.py), compiled and written
        for n in SIZES:
            spec = tmp / f"models-{n}.yaml"
            spec.write_text(make_spec(n))
            if stackc:
                rc, out = run_once([stackc, "validate", "--all-envs", str(spec)])
                if rc != 0:
                    notes.append(f"the generated spec with {n} models does not validate (exit {rc}); skipped:\n{out}")
                    continue
            envs = -(-n // PER_ENVIRONMENT)
            tag = f"[{n} models, {envs} env{'s' if envs > 1 else ''}]"
            job(f"validate-{n}", f"stackc validate --all-envs {tag}", "stackc", ["validate", "--all-envs", str(spec)])
            job(f"cjs-{n}", f"check-jsonschema {tag}", "check-jsonschema", ["--schemafile", schema_arg, str(spec)])
            job(f"build-{n}", f"stackc build --target compose --all-envs {tag}",
                "stackc", ["build", str(spec), "--target", "compose", "--all-envs", "-o", str(tmp / f"out-{n}")],
                note="writes every environment's files")
            job(f"build-helm-{n}", f"stackc build --target helm --all-envs {tag}",
                "stackc", ["build", str(spec), "--target", "helm", "--all-envs", "-o", str(tmp / f"out-helm-{n}")],
                note="one values.yaml per environment")
        measure(jobs, args.repeat)
        if jobs.get("ex-build", {}).get("exit"):
            jobs["ex-build"]["note"] = f"exits {jobs['ex-build']['exit']}: {error_codes(jobs['ex-build']['argv'])}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    targets = evaluate(jobs)
    meta = machine(version, args.repeat)
    print_report(meta, list(jobs.values()), targets, notes)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"meta": meta, "rows": list(jobs.values()), "targets": targets, "notes": notes}, out, indent=2)
    return 0


def evaluate(jobs: dict[str, dict]) -> list[dict]:
    """The requirement's targets, from the measured medians (linearity: from the minima, less noisy)."""
    targets = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        targets.append({"target": name, "pass": ok, "detail": detail})

    for what, v, c in (("largest example", "ex-validate", "ex-cjs"),
                       (f"{TARGET_MODELS} models", f"validate-{TARGET_MODELS}", f"cjs-{TARGET_MODELS}")):
        name = f"`stackc validate` <= check-jsonschema ({what})"
        if v in jobs and c in jobs:
            tv, tc = jobs[v]["median_s"], jobs[c]["median_s"]
            target(name, tv <= tc, f"{tv:.3f} s vs {tc:.3f} s ({tv / tc:.2f}x)")
        else:
            target(name, None, "not measured")

    b = jobs.get(f"build-{TARGET_MODELS}")
    target(f"{TARGET_MODELS} models compile in < {TARGET_SECONDS:g} s",
           None if b is None else b["median_s"] < TARGET_SECONDS,
           "not measured" if b is None else f"build median {b['median_s']:.3f} s ({b['note']})")

    for cmd in ("validate", "build"):
        name = f"`stackc {cmd}` time grows linearly with models"
        sizes = [n for n in SIZES if f"{cmd}-{n}" in jobs]
        if len(sizes) < 3:
            target(name, None, "too few sizes measured")
            continue
        ts = [jobs[f"{cmd}-{n}"]["min_s"] for n in sizes]
        a, slope, r2 = linear_fit(sizes, ts)
        detail = f"min t = {a:.3f} s + {slope * 1000:.2f} ms/model, R^2 = {r2:.3f}"
        if 100 in sizes and 200 in sizes:
            detail += f"; t(200)/t(100) = {ts[sizes.index(200)] / ts[sizes.index(100)]:.2f}"
        if min(jobs[f"{cmd}-{n}"]["runs"] for n in sizes) < 5:
            detail += " (few runs: the fit is mostly noise)"
        target(name, r2 >= 0.95, detail)
    return targets


def print_report(meta: dict, rows: list[dict], targets: list[dict], notes: list[str]) -> None:
    print(f"## stackc benchmark, {meta['date']}\n")
    print(f"{meta['stackc_version']}; Python {meta['python']}; {meta['platform']}; {meta['cpus']} CPUs; "
          f"{meta['repeat']} interleaved runs per command after 1 warm-up\n")
    print("| command | median s | min s | runs | exit | note |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| `{r['command']}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['runs']} | {r['exit']} | {r['note']} |")
    print("\n| target | result | detail |")
    print("|---|---|---|")
    for t in targets:
        print(f"| {t['target']} | {({True: 'PASS', False: 'FAIL', None: 'SKIP'})[t['pass']]} | {t['detail']} |")
    if notes:
        print("\nNotes:")
        for n in notes:
            print(f"- {n}")


if __name__ == "__main__":
    sys.exit(main())
