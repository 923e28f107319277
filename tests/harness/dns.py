"""A DNS server for the harness's namespaces: answers A queries for the names the stack's
containers and the internet's stand-ins have, like a container runtime's embedded DNS.

HAProxy re-resolves its servers' names at run time through the `resolvers` section, so the
names must answer over DNS, not only from a hosts file. Unknown names get NXDOMAIN; a known
name asked for another record type gets an empty answer.
"""

from __future__ import annotations

import socket
import struct
import threading

from .netns import retire


class Dns:
    def __init__(self, sock: socket.socket, names: dict[str, str]):
        self.sock = sock
        self.names = names  # shared with the network: names added later answer too
        self._thread = threading.Thread(target=self._serve, name="harness-dns", daemon=True)
        self._stop = False

    def start(self) -> "Dns":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        retire(self.sock, self._thread)

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(data), peer)
            except (OSError, ValueError, IndexError, struct.error):
                continue

    def answer(self, query: bytes) -> bytes:
        ident, flags = struct.unpack(">HH", query[:4])
        labels, offset = [], 12
        while query[offset]:
            length = query[offset]
            labels.append(query[offset + 1:offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        qtype, _qclass = struct.unpack(">HH", query[offset + 1:offset + 5])
        question = query[12:offset + 5]
        name = ".".join(labels).lower().rstrip(".")
        address = self.names.get(name)
        rd = flags & 0x0100
        if address is None:
            return struct.pack(">HHHHHH", ident, 0x8180 | rd | 3, 1, 0, 0, 0) + question  # NXDOMAIN
        if qtype != 1:  # not A: the name exists, nothing of that type
            return struct.pack(">HHHHHH", ident, 0x8180 | rd, 1, 0, 0, 0) + question
        record = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton(address)
        return struct.pack(">HHHHHH", ident, 0x8180 | rd, 1, 1, 0, 0) + question + record
