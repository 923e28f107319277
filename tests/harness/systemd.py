"""Read a systemd target's output (or a terraform bundle's `stack/` folder): per node, its
units, `install.sh` and config files.

Every node is a server with a namespace of its own; its addresses are those its own units
bind to. `install.sh` says where each file goes (`place SRC DEST MODE`) and which directories
it creates: the harness keeps them where it can and maps the units' paths there. Each unit's
command is its `ExecStart` (systemd's quoting undone), with its `Environment=` and
`EnvironmentFile=`; one-shot units are jobs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from .compose import secret_value
from .layout import (Layout, Proc, component_of_image, secret_names, describe_component, describe_engine, engine_of_image, flag,
                     haproxy_frontends, remap, shell_words, split_listen, unwrap_drain, urls_in)

WILDCARD = ("0.0.0.0", "127.0.0.1", "localhost", "::")


def unit_words(text: str) -> list[str]:
    """A command line as systemd splits it: quotes with C escapes, `$$` a literal `$`, `%%` a `%`."""
    words, word, i, quote, started = [], [], 0, None, False
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and i + 1 < len(text):
                word.append({"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1]))
                i += 2
                continue
            if c == quote:
                quote = None
            else:
                word.append(c)
        elif c in "\"'":
            quote, started = c, True
        elif c.isspace():
            if word or started:
                words.append("".join(word))
            word, started = [], False
        elif c == "\\" and i + 1 < len(text):
            word.append(text[i + 1])
            i += 1
        else:
            word.append(c)
        i += 1
    if word or started:
        words.append("".join(word))
    return [w.replace("$$", "\x00").replace("%%", "%").replace("\x00", "$") for w in words]


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        elif "=" in line and current:
            key, value = line.split("=", 1)
            sections[current].append((key, value))
    return sections


def install_map(node: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """What install.sh places where, and the directories it creates."""
    text = (node / "install.sh").read_text()
    placed = [(dest, str(node / src)) for src, dest in re.findall(r"^place (\S+) (\S+) \d+\b", text, re.M)]
    dirs_line = re.search(r"^for dir in (.+); do$", text, re.M)
    dirs = dirs_line.group(1).split() if dirs_line else []
    return placed, dirs


def credentials(sections: dict, table: list[tuple[str, str]], where: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """systemd's `LoadCredential=NAME:PATH`: a directory (`where`) holding each file as NAME, as
    `$CREDENTIALS_DIRECTORY`; and the (certificate, key) pairs among them (NAME, NAME.key)."""
    loaded = dict(v.split(":", 1) for k, v in sections.get("Service", []) if k == "LoadCredential")
    if not loaded:
        return {}, []
    where.mkdir(parents=True, exist_ok=True)
    # the server's own path, kept under the harness's state when install.sh does not place it:
    # the operator's files are never looked for (or written) on this machine's /etc
    host = {name: remap(path, table) if remap(path, table) != path else str(where.parent / "host" / path.lstrip("/"))
            for name, path in loaded.items()}
    for name, path in host.items():
        link = where / name
        if not link.is_symlink():
            link.symlink_to(path)
    pairs = [(host[n], host[n + ".key"]) for n in host if n + ".key" in host]
    return {"CREDENTIALS_DIRECTORY": str(where)}, pairs


def read_node(node: Path, key: str, state: Path, gateway_program: str
              ) -> tuple[list[Proc], list[str], list[tuple[str, str]]]:
    """The node's processes, its secrets' names, and the (certificate, key) files its units load."""
    placed, dirs = install_map(node)
    table = list(placed) + [(d, str(state / key / d.strip("/"))) for d in dirs]
    for _, outside in table[len(placed):]:
        Path(outside).mkdir(parents=True, exist_ok=True)
    secrets = secret_names(node / "secrets.env.example")
    target = next(node.glob("units/*.target"))
    project = target.name[: -len(".target")]
    procs = []
    certificates: list[tuple[str, str]] = []
    for unit in sorted(node.glob("units/*.service")):
        sections = parse_unit(unit)
        service = dict(sections.get("Service", []))
        name = unit.name[len(project) + 1: -len(".service")]
        env: dict[str, str] = {}
        for k, v in sections["Service"]:
            if k == "EnvironmentFile":
                env.update({s: secret_value(s) for s in secrets})
            elif k == "Environment":
                for word in unit_words(v):
                    var, _, value = word.partition("=")
                    env[var] = value
        loaded, pairs = credentials(sections, table, state / key / "credentials" / name)
        env.update(loaded)
        certificates += pairs
        argv = unit_words(service["ExecStart"])
        argv[0] = argv[0].lstrip("-@+!:")
        posts = [unit_words(v) for k, v in sections["Service"] if k == "ExecStartPost"]
        health = [u for words in posts if words and words[0].endswith("curl") for u in urls_in(words)]
        proc = Proc(name, key, "program", env=env)
        if service.get("Type") == "oneshot":
            proc.role = "job"
            procs.append(proc)
            continue
        classify(proc, argv, env, table, gateway_program)
        proc.health = health
        procs.append(proc)
    ollama_tags = [t for p in procs if p.role == "job" for t in _pulled(node, project, p.name)]
    for p in procs:
        if p.engine == "ollama":
            p.served = frozenset(ollama_tags)
    return procs, secrets, certificates


def _pulled(node: Path, project: str, job: str) -> list[str]:
    text = (node / "units" / f"{project}-{job}.service").read_text()
    return re.findall(r"ollama pull (\S+?)\"?$", text, re.M)


def classify(proc: Proc, argv: list[str], env: dict[str, str], table: list[tuple[str, str]], gateway_program: str) -> None:
    """What this command is: an engine or component (a stand-in takes its place), or a program
    this machine runs (its paths mapped where the harness keeps the files)."""
    inner = argv
    wrapper: list[str] = []
    if len(argv) > 4 and argv[0] == "/bin/sh" and argv[1] == "-c" and 'exec "$@"' in argv[2]:
        wrapper, inner = argv[:4], argv[4:]  # exports renamed secrets, then runs the rest
    inner = unwrap_drain(proc, inner)
    proc.drain_argv = [remap(a, table) for a in proc.drain_argv]
    program = inner[0]
    base = program.rsplit("/", 1)[-1]
    if base in ("podman", "docker") and inner[1:2] == ["run"]:
        image, args, publish, envs = _container(inner)
        run_env = {k: env.get(k, "") for k in envs}
        proc.image = image
        proc.engine = engine_of_image(image)
        component = component_of_image(image)
        listens = [(split_listen(p.rsplit(":", 1)[0], "0.0.0.0", 0)) for p in publish]
        proc.listens = [(h or "0.0.0.0", port) for h, port in listens]
        if proc.engine:
            proc.role = "engine"
            describe_engine(proc, args, run_env)
        elif component:
            proc.role = "component"
            describe_component(proc, component, run_env)
        else:
            raise ValueError(f"{proc.name}: no way to run image {image} here")
        return
    if base == "vllm" or (base.startswith("python") and "sglang.launch_server" in inner):
        proc.role, proc.engine = "engine", "vllm" if base == "vllm" else "sglang"
        describe_engine(proc, inner[1:], env)
        return
    if program == "/bin/sh" and len(inner) == 3 and "llama-server" in inner[2]:
        proc.role, proc.engine = "engine", "llama.cpp"
        describe_engine(proc, shell_words(inner[2]), env)
        return
    if base == "ollama":
        proc.role, proc.engine = "engine", "ollama"
        describe_engine(proc, inner[1:], env)
        return
    if base == "litellm":
        inner = [gateway_program, *inner[1:]]
    proc.argv = [remap(a, table) for a in wrapper + inner]
    proc.env = {k: remap(v, table) for k, v in env.items()}


def _container(argv: list[str]) -> tuple[str, list[str], list[str], list[str]]:
    """(image, what follows it, --publish values, --env names) of `podman|docker run ...`."""
    takes_value = {"--name", "--volume", "-v", "--env", "-e", "--publish", "-p", "--entrypoint", "--device",
                   "--shm-size", "--cap-add", "--network", "--user", "--ipc"}
    publish, envs, i = [], [], 2
    entrypoint: Optional[str] = None
    while i < len(argv):
        word = argv[i]
        if word in takes_value:
            value = argv[i + 1]
            if word in ("--publish", "-p"):
                publish.append(value)
            elif word in ("--env", "-e"):
                envs.append(value.split("=", 1)[0])
            elif word == "--entrypoint":
                entrypoint = value
            i += 2
        elif word.startswith("-"):
            i += 1
        else:
            rest = argv[i + 1:]
            return word, ([entrypoint] if entrypoint else []) + rest, publish, envs
    raise ValueError(f"no image in {argv}")


def read(root: Path, state: Path, gateway_program: str) -> Layout:
    nodes = sorted(p for p in root.glob("node-*") if p.is_dir()) or [root]
    procs: list[Proc] = []
    secrets: list[str] = []
    certificates: list[tuple[str, str]] = []
    for node in nodes:
        key = node.name if node != root else "node-0"
        node_procs, node_secrets, node_certificates = read_node(node, key, state, gateway_program)
        certificates += node_certificates
        procs += node_procs
        secrets += [s for s in node_secrets if s not in secrets]
    addresses: dict[str, list[str]] = {}
    for p in procs:
        own = addresses.setdefault(p.host, [])
        for host, _ in p.listens + [listen_of(p)]:
            if host and host not in WILDCARD and host not in own:
                own.append(host)
    gateway = next(p for p in procs if gateway_program in p.argv)
    g_host, g_port = listen_of(gateway)
    config = Path(flag(gateway.argv, "--config"))
    prom = next((p for p in procs if p.argv and p.argv[0].endswith("/prometheus")), None)
    prometheus = None
    if prom is not None:
        host, port = split_listen(flag(prom.argv, "--web.listen-address", default="0.0.0.0:9090"), "0.0.0.0", 9090)
        prometheus = (prom.host, "127.0.0.1" if host in WILDCARD else host, port)
    entry, tls = (gateway.host, "127.0.0.1" if g_host in WILDCARD else g_host, g_port), False
    front = through_proxy(procs, g_host, g_port)
    if front is not None:  # the gateway listens behind a proxy in front of it (the TLS edge): clients go there
        (host, (address, port), tls) = front
        entry = (host, "127.0.0.1" if address in WILDCARD else address, port)
    return Layout("systemd", root, procs, addresses, secrets, config, entry, [], prometheus, state,
                  gateway_tls=tls, certificates=certificates)


def through_proxy(procs: list[Proc], g_host: str, g_port: int) -> Optional[tuple[str, tuple[str, int], bool]]:
    """(host, its bind, TLS?) of an HAProxy frontend whose backend is the gateway's address."""
    for p in procs:
        if not p.argv or not p.argv[0].endswith("haproxy"):
            continue
        for bind, servers in haproxy_frontends(Path(flag(p.argv, "-f")).read_text()):
            if f"{g_host}:{g_port}" in servers:
                return p.host, split_listen(bind[1], "0.0.0.0", 0), "ssl" in bind
    return None


def listen_of(p: Proc) -> tuple[str, int]:
    """Where a real program listens, from its flags (the gateway's `--host/--port`, Prometheus'
    `--web.listen-address`); HAProxy's binds are in its config."""
    if not p.argv:
        return ("", 0)
    if any(a.endswith("/litellm") for a in p.argv):
        return flag(p.argv, "--host", default="0.0.0.0"), int(flag(p.argv, "--port", default="4000"))
    if p.argv[0].endswith("/prometheus"):
        return split_listen(flag(p.argv, "--web.listen-address", default="0.0.0.0:9090"), "0.0.0.0", 9090)
    if p.argv[0].endswith("haproxy"):
        cfg = Path(flag(p.argv, "-f"))
        binds = re.findall(r"^\s*bind (\S+)", cfg.read_text(), re.M)
        hosts = [split_listen(b, "0.0.0.0", 0)[0] for b in binds]
        return (next((h for h in hosts if h not in WILDCARD), ""), 0)
    return ("", 0)
