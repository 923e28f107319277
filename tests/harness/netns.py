"""Network namespaces for a stack under test: one per container (compose) or per server
(systemd, a cloud's nodes), joined by a bridge in a namespace of the harness's own.

Nothing here touches the machine's own network: every interface, address and route lives in
namespaces the harness creates and deletes. Processes start inside a namespace with
`ip netns exec`, which also puts `/etc/netns/<name>/hosts` and `resolv.conf` in place of the
machine's, the way a container runtime gives each container its own. The harness's own
sockets (stand-ins, clients) are created inside a namespace by switching the calling thread
into it for the `socket()` call only (`setns` is per thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
SUBNET = ipaddress.ip_network("172.31.0.0/24")  # the bridge's subnet, inside the harness only
PREFIX = "stkh"

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_lock = threading.Lock()
_count = iter(range(1, 10**9))


def available() -> Optional[str]:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "the serving harness needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    probe = subprocess.run(["ip", "netns", "add", f"{PREFIX}probe{os.getpid()}"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", f"{PREFIX}probe{os.getpid()}"], capture_output=True)
    return None


def _ip(*args: str, ns: Optional[str] = None) -> None:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


@dataclass
class Host:
    """A namespace: a container, or a server with its addresses."""

    key: str  # the compose service or the node it stands for
    ns: str
    bridge_ip: str
    addresses: list[str] = field(default_factory=list)  # the server's own addresses, from its files


class Network:
    """The bridge namespace (`base`: the Docker host, the LAN, and the internet's stand-ins) and
    a namespace per host, all on one bridge."""

    def __init__(self) -> None:
        with _lock:
            self.tag = f"{PREFIX}{os.getpid()}x{next(_count)}"
        self.base = f"{self.tag}b"
        self.hosts: dict[str, Host] = {}
        self._next = 10
        self._extra = 200
        self._hosts_file: dict[str, str] = {}  # name -> address, for every namespace
        _clean_stale()
        _ip("netns", "add", self.base)
        _ip("link", "set", "lo", "up", ns=self.base)
        _ip("link", "add", "br0", "type", "bridge", ns=self.base)
        _ip("addr", "add", f"{SUBNET[1]}/{SUBNET.prefixlen}", "dev", "br0", ns=self.base)
        _ip("link", "set", "br0", "up", ns=self.base)
        self.gateway_ip = str(SUBNET[1])
        self._etc(self.base)

    # ---- building

    def add_host(self, key: str, addresses: list[str] = ()) -> Host:
        n = len(self.hosts)
        ns = f"{self.tag}h{n}"
        ip = str(SUBNET[self._next])
        self._next += 1
        _ip("netns", "add", ns)
        _ip("link", "set", "lo", "up", ns=ns)
        outside, inside = f"veth{n}", "eth0"
        _ip("link", "add", outside, "netns", self.base, "type", "veth", "peer", "name", inside, "netns", ns)
        _ip("link", "set", outside, "master", "br0", ns=self.base)
        _ip("link", "set", outside, "up", ns=self.base)
        _ip("addr", "add", f"{ip}/{SUBNET.prefixlen}", "dev", inside, ns=ns)
        _ip("link", "set", inside, "up", ns=ns)
        _ip("route", "add", "default", "via", self.gateway_ip, ns=ns)
        host = Host(key, ns, ip, [])
        for other in self.hosts.values():  # the other servers' own addresses are on the same link
            for a in other.addresses:
                _ip("route", "replace", f"{a}/32", "dev", "eth0", ns=ns)
        self.hosts[key] = host
        for address in addresses:
            self.add_address(host, address)
        self._etc(ns)
        return host

    def add_address(self, host: Host, address: str) -> None:
        """A server's own address (from its units) on its interface, reachable from every host."""
        if address in host.addresses or address in ("127.0.0.1", "0.0.0.0", host.bridge_ip):
            return
        _ip("addr", "add", f"{address}/32", "dev", "eth0", ns=host.ns)
        host.addresses.append(address)
        for other in self.hosts.values():
            if other is not host:
                _ip("route", "replace", f"{address}/32", "dev", "eth0", ns=other.ns)
        _ip("route", "replace", f"{address}/32", "dev", "br0", ns=self.base)

    def external_address(self) -> str:
        """One more address in the bridge namespace, for a stand-in of a host on the internet."""
        ip = str(SUBNET[self._extra])
        self._extra += 1
        _ip("addr", "add", f"{ip}/32", "dev", "br0", ns=self.base)
        return ip

    def name(self, name: str, address: str) -> None:
        """`name` resolves to `address` in every namespace (container DNS; the internet's names)."""
        self._hosts_file[name] = address
        for ns in [self.base, *(h.ns for h in self.hosts.values())]:
            self._etc(ns)

    def _etc(self, ns: str) -> None:
        d = ETC_NETNS / ns
        d.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", *(f"{a} {n}" for n, a in sorted(self._hosts_file.items()))]
        (d / "hosts").write_text("\n".join(lines) + "\n")
        (d / "resolv.conf").write_text(f"nameserver {self.gateway_ip}\noptions timeout:1 attempts:1\n")

    # ---- using

    @contextlib.contextmanager
    def inside(self, ns: str) -> Iterator[None]:
        """Sockets this thread creates in the block belong to `ns`."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(NETNS_DIR / ns, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {ns}")
            try:
                yield
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(target)

    def listen(self, ns: str, address: str, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
        with self.inside(ns):
            s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        if kind == socket.SOCK_STREAM:
            s.listen(128)
        return s

    def connect(self, ns: str, address: str, port: int, timeout: float = 60) -> socket.socket:
        with self.inside(ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((address, port))
        return s

    def popen(self, ns: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
        handle = open(log, "ab")
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)

    def close(self) -> None:
        for ns in [*(h.ns for h in self.hosts.values()), self.base]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)


def retire(sock: socket.socket, thread: Optional[threading.Thread] = None, timeout: float = 5.0) -> None:
    """Stop a socket another thread is blocked on: shut it down (which wakes that thread's
    `accept` or `recvfrom`), let the thread leave, and only then close it.

    Closing first frees the descriptor's number while the thread may be about to pass it to
    `accept` again, and the kernel gives the lowest free number to the next socket opened
    anywhere in this process: another stack's published port, whose connections the stopped
    stack's drain agent would then answer with `ready up`."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # a listening or unconnected socket says ENOTCONN, and is woken all the same
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)
    sock.close()


def _clean_stale() -> None:
    """Namespaces a harness left behind when its process died (their pid is gone)."""
    with _lock:
        if not NETNS_DIR.is_dir():
            return
        for entry in NETNS_DIR.iterdir():
            name = entry.name
            if not name.startswith(PREFIX) or "x" not in name:
                continue
            pid = name[len(PREFIX):].split("x", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
                shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
