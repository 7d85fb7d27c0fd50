"""A deterministic OpenAI-compatible teacher over HTTP (stdlib only): it knows each question's answer.

Stage 1 (``Q: {question}\\nA: Let's think step by step.``) gets a short rationale; stage 2 (the stage-1 prompt,
the rationale and an answer trigger) gets the gold answer. Questions it is told to miss get a wrong answer, so
curation has rationales to reject. fcot reaches it only through ``/v1/models`` and ``/v1/completions``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "answer-teacher"


def _reply(prompt: str, answers: dict[str, str], wrong: set[str]) -> str:
    question = prompt.split("Q: ", 1)[-1].split("\nA: Let's think step by step.", 1)[0]
    answer = answers.get(question, "")
    if question in wrong:
        answer = {"yes": "no", "no": "yes", "A": "B", "B": "A"}.get(answer, "7777")
    if prompt.rstrip().endswith("Let's think step by step."):
        return f" We read the question carefully and work it out, so we get {answer}."
    return f" {answer}."


@contextmanager
def answer_server(answers: dict[str, str], wrong: set[str] = frozenset()) -> Iterator[str]:
    """Serve on a free loopback port; yields ``http://127.0.0.1:<port>/v1/completions``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet test output
            pass

        def _send(self, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._send({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

        def do_POST(self) -> None:  # noqa: N802
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompts = request["prompt"] if isinstance(request["prompt"], list) else [request["prompt"]]
            choices = [
                {"index": i, "text": _reply(p, answers, wrong), "finish_reason": "stop", "logprobs": None}
                for i, p in enumerate(prompts)
            ]
            self._send(
                {
                    "id": "x",
                    "object": "text_completion",
                    "model": MODEL,
                    "choices": choices,
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/completions"
    finally:
        server.shutdown()
        server.server_close()


def teacher_args(url: str) -> str:
    """``--teacher`` of ``fcot distill`` for this server (no tokenizer: requests are text)."""
    return f"base=local-completions,base_url={url},model={MODEL},tokenized_requests=False,tokenizer_backend=none"
