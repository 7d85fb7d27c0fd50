"""What a running server is to its clients: its address, the name it serves the model under, and the lm-eval
model args that reach it (``local-completions``, or ``zscot`` around it)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from fcot_plugin.core.errors import FcotError

HOST = "127.0.0.1"


class EngineError(FcotError):
    """A served engine cannot be found, started or used; the message says what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def model_name(model: str | os.PathLike) -> str:
    """A folder or file as its absolute path (the same name whatever the current folder), a Hub id as it is."""
    text = os.fspath(model)
    name = os.path.abspath(text) if os.path.exists(text) else text
    if any(char in name for char in ",="):
        raise EngineError(f"the model {name!r} holds ',' or '=', which lm-eval model args cannot carry; rename it")
    return name


def served_names(url: str) -> list[str] | None:
    """The model ids ``url`` (``/v1/models``) lists, or None while the server does not answer."""
    import requests

    try:
        response = requests.get(url, timeout=5)
        if not response.ok:
            return None
        return [entry.get("id") for entry in response.json().get("data", [])]
    except (requests.exceptions.RequestException, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class ServedModel:
    """A running server: where it answers, what it calls the model, and the model args lm-eval needs."""

    engine: str
    model: str  #: the name the server serves the model under (``model=`` of every request)
    base_url: str  #: ``http://127.0.0.1:<port>/v1/completions``
    tokenizer: str | None  #: a Hugging Face tokenizer for lm-eval; None: lm-eval sends text and counts nothing
    port: int
    pid: int
    log_file: Path
    num_concurrent: int
    timeout: int
    max_retries: int = 3

    @property
    def model_args(self) -> str:
        """The base model of ``--model zscot``: ``base=local-completions,base_url=...,model=...,...``."""
        return self.teacher_args()

    def teacher_args(self, **extra: object) -> str:
        """:attr:`model_args` with more ``key=value`` pairs (``cache=...``, ``answer_max_gen_toks=...``)."""
        return "base=local-completions," + self.completions_args(**extra)

    def completions_args(self, **extra: object) -> str:
        """Model args of lm-eval's ``--model local-completions`` for this server; ``extra`` adds or replaces keys."""
        args: dict[str, object] = {
            "base_url": self.base_url,
            "model": self.model,
            **({"tokenizer": self.tokenizer} if self.tokenizer else {"tokenizer_backend": "none"}),
            "tokenized_requests": False,
            "num_concurrent": self.num_concurrent,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            **extra,
        }
        return ",".join(f"{key}={value}" for key, value in args.items())
