"""Stand-ins for what cannot run here: engine replicas (no GPU), the hosted APIs overflow goes
to (no internet), and components whose images only run in a container runtime.

An engine stand-in answers only what its engine serves: vLLM, SGLang, llama.cpp, TGI and
TensorRT-LLM their OpenAI-compatible routes with their own health and metrics paths; Ollama
its native `/api/*` routes (which LiteLLM's `ollama_chat/` provider calls). It refuses a model
it was not started with, as vLLM and Ollama do, refuses a prompt over its `--max-model-len`
with vLLM's wording, and names itself in every answer (`served-by:<name>`), so a test can tell
which replica, of which model, served a request. It counts what it served and keeps the model
names and headers it was sent.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from .netns import retire

OPENAI_POST = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
# paths each engine answers to beyond the OpenAI routes, and whether it checks the model name
ENGINES = {
    "vllm": {"get": ("/health", "/v1/models", "/metrics", "/ping", "/version"),
             "post": (*OPENAI_POST, "/v1/rerank", "/rerank", "/v2/rerank", "/score", "/v1/score", "/pooling"),
             "checks_model": True},
    "sglang": {"get": ("/health", "/health_generate", "/v1/models", "/metrics", "/get_model_info"),
               "post": (*OPENAI_POST, "/v1/rerank"), "checks_model": True},
    "llama.cpp": {"get": ("/health", "/v1/models", "/props"), "post": (*OPENAI_POST, "/v1/rerank", "/completion"),
                  "checks_model": False},
    "tgi": {"get": ("/health", "/info", "/metrics", "/v1/models"), "post": (*OPENAI_POST[:2], "/generate"),
            "checks_model": False},
    "tensorrt-llm": {"get": ("/health", "/metrics", "/v1/models"), "post": OPENAI_POST[:2], "checks_model": False},
    "ollama": {"get": ("/", "/api/version", "/api/tags"),
               "post": ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings", "/api/show", *OPENAI_POST),
               "checks_model": True},
    "hosted": {"get": ("/v1/models",), "post": OPENAI_POST, "checks_model": False},
}
METRICS = {
    "vllm": ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"],
    "sglang": ["sglang:num_running_reqs", "sglang:num_queue_reqs"],
    "tgi": ["tgi_queue_size", "tgi_batch_current_size"],
    "tensorrt-llm": ["trtllm_num_requests_running"],
    "llama.cpp": ["llamacpp:requests_processing"],
}


@dataclass
class StandIn:
    """One engine replica, a hosted API, or a component (`kind` names which)."""

    name: str
    kind: str = "vllm"
    models: Optional[frozenset[str]] = None  # model names it answers to; None: any
    task: str = "generate"  # generate | embed | rerank
    max_context: int = 0  # tokens (characters / 4); 0: no limit
    metrics: bool = True  # llama.cpp serves /metrics only with --metrics
    component_paths: tuple[str, ...] = ()  # for a component: the GET paths its image answers
    delay: float = 0.0
    fail: bool = False
    served: Counter = field(default_factory=Counter)  # path -> requests answered
    requests: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.served.values())

    def serve(self, sock: socket.socket, tls: Optional[ssl.SSLContext] = None) -> "StandIn":
        owner = self

        class Handler(_Handler):
            standin = owner

        server = _Server(sock.getsockname(), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = tls.wrap_socket(sock, server_side=True) if tls else sock
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, name=f"standin-{self.name}", daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def reset(self, **behaviour) -> None:
        with self._lock:
            self.served.clear()
            self.requests.clear()
            self.max_in_flight = 0
        self.delay, self.fail = 0.0, False
        for key, value in behaviour.items():
            setattr(self, key, value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # health checkers and retries close connections mid-request


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, code: int, text: str, kind: str = "text/plain") -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @property
    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def do_GET(self) -> None:
        s, path = self.standin, self._path
        if s.kind == "component":
            if path in s.component_paths:
                self._text(200, "# a stand-in\nup 1\n" if path == "/metrics" else "ok")
            else:
                self._json(404, {"error": f"no {path}"})
            return
        routes = ENGINES[s.kind]
        if path not in routes["get"] and not (path == "/metrics" and s.kind == "llama.cpp" and s.metrics):
            self._json(404, {"error": {"message": f"{s.kind} has no GET {path}"}})
            return
        if path == "/metrics":
            label = next(iter(sorted(s.models or {s.name})))
            lines = [f'{m}{{model_name="{label}"}} 0' for m in METRICS.get(s.kind, ["up"])]
            self._text(200, "\n".join(lines) + "\n")
        elif path in ("/v1/models", "/api/tags"):
            names = sorted(s.models or {s.name})
            if path == "/api/tags":
                self._json(200, {"models": [{"name": n, "model": n} for n in names]})
            else:
                self._json(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})
        elif path in ("/", "/api/version"):
            self._text(200, "Ollama is running") if path == "/" else self._json(200, {"version": "0.0.0-standin"})
        else:
            self._text(200, "") if s.kind == "vllm" else self._json(200, {"status": "ok"})

    def do_POST(self) -> None:
        s, path = self.standin, self._path
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": "not json"})
            return
        if s.kind == "component" or path not in ENGINES[s.kind]["post"]:
            self._json(404, {"error": {"message": f"{s.kind} has no POST {path}"}})
            return
        model = request.get("model") or request.get("name")
        with s._lock:
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
            s.requests.append({"path": path, "model": model, "body": request,
                               "headers": {k.lower(): v for k, v in self.headers.items()}})
        try:
            time.sleep(s.delay)
            self._answer(path, model, request)
        finally:
            with s._lock:
                s.in_flight -= 1
                s.served[path] += 1

    def _answer(self, path: str, model: Optional[str], request: dict) -> None:
        s = self.standin
        if ENGINES[s.kind]["checks_model"] and s.models is not None and model not in s.models:
            if s.kind == "ollama":
                self._json(404, {"error": f'model "{model}" not found, try pulling it first'})
            else:
                self._json(404, {"object": "error", "message": f"The model `{model}` does not exist.",
                                 "type": "NotFoundError", "param": "model", "code": 404})
            return
        if s.fail:
            self._json(500, {"object": "error", "message": f"{s.name} failed", "type": "InternalServerError", "code": 500})
            return
        if path == "/api/show":
            self._json(200, {"modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
                             "details": {"format": "gguf", "family": "standin"},
                             "model_info": {"general.architecture": "standin", "standin.context_length": 8192},
                             "capabilities": ["embedding"] if s.task != "generate" else ["completion"]})
            return
        embedding = path.endswith("embeddings") or path.endswith("/embed") or path == "/pooling"
        rerank = "rerank" in path or "score" in path
        wants = "embed" if embedding else "rerank" if rerank else "generate"
        if wants != s.task and not (s.task in ("rerank", "pooling") and wants in ("embed", "rerank")):
            self._json(400, {"object": "error", "type": "BadRequestError", "code": 400,
                             "message": f"{s.name} serves a {s.task} model; {path} is for {wants} models"})
            return
        if embedding:
            self._embed(path, model)
            return
        if rerank:
            documents = request.get("documents") or []
            self._json(200, {"id": f"{s.name}-rerank", "model": model, "usage": {"total_tokens": 1},
                             "results": [{"index": i, "relevance_score": 1.0 / (1 + i),
                                          "document": {"text": f"served-by:{s.name}"}}
                                         for i, _ in enumerate(documents)]})
            return
        prompt = json.dumps(request.get("messages") or request.get("prompt") or "")
        tokens = len(prompt) // 4
        if s.max_context and tokens > s.max_context and s.kind != "ollama":  # Ollama truncates instead
            self._json(400, {"object": "error", "type": "BadRequestError", "code": 400, "message":
                             f"This model's maximum context length is {s.max_context} tokens. However, you requested "
                             f"{tokens} tokens in the messages, Please reduce the length of the messages."})
            return
        if path.startswith("/api/"):
            self._ollama(path, model, request, tokens)
        else:
            self._openai(path, model, request, tokens)

    def _embed(self, path: str, model: Optional[str]) -> None:
        vector = identity_vector(self.standin.name)
        if path.startswith("/api/"):
            self._json(200, {"model": model, "embeddings": [vector], "embedding": vector, "prompt_eval_count": 1,
                             "served_by": self.standin.name})
        else:
            self._json(200, {"object": "list", "model": model, "usage": {"prompt_tokens": 1, "total_tokens": 1},
                             "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                             "served_by": self.standin.name})

    def _stream_start(self, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _openai(self, path: str, model: Optional[str], request: dict, tokens: int) -> None:
        s = self.standin
        chat = path.endswith("/chat/completions")
        base = {"id": f"{s.name}-{time.time_ns()}", "created": int(time.time()), "model": model}
        if request.get("stream"):
            self._stream_start("text/event-stream")
            for piece in ["served-by:", s.name, ""]:
                if chat:
                    delta = {"content": piece} if piece else {}
                    choice = {"index": 0, "delta": delta, "finish_reason": None if piece else "stop"}
                    chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
                else:
                    chunk = {**base, "object": "text_completion",
                             "choices": [{"index": 0, "text": piece, "finish_reason": None if piece else "stop"}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.01)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            return
        usage = {"prompt_tokens": tokens, "completion_tokens": 2, "total_tokens": tokens + 2}
        text = f"served-by:{s.name}"
        if chat:
            self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
        else:
            self._json(200, {**base, "object": "text_completion", "usage": usage,
                             "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]})

    def _ollama(self, path: str, model: Optional[str], request: dict, tokens: int) -> None:
        s = self.standin
        chat = path == "/api/chat"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def piece(text: str, done: bool) -> dict:
            out = {"model": model, "created_at": now, "done": done}
            out.update({"message": {"role": "assistant", "content": text}} if chat else {"response": text})
            if done:
                out.update({"done_reason": "stop", "prompt_eval_count": tokens, "eval_count": 2,
                            "total_duration": 1, "eval_duration": 1})
            return out

        if request.get("stream", True):  # Ollama streams unless told not to
            self._stream_start("application/x-ndjson")
            for text in ["served-by:", s.name]:
                self.wfile.write((json.dumps(piece(text, False)) + "\n").encode())
                self.wfile.flush()
                time.sleep(0.01)
            self.wfile.write((json.dumps(piece("", True)) + "\n").encode())
            self.wfile.flush()
            return
        self._json(200, piece(f"served-by:{s.name}", True))


class DrainAgent:
    """The drain wrapper's agent check, as HAProxy reads it: `ready up`, or `drain` once stopping."""

    def __init__(self, sock: socket.socket):
        self.sock, self.draining = sock, False
        self._thread = threading.Thread(target=self._serve, daemon=True, name="drain-agent")
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.sendall(b"drain\n" if self.draining else b"ready up\n")
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        retire(self.sock, self._thread)


