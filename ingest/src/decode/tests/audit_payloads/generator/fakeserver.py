#!/usr/bin/env python3
"""A tiny fake OpenAI- and Anthropic-compatible HTTP server with canned answers (stdlib only).

    python3 fakeserver.py --port 39510      # serve until killed
    from fakeserver import start; url = start(port)   # in a thread, for gen.py

Routes:
  POST /v1/chat/completions   non-streaming, or SSE when "stream": true (the usage chunk comes
                              last when stream_options.include_usage is true). A request with
                              "tools" answers with a tool call (finish_reason tool_calls).
  POST /v1/embeddings
  POST /v1/messages           Anthropic Messages API, non-streaming and SSE.
  A request whose model starts with "fail-" gets an error: fail-429 -> 429 rate limit,
  fail-500 -> 500 server error (OpenAI-shaped or Anthropic-shaped body by route).

Every canned number is in CANNED below; gen.py records it as the truth to compare the lake with.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIRST_CHUNK_DELAY = 0.15  # seconds before the first streamed chunk (a known TTFT floor)
CHUNK_DELAY = 0.05
CALL_DELAY = 0.10  # seconds before a non-streamed answer

CANNED = {
    "chat": dict(id="chatcmpl-RI32-chat", model="gpt-4o-mini-2024-07-18", prompt_tokens=123,
                 completion_tokens=45, cached_tokens=67, reasoning_tokens=12, finish_reason="stop",
                 content="Your order ships today.", system_fingerprint="fp_ri32"),
    "tool": dict(id="chatcmpl-RI32-tool", model="gpt-4o-mini-2024-07-18", prompt_tokens=210,
                 completion_tokens=19, cached_tokens=0, reasoning_tokens=0, finish_reason="tool_calls",
                 tool_call_id="call_RI32", tool_name="get_weather", tool_args='{"city": "Paris"}'),
    "stream": dict(id="chatcmpl-RI32-stream", model="gpt-4o-mini-2024-07-18", prompt_tokens=200,
                   completion_tokens=30, cached_tokens=100, reasoning_tokens=5, finish_reason="length",
                   chunks=["Once ", "upon ", "a ", "time."]),
    "embeddings": dict(model="text-embedding-3-small", prompt_tokens=9, dims=8),
    "anthropic": dict(id="msg_RI32_0001", model="claude-3-5-sonnet-20241022", input_tokens=150,
                      output_tokens=40, cache_read_input_tokens=60, cache_creation_input_tokens=20,
                      stop_reason="end_turn", content="Bonjour."),
    "anthropic_stream": dict(id="msg_RI32_stream", model="claude-3-5-sonnet-20241022", input_tokens=170,
                             output_tokens=22, cache_read_input_tokens=80, cache_creation_input_tokens=0,
                             stop_reason="max_tokens", chunks=["Il ", "était ", "une fois."]),
}

LOG = []  # (path, request body) of every request, for the generator's notes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _json(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-request-id", "req_RI32")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _sse_start(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _sse(self, data, event=None):
        out = ""
        if event:
            out += f"event: {event}\n"
        out += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
        self.wfile.write(out.encode())
        self.wfile.flush()

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        req = json.loads(self.rfile.read(length) or b"{}")
        LOG.append((self.path, req))
        model = str(req.get("model", ""))
        anthropic = self.path.rstrip("/").endswith("/messages")
        if model.startswith("fail-"):
            code = 429 if model == "fail-429" else 500
            if anthropic:
                kind = "rate_limit_error" if code == 429 else "api_error"
                return self._json(code, {"type": "error", "error": {"type": kind, "message": f"fake {code}"}})
            kind = "rate_limit_exceeded" if code == 429 else "server_error"
            return self._json(code, {"error": {"message": f"fake {code}", "type": kind, "code": kind}},
                              headers=[("retry-after", "0")])
        if self.path.endswith("/chat/completions"):
            return self.chat(req)
        if self.path.endswith("/embeddings"):
            return self.embeddings(req)
        if anthropic:
            return self.messages(req)
        self._json(404, {"error": {"message": "no such route"}})

    # ---- OpenAI -------------------------------------------------------------------------------
    @staticmethod
    def _usage(c):
        return {
            "prompt_tokens": c["prompt_tokens"], "completion_tokens": c["completion_tokens"],
            "total_tokens": c["prompt_tokens"] + c["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": c["cached_tokens"], "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": c["reasoning_tokens"], "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }

    def chat(self, req):
        if req.get("stream"):
            return self.chat_stream(req)
        time.sleep(CALL_DELAY)
        if req.get("tools"):
            c = CANNED["tool"]
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                {"id": c["tool_call_id"], "type": "function",
                 "function": {"name": c["tool_name"], "arguments": c["tool_args"]}}]}
        else:
            c = CANNED["chat"]
            message = {"role": "assistant", "content": c["content"], "refusal": None}
        self._json(200, {
            "id": c["id"], "object": "chat.completion", "created": int(time.time()), "model": c["model"],
            "system_fingerprint": "fp_ri32", "service_tier": "default",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": c["finish_reason"]}],
            "usage": self._usage(c),
        })

    def chat_stream(self, req):
        c = CANNED["stream"]
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        self._sse_start()
        base = {"id": c["id"], "object": "chat.completion.chunk", "created": int(time.time()),
                "model": c["model"], "system_fingerprint": "fp_ri32", "service_tier": "default"}
        time.sleep(FIRST_CHUNK_DELAY)
        self._sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "logprobs": None, "finish_reason": None}],
                   **({"usage": None} if include_usage else {})})
        for text in c["chunks"]:
            time.sleep(CHUNK_DELAY)
            self._sse({**base, "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None,
                                            "finish_reason": None}],
                       **({"usage": None} if include_usage else {})})
        self._sse({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": c["finish_reason"]}],
                   **({"usage": None} if include_usage else {})})
        if include_usage:
            self._sse({**base, "choices": [], "usage": self._usage(c)})
        self._sse("[DONE]")

    def embeddings(self, req):
        c = CANNED["embeddings"]
        time.sleep(CALL_DELAY)
        inputs = req.get("input")
        n = len(inputs) if isinstance(inputs, list) else 1
        self._json(200, {
            "object": "list", "model": c["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [0.125 * (k + 1) for k in range(c["dims"])]}
                     for i in range(n)],
            "usage": {"prompt_tokens": c["prompt_tokens"], "total_tokens": c["prompt_tokens"]},
        })

    # ---- Anthropic ----------------------------------------------------------------------------
    def messages(self, req):
        if req.get("stream"):
            return self.messages_stream(req)
        c = CANNED["anthropic"]
        time.sleep(CALL_DELAY)
        self._json(200, {
            "id": c["id"], "type": "message", "role": "assistant", "model": c["model"],
            "content": [{"type": "text", "text": c["content"]}],
            "stop_reason": c["stop_reason"], "stop_sequence": None,
            "usage": {"input_tokens": c["input_tokens"], "output_tokens": c["output_tokens"],
                      "cache_read_input_tokens": c["cache_read_input_tokens"],
                      "cache_creation_input_tokens": c["cache_creation_input_tokens"]},
        })

    def messages_stream(self, req):
        c = CANNED["anthropic_stream"]
        self._sse_start()
        time.sleep(FIRST_CHUNK_DELAY)
        self._sse({"type": "message_start", "message": {
            "id": c["id"], "type": "message", "role": "assistant", "model": c["model"], "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": c["input_tokens"], "output_tokens": 1,
                      "cache_read_input_tokens": c["cache_read_input_tokens"],
                      "cache_creation_input_tokens": c["cache_creation_input_tokens"]}}}, "message_start")
        self._sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                  "content_block_start")
        for text in c["chunks"]:
            time.sleep(CHUNK_DELAY)
            self._sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                      "content_block_delta")
        self._sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self._sse({"type": "message_delta", "delta": {"stop_reason": c["stop_reason"], "stop_sequence": None},
                   "usage": {"output_tokens": c["output_tokens"]}}, "message_delta")
        self._sse({"type": "message_stop"}, "message_stop")


def start(port):
    """Serve in a daemon thread; returns the server (call .shutdown() to stop)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=39510)
    args = ap.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
