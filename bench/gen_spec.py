"""Generate a valid stack spec with N models, for benchmarking.

    python bench/gen_spec.py N > stack.yaml

Each model is an 8B model on one H200 (`gpus: 1`). One host holds at most 64 GPUs (the
schema's cap on `gpus_per_node`), and compose runs on one host, so the models are spread over
environments of at most 50: the base defines one model, and environment `s<k>` replaces it with
its own 50 complete models. `stackc build --all-envs` then compiles and writes all N models
(one directory per environment), and every size takes the same path, so times compare.
"""

from __future__ import annotations

import argparse
import sys

PER_ENVIRONMENT = 50


def _model(name: str, indent: str) -> list[str]:
    return [f"{indent}- {{name: {name}, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192, gpus: 1}}"]


def make_spec(n: int) -> str:
    """Return the YAML text of a stack with models m0..m{n-1} in environments of 50."""
    if n < 1:
        raise ValueError("n must be >= 1")
    lines = [
        "stack: v1",
        f"name: bench-{n}",
        "hardware: {gpu: h200, gpus_per_node: 64}",
        "models:",
        *_model("base", "  "),
        "gateway: {api_key: {secret: STACK_API_KEY}}",
        "secrets: {STACK_API_KEY: {}}",
        "environments:",
    ]
    for start in range(0, n, PER_ENVIRONMENT):
        lines += [f"  s{start // PER_ENVIRONMENT}:", "    models:", "      - {name: base, enabled: false}"]
        for i in range(start, min(start + PER_ENVIRONMENT, n)):
            lines += _model(f"m{i}", "      ")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of models")
    sys.stdout.write(make_spec(parser.parse_args(argv).n))


if __name__ == "__main__":
    main()
