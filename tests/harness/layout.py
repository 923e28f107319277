"""What a target's output directory runs, read from its files alone: a `Layout` of hosts and
processes, each with the command, environment and listen address its files give it.

A reader (compose, systemd) fills it from what it finds in the emitted files; nothing here
knows stackc's own conventions, only what each program does with its argv and environment
(vLLM's `--host`/`--port`, Ollama's `OLLAMA_HOST`, an image's defaults).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

# images and programs by what they are (a container runtime's knowledge of its images)
ENGINE_IMAGES = (("vllm/vllm-openai", "vllm"), ("lmsysorg/sglang", "sglang"), ("ggml-org/llama.cpp", "llama.cpp"),
                 ("ollama/ollama", "ollama"), ("text-generation-inference", "tgi"), ("tensorrt-llm", "tensorrt-llm"))
# components that only run in their images: where they listen by default, the variables that
# move it, and the GET paths they answer
COMPONENT_IMAGES = {
    "grafana/grafana": {"listen": ("0.0.0.0", 3000), "env": ("GF_SERVER_HTTP_ADDR", "GF_SERVER_HTTP_PORT"),
                        "paths": ("/api/health", "/login")},
    "dcgm-exporter": {"listen": ("0.0.0.0", 9400), "env": ("DCGM_EXPORTER_LISTEN",), "paths": ("/metrics", "/health")},
    "open-webui/open-webui": {"listen": ("0.0.0.0", 8080), "env": ("HOST", "PORT"), "paths": ("/health", "/")},
}


@dataclass
class Proc:
    """One thing that runs: a real program here, or a stand-in where it cannot."""

    name: str  # the compose service, or the unit without its project prefix
    host: str  # the namespace it runs in: its container, or its server
    role: str  # program | engine | component | job
    argv: list[str] = field(default_factory=list)  # program: what runs here (paths mapped)
    env: dict[str, str] = field(default_factory=dict)
    listens: list[tuple[str, int]] = field(default_factory=list)  # engine, component: where the stand-in binds
    engine: Optional[str] = None
    served: Optional[frozenset[str]] = None
    task: str = "generate"
    max_context: int = 0
    metrics: bool = True
    component_paths: tuple[str, ...] = ()
    health: list[str] = field(default_factory=list)  # URLs, as seen from its host, that answer when it is up
    ollama_show: Optional[str] = None  # a health check by `ollama show TAG`
    image: Optional[str] = None
    agent: Optional[tuple[str, int]] = None  # where the drain wrapper answers the router's agent check
    drain_argv: list[str] = field(default_factory=list)  # the wrapper's own words, up to its `--`


@dataclass
class Published:
    host_ip: str  # "" or 0.0.0.0: every interface of the Docker host
    host_port: int
    service: str
    container_port: int


@dataclass
class Layout:
    kind: str  # compose | systemd
    root: Path
    procs: list[Proc]
    addresses: dict[str, list[str]]  # host -> its own addresses (a server's, from its files)
    secrets: list[str]
    gateway_config: Path
    gateway: tuple[str, str, int]  # (host to connect from, address, port): where clients reach it
    published: list[Published] = field(default_factory=list)
    prometheus: Optional[tuple[str, str, int]] = None
    state: Optional[Path] = None  # where the harness keeps the stack's volumes and state
    gateway_tls: bool = False  # clients reach the gateway with TLS (through an edge that terminates it)
    certificates: list[tuple[str, str]] = field(default_factory=list)  # (certificate, key) files a proxy reads

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    @property
    def engines(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "engine"]


def engine_of_image(image: str) -> Optional[str]:
    return next((engine for key, engine in ENGINE_IMAGES if key in image), None)


def component_of_image(image: str) -> Optional[dict]:
    return next((facts for key, facts in COMPONENT_IMAGES.items() if key in image), None)


def flag(argv: list[str], *names: str, default: Optional[str] = None) -> Optional[str]:
    """The value of the last `--name value` or `--name=value` among `names`."""
    found = default
    for i, word in enumerate(argv):
        for name in names:
            if word == name and i + 1 < len(argv):
                found = argv[i + 1]
            elif word.startswith(name + "="):
                found = word.split("=", 1)[1]
    return found


def values(argv: list[str], name: str) -> list[str]:
    """Every value after `--name` up to the next flag (nargs='+')."""
    out: list[str] = []
    for i, word in enumerate(argv):
        if word == name:
            for value in argv[i + 1:]:
                if value.startswith("-"):
                    break
                out.append(value)
        elif word.startswith(name + "="):
            out.append(word.split("=", 1)[1])
    return out


def split_listen(text: str, default_host: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `:port`, `host` or `port`, as servers take them."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return default_host, int(text)
    if ":" in text:
        host, port = text.rsplit(":", 1)
        return host or default_host, int(port) if port else default_port
    return text or default_host, default_port


def unwrap_drain(proc: Proc, argv: list[str]) -> list[str]:
    """The engine's own argv inside the drain wrapper (`python3 drain.py --agent H:P --wait S --
    ENGINE...`); the wrapper's agent address is kept for a stand-in to answer."""
    i = next((i for i, w in enumerate(argv) if w.endswith("/drain.py")), None)
    if i is None or "--" not in argv[i:]:
        return argv
    rest = argv[i + 1:]
    proc.agent = split_listen(flag(rest[:rest.index("--")], "--agent") or "", "0.0.0.0", 0)
    proc.drain_argv = argv[: i + 1 + rest.index("--") + 1]
    return rest[rest.index("--") + 1:]


def describe_engine(proc: Proc, argv: list[str], env: dict[str, str]) -> None:
    """Where an engine listens, what it serves and its context, from the engine's own flags
    (`argv` is what follows the program) and variables."""
    e = proc.engine
    if e == "vllm":
        positional = next((a for a in argv if not a.startswith("-")), None)
        if positional == "serve":
            argv = argv[argv.index("serve") + 1:]
            positional = next((a for a in argv if not a.startswith("-")), None)
        host = flag(argv, "--host", default="0.0.0.0")
        port = int(flag(argv, "--port", default="8000"))
        names = values(argv, "--served-model-name") or [flag(argv, "--model", default=positional) or ""]
        proc.served = frozenset(names)
        proc.max_context = int(flag(argv, "--max-model-len", default="0"))
        runner = flag(argv, "--runner")
        task = flag(argv, "--task")
        # the pooling runner serves embeddings and scores alike (the model decides which)
        proc.task = "pooling" if runner == "pooling" else "embed" if task in ("embed", "embedding") else \
            "rerank" if task in ("score", "rerank") else "generate"
    elif e == "sglang":
        host = flag(argv, "--host", default="127.0.0.1")
        port = int(flag(argv, "--port", default="30000"))
        proc.served = frozenset(values(argv, "--served-model-name") or [flag(argv, "--model-path") or ""])
        proc.max_context = int(flag(argv, "--context-length", default="0"))
        proc.task = "embed" if "--is-embedding" in argv else "generate"
    elif e == "llama.cpp":
        host = flag(argv, "--host", default="127.0.0.1")
        port = int(flag(argv, "--port", default="8080"))
        ctx = int(flag(argv, "--ctx-size", "-c", default="0"))
        slots = int(flag(argv, "--parallel", "-np", default="1"))
        proc.max_context = ctx // max(slots, 1)
        proc.metrics = "--metrics" in argv
        proc.task = "rerank" if "--reranking" in argv else "embed" if {"--embedding", "--embeddings"} & set(argv) \
            else "generate"
    elif e == "ollama":
        host, port = split_listen(env.get("OLLAMA_HOST", ""), "127.0.0.1", 11434)
        proc.task = "generate"
    elif e == "tgi":
        host = flag(argv, "--hostname", default="0.0.0.0")
        port = int(flag(argv, "--port", default=env.get("PORT", "3000")))
        proc.max_context = int(flag(argv, "--max-input-tokens", default="0"))
    elif e == "tensorrt-llm":
        rest = argv[argv.index("trtllm-serve") + 1:] if "trtllm-serve" in argv else argv
        host = flag(rest, "--host", default="localhost")
        port = int(flag(rest, "--port", default="8000"))
        proc.max_context = int(flag(rest, "--max_seq_len", default="0"))
    else:
        raise ValueError(f"no stand-in for engine {e}")
    if not proc.listens:
        proc.listens = [(host, port)]


def describe_component(proc: Proc, facts: dict, env: dict[str, str]) -> None:
    host, port = facts["listen"]
    names = facts["env"]
    if len(names) == 1 and env.get(names[0]):
        host, port = split_listen(env[names[0]], host, port)
    elif len(names) == 2:
        host = env.get(names[0]) or host
        port = int(env.get(names[1]) or port)
    proc.component_paths = facts["paths"]
    if not proc.listens:
        proc.listens = [(host, port)]


def secret_names(example: Path) -> list[str]:
    """The names an `.env.example` or `secrets.env.example` lists (`NAME=`, comments aside)."""
    return [line.split("=", 1)[0] for line in example.read_text().splitlines()
            if line and not line.startswith("#") and "=" in line]


def urls_in(words: list[str]) -> list[str]:
    return [m for w in words for m in re.findall(r"https?://[^\s'\"]+", w)]


def shell_words(line: str) -> list[str]:
    return shlex.split(line)


def remap(word: str, table: list[tuple[str, str]]) -> str:
    """Paths the program would find at `inside` (a mount target, an installed file) where the
    harness keeps them."""
    for inside, outside in sorted(table, key=lambda t: -len(t[0])):
        word = re.sub(r"(?<![\w.-])" + re.escape(inside) + r"(?=/|$|[^\w.-])", outside, word)
    return word


def haproxy_frontends(text: str) -> list[tuple[list[str], list[str]]]:
    """Each frontend of an HAProxy config as (its `bind` words, the addresses of its default
    backend's servers), read section by section."""
    sections = [block.splitlines() for block in text.split("\n\n")]
    backends = {lines[0].split()[1]: [line.split() for line in lines[1:]] for lines in sections
                if lines and lines[0].startswith("backend ")}
    out = []
    for lines in sections:
        if not lines or not lines[0].startswith("frontend "):
            continue
        words = [line.split() for line in lines[1:]]
        bind = next((w for w in words if w[0] == "bind"), [])
        backend = next((w[1] for w in words if w[0] == "default_backend"), None)
        if bind:
            out.append((bind, [w[2] for w in backends.get(backend, []) if w[0] == "server"]))
    return out
