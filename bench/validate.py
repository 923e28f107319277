"""`stackc validate` against check-jsonschema and against the import floor, pair by pair.

    python bench/validate.py [--repeat N] [--json out.json]

For each spec (every example, and generated specs of 25 to 5,000 models), one round runs
`stackc validate SPEC` and `check-jsonschema --schemafile schemas/stack.schema.json SPEC`
back to back; the ratio of each pair is computed round by round and the median ratio is
reported, so load from elsewhere on the machine hits both sides of a pair alike. The import
floor is a Python process that only imports what validate cannot do without (pydantic's
BaseModel and libyaml's parser): the part of validate's time no code of stackc's can remove. Stdlib only; exits 0
whatever the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import make_spec  # noqa: E402
from run import child_env, find_tool  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = (25, 200, 1000, 5000)
FLOOR = [sys.executable, "-c", "from pydantic import BaseModel; from yaml._yaml import CParser"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    code = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True).returncode
    return time.perf_counter() - start, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    stackc, checker = find_tool("stackc"), find_tool("check-jsonschema")
    if stackc is None or checker is None:
        print("stackc or check-jsonschema is not installed next to this interpreter", file=sys.stderr)
        return 0
    schema = ROOT / "schemas" / "stack.schema.json"
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(Path(tmp))
        specs = [p for p in sorted((ROOT / "examples").glob("*.yaml"))]
        for n in SIZES:
            path = Path(tmp) / f"generated-{n}.yaml"
            path.write_text(make_spec(n))
            specs.append(path)
        pairs = {spec: ([stackc, "validate", "--all-envs", str(spec)],
                        [checker, "--schemafile", str(schema), str(spec)]) for spec in specs}
        rows = {spec: {"stackc": [], "checker": [], "floor": [], "codes": None} for spec in specs}
        for i in range(args.repeat + 1):
            print(f"round {i}/{args.repeat}{' (warm-up)' if i == 0 else ''}", file=sys.stderr)
            for spec, (ours, theirs) in pairs.items():
                floor, _ = timed(FLOOR, env)
                a, code_a = timed(ours, env)
                b, code_b = timed(theirs, env)
                if i:
                    rows[spec]["stackc"].append(a)
                    rows[spec]["checker"].append(b)
                    rows[spec]["floor"].append(floor)
                rows[spec]["codes"] = (code_a, code_b)
    report = []
    print("| spec | stackc validate s | check-jsonschema s | ratio | import floor s | stackc / floor | exits |")
    print("|---|---|---|---|---|---|---|")
    for spec, r in rows.items():
        ratio = statistics.median(a / b for a, b in zip(r["stackc"], r["checker"]))
        over_floor = statistics.median(a / f for a, f in zip(r["stackc"], r["floor"]))
        name = spec.name if spec.parent.name == "examples" else spec.stem
        row = {"spec": name, "stackc_s": statistics.median(r["stackc"]), "checker_s": statistics.median(r["checker"]),
               "ratio": ratio, "floor_s": statistics.median(r["floor"]), "over_floor": over_floor,
               "exits": list(r["codes"])}
        report.append(row)
        print(f"| {name} | {row['stackc_s']:.3f} | {row['checker_s']:.3f} | {ratio:.2f}x | {row['floor_s']:.3f} | "
              f"{over_floor:.2f}x | {r['codes'][0]}, {r['codes'][1]} |")
    ratios = [row["ratio"] for row in report]
    print(f"\nratio against check-jsonschema: median {statistics.median(ratios):.2f}x, "
          f"worst {max(ratios):.2f}x over {len(ratios)} specs ({args.repeat} rounds, {os.cpu_count()} CPUs)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
