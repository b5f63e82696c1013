"""A small OpenAI-compatible HTTP server for tests: chat completions (with tool calls and SSE
streaming), responses (whole and streamed) and embeddings. Model "fail" answers HTTP 500."""
from __future__ import annotations

import base64
import http.server
import json
import struct
import threading
from typing import Any

USAGE_CHAT = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _chat(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "Paris is the capital."}
    finish = "stop"
    if body.get("tools"):
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
        finish = "tool_calls"
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": USAGE_CHAT}


def _chat_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
    deltas: list[dict[str, Any]]
    if body.get("tools"):
        deltas = [
            {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                                  "function": {"name": "get_weather", "arguments": ""}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '"Rome"}'}}]},
        ]
        finish = "tool_calls"
    else:
        deltas = [{"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": " world"}]
        finish = "stop"
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3,
                                                        "total_tokens": 8}})
    return chunks


def _response(body: dict[str, Any], text: str = "Bonjour!") -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": body["model"], "status": "completed",
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}},
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}


def _response_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    final = _response(body, "Bon jour")
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    events = [{"type": "response.created", "sequence_number": 0, "response": created}]
    for i, delta in enumerate(["Bon", " jour"]):
        events.append({"type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_1",
                       "output_index": 0, "content_index": 0, "delta": delta, "logprobs": []})
    events.append({"type": "response.completed", "sequence_number": 3, "response": final})
    return events


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for i, _ in enumerate(inputs):
        vector = [0.5, -0.25, float(i)]
        value: Any = vector
        if body.get("encoding_format") == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {"object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[dict[str, Any]], done: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events:
            name = f"event: {event['type']}\n" if "type" in event else ""
            self.wfile.write(f"{name}data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        if done:
            self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        self.server.requests.append((self.path, body))  # type: ignore[attr-defined]
        if body.get("model") == "fail":
            self._json(500, {"error": {"message": "upstream exploded", "type": "server_error"}})
        elif self.path.endswith("/chat/completions"):
            if body.get("stream"):
                self._sse(_chat_chunks(body), done=True)
            else:
                self._json(200, _chat(body))
        elif self.path.endswith("/responses"):
            if body.get("stream"):
                self._sse(_response_events(body), done=False)
            else:
                self._json(200, _response(body))
        elif self.path.endswith("/embeddings"):
            self._json(200, _embeddings(body))
        else:
            self._json(404, {"error": {"message": "not found"}})

    def log_message(self, *args: object) -> None:
        pass


class FakeOpenAI:
    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = []  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        return self.server.requests  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
