"""Read a compose target's output: `compose.yaml`, its `.env.example`, its config files.

Every service is a container with a namespace of its own, named as the service (the project
network's DNS); published ports are forwarded from the Docker host. What each container runs
comes from its image and its `entrypoint`/`command`/`environment`, with bind mounts and named
volumes where the harness keeps them. One-shot services others wait for
(`service_completed_successfully`) are jobs: their result (the weights) is not needed by a
stand-in, so they count as completed.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .layout import (Layout, Proc, Published, component_of_image, describe_component, describe_engine, engine_of_image,
                     haproxy_frontends, remap, secret_names, unwrap_drain, urls_in)

# what the images stackc uses run when a service gives no entrypoint, and the program here
PROGRAM_IMAGES = {
    "haproxy": {"program": "/usr/sbin/haproxy", "entry": [], "default": ["-f", "/usr/local/etc/haproxy/haproxy.cfg"],
                "always": ["-W", "-db"]},
    "berriai/litellm": {"program": "GATEWAY", "entry": [], "default": ["--port", "4000"], "always": []},
    "prom/prometheus": {"program": "/usr/bin/prometheus", "entry": [],
                        "default": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
                        "always": []},
}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: `$$` is a `$`; `${VAR}`, `${VAR:?message}`, `${VAR:-default}`
    and `$VAR` are the variable's value."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, rest = m.group(2), m.group(3)
        got = env.get(name, "")
        if op in (":?", "?") and not got:
            raise KeyError(f"{name} is required: {rest}")
        if op in (":-", "-") and not got:
            return rest or ""
        return got

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:\?|:-|-|\?)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", one, value)


def read(root: Path, state: Path, gateway_program: str) -> Layout:
    doc = yaml.safe_load((root / "compose.yaml").read_text())
    secrets = secret_names(root / ".env.example")
    dotenv = {name: secret_value(name) for name in secrets}
    services = doc["services"]
    jobs = {dep for s in services.values() for dep, c in (s.get("depends_on") or {}).items()
            if isinstance(c, dict) and c.get("condition") == "service_completed_successfully"}
    procs: list[Proc] = []
    published: list[Published] = []
    certificates: list[tuple[str, str]] = []
    gateway = prometheus = None
    for name, s in services.items():
        image = s["image"]
        env = {k: interpolate(str(v), dotenv) for k, v in (s.get("environment") or {}).items()}
        command = [interpolate(str(w), dotenv) for w in (s.get("command") or [])]
        entrypoint = s.get("entrypoint")
        table = mounts(root, state, s)
        if name in jobs or s.get("restart") == "no":
            procs.append(Proc(name, name, "job", image=image, argv=command))
            continue
        for p in s.get("ports") or []:
            host_part, container = str(p).rsplit(":", 1)
            ip, _, host_port = host_part.rpartition(":")
            published.append(Published(ip, int(host_port), name, int(container)))
        proc = Proc(name, name, "program", env=env, image=image)
        engine = engine_of_image(image)
        component = component_of_image(image)
        program = next((facts for key, facts in PROGRAM_IMAGES.items() if key in image), None)
        if engine:
            proc.role, proc.engine = "engine", engine
            argv = unwrap_drain(proc, [*(entrypoint or []), *command])
            proc.drain_argv = [remap(a, table) for a in proc.drain_argv]
            describe_engine(proc, argv if engine != "llama.cpp" else _llama_words(argv), env)
            proc.listens = [("0.0.0.0", port) for _, port in proc.listens]  # every interface of the container
        elif component:
            proc.role = "component"
            describe_component(proc, component, env)
        elif program:
            exe = gateway_program if program["program"] == "GATEWAY" else program["program"]
            args = command or program["default"]
            if "haproxy" in image:
                certificates += served_certificates(table)
                table = haproxy_view(state / "mounts" / name, table)
            proc.argv = [exe, *program["always"], *[remap(a, table) for a in args]]
            proc.env = {k: remap(v, table) for k, v in env.items()}
        else:
            raise ValueError(f"service {name}: no way to run image {image} here")
        check = (s.get("healthcheck") or {}).get("test") or []
        words = [str(w) for w in check[1:]] if check and check[0] in ("CMD", "CMD-SHELL") else []
        proc.health = urls_in(words)
        if words[:2] == ["ollama", "show"]:
            proc.ollama_show = words[2]
        procs.append(proc)
        if program and program["program"] == "GATEWAY":
            gateway = name
        if program and "prometheus" in program["program"]:
            prometheus = name
    for proc in procs:  # an Ollama serves what its download job pulled into the shared store
        if proc.engine == "ollama":
            proc.served = frozenset(pulled(services, proc.name))
    gw = next((p for p in published if p.service == gateway), None)
    tls = False
    if gw is None:  # not published itself: clients reach it through a proxy in front (the TLS edge)
        gw, tls = entry_through_proxy(root, state, services, published, gateway)
    prom = next((p for p in published if p.service == prometheus), None)
    config = next(o for inside, o in mounts(root, state, services[gateway]) if inside.endswith("config.yaml"))
    return Layout("compose", root, procs, {}, secrets, Path(config), ("base", "127.0.0.1", gw.host_port),
                  published, ("base", "127.0.0.1", prom.host_port) if prom else None, state, gateway_tls=tls,
                  certificates=certificates)


def haproxy_view(view: Path, table: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The container's view of its bind mounts for HAProxy, whose config names files by their
    paths inside (a certificate, and the `.key` HAProxy looks for beside it): each mount target
    is a link under `view` to what the runtime would mount there, and the config is a copy with
    the paths inside read under `view`."""
    out = []
    for inside, outside in table:
        link = view / inside.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(outside)
        out.append((inside, str(link)))
    for inside, outside in table:
        if inside.endswith(".cfg"):
            text = Path(outside).read_text()
            copy = view / "config-as-mounted.cfg"
            copy.write_text("\n".join(remap(line, out) for line in text.splitlines()) + "\n")
            out = [(i, str(copy) if i == inside else o) for i, o in out]
    return out


