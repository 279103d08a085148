"""A deterministic OpenAI chat-completions server on 127.0.0.1 (a thread), standing in for the judge.

Answers by the prompt's kind: MMBench answer extraction ("Your output:") -> "A"; LLaVA-Bench review
("[System]") -> "8 6" (reference 8, model 6: relative score 75.0); anything else (MM-Vet grading,
the probe) -> "0.5". Records every request's Authorization header and prompt.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer(prompt: str) -> str:
    if "Your output:" in prompt:
        return "A"
    if "[System]" in prompt:
        return "8 6"
    return "0.5"


class StubJudge:
    def __init__(self):
        self.requests = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                prompt = prompt if isinstance(prompt, str) else " ".join(p.get("text", "") for p in prompt)
                stub.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "prompt": prompt})
                reply = {"id": "stub", "object": "chat.completion", "created": 0, "model": body.get("model", "stub"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": answer(prompt)}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
