"""The serving harness's own socket hygiene: a stopped stack's threads never touch a socket
another stack opened later (the cause of `BadStatusLine: ready up` in the end-to-end tests)."""

from __future__ import annotations

import socket
import threading

from tests.harness.netns import retire


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def test_retire_wakes_the_accepting_thread_before_the_number_is_free():
    old = _listener()
    answered = []

    def agent():
        while True:
            try:
                conn, _ = old.accept()
            except OSError:
                return
            conn.sendall(b"ready up\n")
            answered.append(conn.getsockname())
            conn.close()

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    retire(old, thread)
    assert not thread.is_alive()

    new = _listener()  # takes the lowest free descriptor: the number `old` had
    new.settimeout(5)
    for _ in range(5):
        client = socket.create_connection(new.getsockname(), timeout=5)
        conn, _ = new.accept()
        conn.close()
        client.close()
    new.close()
    assert answered == []


def test_retire_wakes_a_thread_reading_a_datagram_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    got = []
    thread = threading.Thread(target=lambda: got.append(s.recvfrom(512)), daemon=True)
    thread.start()
    retire(s, thread)
    assert not thread.is_alive() and got == [(b"", None)]
