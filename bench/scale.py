"""Time `stackc build` per target from 1,000 to 16,000 models, and fit the slope.

    python bench/scale.py [--sizes 1000,2000,4000,8000,16000] [--targets compose,helm,systemd,terraform]
                          [--repeat N] [--timeout S] [--tmp DIR] [--json out.json] [--stackc EXE]

Stdlib only, like bench/run.py. For each target and size it writes a generated spec (see
`make_spec`), builds it once untimed at the smallest size (warm-up: OS file cache, .pyc files),
then times `stackc build SPEC --target T -o TMP` as a whole process, `--repeat` times, and keeps
the minimum. Per target the times are fitted with t = a + b*N; the slope b is the cost of one
more model, and t(16000)/t(8000) is about 2 when the build is linear (a little under, because of
the fixed start-up cost a). The exit status is 0 whatever the timings (2 only for bad arguments).
See bench/README.md ("Scale").

The shapes, the largest each target accepts (1-GPU models of Llama-3.1-8B-Instruct on H200s):

- helm, systemd: ONE stack of N models on ceil(N/64) nodes of 64 GPUs (the schema's caps,
  64 GPUs a node and 256 nodes, allow 16,384); systemd is given the nodes' private addresses.
- terraform: a cloud instance has 8 H200s (AWS p5en.48xlarge), so one stack holds at most
  256 x 8 = 2,048 models. The spec has environments of at most 2,000 models each (`--all-envs`).
- compose: one host of at most 64 GPUs, so at most 64 such models a stack; environments of 50
  models each, as bench/gen_spec.py does (`--all-envs`).

With environments the base holds one model and each environment `s<k>` replaces it with its own
models and sets its node count, so every size takes the same path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import child_env, find_tool, linear_fit, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1000, 2000, 4000, 8000, 16000)
TARGETS = ("compose", "helm", "systemd", "terraform")
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@dataclass(frozen=True)
class Shape:
    """How N models are laid out for one target."""

    gpus_per_node: int
    per_stack: int | None = None  # None: one stack of N models; else environments of at most this many
    hardware: str = ""  # extra `hardware:` keys
    node_addresses: bool = False  # systemd: list each node's private address

    def nodes(self, models: int) -> int:
        return -(-models // self.gpus_per_node)


SHAPES = {
    "compose": Shape(gpus_per_node=64, per_stack=50),
    "helm": Shape(gpus_per_node=64),
    "systemd": Shape(gpus_per_node=64, node_addresses=True),
    "terraform": Shape(gpus_per_node=8, per_stack=2000, hardware=", provider: aws, region: us-east-1"),
}


def _model(name: str, indent: str) -> str:
    return f"{indent}- {{name: {name}, model: {MODEL}, max_context: 8192, gpus: 1}}"


def _addresses(nodes: int) -> str:
    return "[" + ", ".join(f"10.0.{i // 200}.{10 + i % 200}" for i in range(nodes)) + "]"


def make_spec(target: str, n: int) -> str:
    """The YAML text of a spec with models m0..m{n-1}, laid out as SHAPES[target] says."""
    if n < 1:
        raise ValueError("n must be >= 1")
    shape = SHAPES[target]
    per_stack = shape.per_stack or n
    base = 1 if shape.per_stack else n
    lines = [
        "stack: v1",
        f"name: scale-{n}",
        f"hardware: {{gpu: h200, gpus_per_node: {shape.gpus_per_node}, nodes: {shape.nodes(base)}{shape.hardware}}}",
        "models:",
    ]
    lines += [_model("base", "  ")] if shape.per_stack else [_model(f"m{i}", "  ") for i in range(n)]
    lines += ["gateway: {api_key: {secret: STACK_API_KEY}}", "secrets: {STACK_API_KEY: {}}"]
    if shape.node_addresses:
        # enough addresses for the largest environment too; only the first `nodes` are read
        lines.append(f"systemd: {{node_addresses: {_addresses(shape.nodes(per_stack))}}}")
    if shape.per_stack:
        lines.append("environments:")
        for start in range(0, n, per_stack):
            count = min(per_stack, n - start)
            lines += [f"  s{start // per_stack}:", f"    hardware: {{nodes: {shape.nodes(count)}}}",
                      "    models:", "      - {name: base, enabled: false}"]
            lines += [_model(f"m{i}", "      ") for i in range(start, start + count)]
    return "\n".join(lines) + "\n"


def build_argv(stackc: str, target: str, spec: Path, out: Path) -> list[str]:
    argv = [stackc, "build", str(spec), "--target", target, "-o", str(out)]
    return argv + ["--all-envs"] if SHAPES[target].per_stack else argv


def time_build(argv: list[str], env: dict[str, str], out: Path, timeout: float) -> tuple[float | None, int, str]:
    """Wall clock of one build into an empty directory: (seconds or None on timeout, exit, error codes)."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, -1, f"timed out after {timeout:g} s"
    elapsed = time.perf_counter() - start
    codes = ", ".join(sorted(set(re.findall(r"error\[(SC\d+)\]", proc.stdout + proc.stderr))))
    return elapsed, proc.returncode, codes or (proc.stderr.strip().splitlines() or [""])[-1][:200]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated model counts")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per point; the minimum is kept (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one build is abandoned")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--tmp", metavar="DIR", help="where the specs and the output go (default: the system's temporary "
                        "directory); e.g. /dev/shm to leave the disk out of the timings")
    parser.add_argument("--stackc", metavar="EXE", help="the stackc to time (default: next to this interpreter, else on PATH)")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not sizes or min(sizes) < 1 or len(sizes) < 2:
        parser.error("--sizes needs at least two positive sizes")
    if unknown := [t for t in targets if t not in SHAPES]:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    stackc = args.stackc or find_tool("stackc")
    if stackc is None:
        parser.error("`stackc` not found next to the interpreter or on PATH")

    tmp = Path(tempfile.mkdtemp(prefix="stackc-scale-", dir=args.tmp))
    env = child_env(tmp)
    rows: list[dict] = []
    try:
        version = subprocess.run([stackc, "--version"], capture_output=True, text=True, env=env).stdout.strip()
        for target in targets:
            for i, n in enumerate(sizes):
                spec = tmp / f"{target}-{n}.yaml"
                spec.write_text(make_spec(target, n))
                argv = build_argv(stackc, target, spec, tmp / "out")
                if i == 0:
                    time_build(argv, env, tmp / "out", args.timeout)  # warm-up
                times, rc, why = [], 0, ""
                for _ in range(args.repeat):
                    t, rc, why = time_build(argv, env, tmp / "out", args.timeout)
                    if t is None or rc:
                        break
                    times.append(t)
                row = {"target": target, "models": n, "exit": rc, "seconds": min(times) if times else None,
                       "runs": len(times), "error": why if rc else ""}
                rows.append(row)
                shown = f"{row['seconds']:.2f} s" if row["seconds"] is not None else "-"
                print(f"{target:9} {n:6} models: {shown}" + (f"  (exit {rc}: {why})" if rc else ""), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    fits = [fit(target, [r for r in rows if r["target"] == target]) for target in targets]
    meta = machine(version, args.repeat) | {"tmp": str(tmp.parent)}
    print_report(meta, sizes, targets, rows, fits)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"meta": meta, "rows": rows, "fits": fits}, out, indent=2)
    return 0