def identity_vector(name: str) -> list[float]:
    """An embedding that spells `served-by:<name>`, which the gateway passes through unchanged."""
    return [float(b) for b in f"served-by:{name}".encode()]


def served_by(body: Optional[dict], text: str) -> Optional[str]:
    """Which stand-in answered: from a chat or text completion, plain or streamed, or an
    embedding/rerank answer's `served_by` where the gateway passes it through."""
    if body is not None:
        if "choices" in body and body["choices"]:
            choice = body["choices"][0]
            content = (choice.get("message") or {}).get("content") or choice.get("text") or ""
            return content.split(":", 1)[1] if content.startswith("served-by:") else None
        data = body.get("data") or []
        if data and isinstance(data[0], dict) and "embedding" in data[0]:
            try:
                spelled = bytes(int(x) for x in data[0]["embedding"]).decode()
            except (ValueError, TypeError):
                return None
            return spelled.split(":", 1)[1] if spelled.startswith("served-by:") else None
        for result in body.get("results") or []:
            text = ((result.get("document") or {}).get("text")) or ""
            if text.startswith("served-by:"):
                return text.split(":", 1)[1]
        return body.get("served_by")
    pieces = []
    for line in text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            try:
                chunk = json.loads(line[6:])
            except ValueError:
                continue
            for choice in chunk.get("choices", []):
                pieces.append((choice.get("delta") or {}).get("content") or choice.get("text") or "")
    joined = "".join(pieces)
    return joined.split(":", 1)[1] if joined.startswith("served-by:") else None