def served_certificates(table: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The host files behind each `crt PATH` of an HAProxy config: PATH and the `PATH.key` HAProxy
    reads beside it."""
    where = dict(table)
    config = next((outside for inside, outside in table if inside.endswith(".cfg")), None)
    if config is None or not Path(config).exists():
        return []
    crts = re.findall(r"\bcrt (\S+)", Path(config).read_text())
    return sorted({(where[c], where[c + ".key"]) for c in crts if c in where and c + ".key" in where})


def entry_through_proxy(root: Path, state: Path, services: dict, published: list[Published], gateway: str
                        ) -> tuple[Published, bool]:
    """The published port of the HAProxy whose frontend there forwards to the gateway, and whether
    that frontend terminates TLS: read from its config, section by section."""
    for pub in published:
        s = services[pub.service]
        if "haproxy" not in s["image"]:
            continue
        config = next(o for inside, o in mounts(root, state, s) if inside.endswith(".cfg"))
        for bind, servers in haproxy_frontends(Path(config).read_text()):
            if bind[1].rsplit(":", 1)[1] == str(pub.container_port) and \
                    any(server.split(":")[0] == gateway for server in servers):
                return pub, "ssl" in bind
    raise ValueError(f"nothing published reaches the gateway `{gateway}`")


def mounts(root: Path, state: Path, s: dict) -> list[tuple[str, str]]:
    out = []
    for m in s.get("volumes") or []:
        if m["type"] == "bind":
            source = Path(m["source"])
            out.append((m["target"], str(source if source.is_absolute() else (root / source).resolve())))
        else:
            d = state / "volumes" / m["source"]
            d.mkdir(parents=True, exist_ok=True)
            out.append((m["target"], str(d)))
    return out


def pulled(services: dict, engine: str) -> list[str]:
    """Tags `ollama pull` fetches in the jobs the engine waits for."""
    tags = []
    for dep in services[engine].get("depends_on") or {}:
        words = " ".join(str(w) for w in services[dep].get("command") or [])
        tags += re.findall(r"ollama pull (\S+)", words)
    return tags


def _llama_words(argv: list[str]) -> list[str]:
    """llama.cpp runs as one shell line (it finds its GGUF file first): its words."""
    import shlex

    if len(argv) >= 2 and argv[-2] == "-c":
        return shlex.split(argv[-1])
    return argv


def secret_value(name: str) -> str:
    """A test value for every secret (LiteLLM wants its master key to start with `sk-`)."""
    return f"sk-harness-{name.lower().replace('_', '-')}"