def fit(target: str, rows: list[dict]) -> dict:
    """t = a + b*N over the sizes that built, and the ratio of the two largest sizes when they double."""
    ok = [r for r in rows if r["seconds"] is not None and not r["exit"]]
    result: dict = {"target": target, "a_s": None, "ms_per_model": None, "r2": None, "ratio": None, "ratio_of": ""}
    if len(ok) >= 2:
        a, b, r2 = linear_fit([r["models"] for r in ok], [r["seconds"] for r in ok])
        result.update(a_s=a, ms_per_model=b * 1000, r2=r2)
    if len(ok) >= 2 and ok[-1]["models"] == 2 * ok[-2]["models"]:
        result.update(ratio=ok[-1]["seconds"] / ok[-2]["seconds"], ratio_of=f"t({ok[-1]['models']})/t({ok[-2]['models']})")
    return result


def print_report(meta: dict, sizes: list[int], targets: list[str], rows: list[dict], fits: list[dict]) -> None:
    print(f"## stackc build time by model count, {meta['date']}\n")
    print(f"{meta['stackc_version']}; Python {meta['python']}; {meta['platform']}; {meta['cpus']} CPUs; "
          f"minimum of {meta['repeat']} run(s) per point after 1 warm-up per target; output under {meta['tmp']}\n")
    print("| target | " + " | ".join(f"{n:,}" for n in sizes) + " | ms/model | R² | doubling |")
    print("|---|" + "---:|" * len(sizes) + "---:|---:|---|")
    for target, f in zip(targets, fits):
        cells = []
        for n in sizes:
            r = next(r for r in rows if r["target"] == target and r["models"] == n)
            cells.append(f"{r['seconds']:.2f}" if r["seconds"] is not None and not r["exit"] else f"exit {r['exit']}")
        slope = f"{f['ms_per_model']:.3f}" if f["ms_per_model"] is not None else "-"
        r2 = f"{f['r2']:.3f}" if f["r2"] is not None else "-"
        ratio = f"{f['ratio_of']} = {f['ratio']:.2f}" if f["ratio"] is not None else "-"
        print(f"| {target} | " + " | ".join(cells) + f" | {slope} | {r2} | {ratio} |")
    print("\nseconds per build, whole process; shapes: " + "; ".join(
        f"{t}: " + ("one stack" if not SHAPES[t].per_stack else f"environments of {SHAPES[t].per_stack}") for t in targets))
    for r in rows:
        if r["exit"]:
            print(f"- {r['target']} {r['models']}: exit {r['exit']}: {r['error']}")


if __name__ == "__main__":
    sys.exit(main())
