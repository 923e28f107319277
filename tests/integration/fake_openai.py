"""A small OpenAI-compatible server on 127.0.0.1 that names itself in every answer.

It stands for one engine replica (or the hosted API) in the loopback tests: chat and text
completions, plain or streamed, embeddings, `/health` and `/v1/models`. It can be slow (to
saturate the gateway), fail with 500 (to trigger retries and overflow), or refuse prompts over
a context like vLLM does (400, "maximum context length"). It counts what it served and keeps
the headers and model names it was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional


class FakeBackend:
    def __init__(self, name: str, delay: float = 0.0, fail: bool = False, max_context: int = 0):
        self.name = name
        self.delay = delay
        self.fail = fail
        self.max_context = max_context  # tokens, counted as characters / 4; 0: no limit
        self.served: Counter = Counter()  # path -> completed requests
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict] = []  # {"path", "model", "headers"} per request
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def total(self) -> int:
        return sum(self.served.values())

    def start(self) -> "FakeBackend":
        backend = self

        class Handler(_Handler):
            owner = backend

        server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server = server
        threading.Thread(target=server.serve_forever, name=f"fake-{self.name}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self, **behaviour) -> None:
        with self._lock:
            self.served.clear()
            self.requests.clear()
            self.max_in_flight = 0
        for key, value in behaviour.items():
            setattr(self, key, value)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # health checkers and retries close connections mid-request; nothing to report


class _Handler(BaseHTTPRequestHandler):
    owner: FakeBackend
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": self.owner.name, "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no {self.path}"}})

    def do_POST(self) -> None:
        b = self.owner
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with b._lock:
            b.in_flight += 1
            b.max_in_flight = max(b.max_in_flight, b.in_flight)
            b.requests.append({"path": self.path, "model": request.get("model"),
                               "headers": {k.lower(): v for k, v in self.headers.items()}})
        try:
            time.sleep(b.delay)
            self._answer(request)
        finally:
            with b._lock:
                b.in_flight -= 1
                b.served[self.path] += 1

    def _answer(self, request: dict) -> None:
        b = self.owner
        if b.fail:
            self._json(500, {"object": "error", "message": f"{b.name} failed", "type": "InternalServerError", "code": 500})
            return
        if self.path.endswith("/embeddings"):
            self._json(200, {"object": "list", "model": request.get("model"), "usage": {"prompt_tokens": 1, "total_tokens": 1},
                             "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]})
            return
        prompt = json.dumps(request.get("messages") or request.get("prompt") or "")
        tokens = len(prompt) // 4
        if b.max_context and tokens > b.max_context:
            # vLLM's wording, which LiteLLM maps to a context-window error
            self._json(400, {"object": "error", "type": "BadRequestError", "code": 400, "message":
                             f"This model's maximum context length is {b.max_context} tokens. However, you requested "
                             f"{tokens} tokens in the messages, Please reduce the length of the messages."})
            return
        chat = self.path.endswith("/chat/completions")
        base = {"id": f"{b.name}-{time.time_ns()}", "created": int(time.time()), "model": request.get("model")}
        if request.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for piece in ["served-by:", b.name, ""]:
                if chat:
                    delta = {"content": piece} if piece else {}
                    choice = {"index": 0, "delta": delta, "finish_reason": None if piece else "stop"}
                    chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
                else:
                    chunk = {**base, "object": "text_completion",
                             "choices": [{"index": 0, "text": piece, "finish_reason": None if piece else "stop"}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        usage = {"prompt_tokens": tokens, "completion_tokens": 2, "total_tokens": tokens + 2}
        text = f"served-by:{b.name}"
        if chat:
            self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
        else:
            self._json(200, {**base, "object": "text_completion", "usage": usage,
                             "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]})
