"""Generate a valid stack spec with N small models, for benchmarking.

    python bench/gen_spec.py N [--nodes K] > stack.yaml

Every model is an 8B model on one H200 (`gpus: 1`, `replicas: 1`), so N
models need N GPUs. The schema caps `gpus_per_node` at 64, so by default
the spec asks for `ceil(N / 64)` nodes of 64 GPUs. The compose target runs
on one host and rejects more than one node (SC603); pass `--nodes 1` (or
call `make_spec(n, nodes=1)`) with N <= 64 for a spec compose can build.
"""

from __future__ import annotations

import argparse
import math
import sys

GPUS_PER_NODE = 64  # the schema's maximum


def make_spec(n: int, nodes: int | None = None) -> str:
    """Return the YAML text of a stack with models m0..m{n-1}, one GPU each."""
    if n < 1:
        raise ValueError("n must be >= 1")
    if nodes is None:
        nodes = math.ceil(n / GPUS_PER_NODE)
    if n > nodes * GPUS_PER_NODE:
        raise ValueError(f"{n} one-GPU models do not fit on {nodes} node(s) of {GPUS_PER_NODE} GPUs")
    lines = [
        "stack: v1",
        f"name: bench-{n}",
        "hardware: {gpu: h200, gpus_per_node: %d, nodes: %d}" % (GPUS_PER_NODE, nodes),
        "models:",
    ]
    for i in range(n):
        lines += [
            f"  - name: m{i}",
            "    model: meta-llama/Llama-3.1-8B-Instruct",
            "    engine: vllm",
            "    max_context: 8192",
            "    gpus: 1",
            "    replicas: 1",
        ]
    lines += [
        "gateway:",
        "  port: 8080",
        "  api_key: {secret: STACK_API_KEY}",
        "secrets:",
        "  STACK_API_KEY: {}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of models")
    parser.add_argument("--nodes", type=int, default=None, help="nodes (default: ceil(N/64))")
    args = parser.parse_args(argv)
    sys.stdout.write(make_spec(args.n, args.nodes))


if __name__ == "__main__":
    main()
