"""A compiled stack's router and gateway for real, through the serving harness: the spec is
built for a target, written out, and run as written (tests/harness). The loopback tests use
this to drive the gateway's and router's behaviour (routing modes, saturation, failures,
long prompts) with stand-in replicas they can slow down or fail."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from stackc.pipeline import analyse, emit, open_spec
from tests.harness.compose import secret_value
from tests.harness.stack import Reply, RunningStack, missing_tools

HOSTED = "burst.example"  # where the specs below send overflow; the harness serves it over TLS


def require_tools() -> None:
    why = missing_tools()
    if why:
        pytest.skip(why)


class Loopback:
    """A running stack: `fakes` (engine replicas by service name) and `hosted` (by overflow name)."""

    def __init__(self, workdir: Path, spec_text: str, target: str = "systemd"):
        self.workdir = workdir
        self.deployment, files = compile_spec(workdir, spec_text, target)
        out = workdir / "out"
        for path, data in files.items():
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(data)
        self.stack = RunningStack(out, workdir / "harness")

    def start(self) -> "Loopback":
        self.stack.start()
        return self

    def stop(self) -> None:
        self.stack.stop()

    @property
    def fakes(self):
        return {name: s for name, s in self.stack.standins.items() if s.kind != "component"}

    @property
    def hosted(self):
        return {"burst": self.stack.hosted[HOSTED]} if HOSTED in self.stack.hosted else {}

    def reset(self, **behaviour) -> None:
        for s in [*self.stack.standins.values(), *self.stack.hosted.values()]:
            s.reset(max_context=0)
        for name, settings in behaviour.items():
            for fake in self.fakes.values():
                if fake.name.startswith(name):
                    for key, value in settings.items():
                        setattr(fake, key, value)

    def chat(self, model: str, content: str = "hello", key: Optional[str] = "default", stream: bool = False,
             headers: Optional[dict] = None, system: Optional[str] = None) -> Reply:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        return self.stack.gateway("POST", "/v1/chat/completions", {"model": model, "messages": messages, "stream": stream},
                                  key, headers)

    def get(self, path: str, key: Optional[str] = "default") -> Reply:
        return self.stack.gateway("GET", path, None, key)


def hosted_key() -> str:
    return secret_value("BURST_API_KEY")


def served_by(reply: Reply) -> str:
    who = reply.served_by
    assert who is not None, (reply.status, reply.text[:500])
    return who.split(".", 1)[0] if who == HOSTED else who


def compile_spec(workdir: Path, text: str, target: str):
    path = workdir / "stack.yaml"
    path.write_text(text)
    session = open_spec(str(path), "stack.yaml")
    unit = analyse(session, None)
    errors = [d for d in session.diagnostics + unit.diagnostics if d.is_error]
    assert not errors, errors
    files, diags = emit(unit, target, "stack.yaml")
    assert files is not None, diags
    return unit.deployment, files
