"""The teacher of ``fcot distill --teacher``, parsed once: the paper's released rationales, or lm-eval model args
for the ``zscot`` wrapper (``pretrained=...``, ``base=local-completions,base_url=...``).

Which arguments change the text a teacher writes, and which only change how requests travel, is decided here for
the stage fingerprint and for the ``zscot`` response cache alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.secrets import is_secret_key, redact_text
from fcot_plugin.tasks.formats import PAPER_SOURCE

#: zscot's own arguments; every other one goes to its base model.
WRAPPER_KEYS = (
    "base",
    "answer_trigger",
    "answer_max_gen_toks",
    "reasoning",
    "stage2_chat",
    "n_per_request",
    "apply_chat_template",
    "cache",
    "accounting",
    "price_per_million_prompt",
    "price_per_million_completion",
)
#: zscot arguments that record a run (where its cache and accounting go, what a token costs), not shape its text.
BOOKKEEPING_ARGS = {"cache", "accounting", "price_per_million_prompt", "price_per_million_completion"}
#: Arguments that change how requests travel, not the text that comes back: a cache made with one value serves
#: another (a restarted server on another port, more concurrency, a longer timeout, D samples in one request).
OPERATIONAL_ARGS = {
    "base_url", "batch_size", "max_batch_size", "device", "num_concurrent", "max_retries", "timeout",
    "verify_certificate", "ca_cert_path", "header", "tokenizer_backend", "parallelize", "device_map",
    "segment_tokens", "n_per_request",
}  # fmt: skip


def changes_text(key: str) -> bool:
    """Whether a zscot model argument can change the text the teacher writes: not an operational one (URL,
    concurrency, retries, timeouts, batch sizes), not bookkeeping (cache, accounting, prices), not a secret. The
    one rule behind the teacher stage's fingerprint and the response cache's teacher key."""
    return key not in OPERATIONAL_ARGS and key not in BOOKKEEPING_ARGS and not is_secret_key(key)


def parse_model_args(text: str, what: str) -> dict[str, Any]:
    """lm-eval model args as lm-eval's CLI takes them: ``key=value,key=value`` (split at every comma), or a JSON
    object, whose values may hold commas (``{"answer_trigger": "Therefore, among A through E, the answer is"}``).
    A bad part is one line naming it."""
    if text.lstrip().startswith("{"):
        try:
            arguments = json.loads(text)
        except json.JSONDecodeError as error:
            raise FcotError(f"{what} is not a valid JSON object ({error.msg} at character {error.pos})") from None
        if not isinstance(arguments, dict):
            raise FcotError(f"{what} must be a JSON object of model arguments")
        return arguments
    pairs: dict[str, Any] = {}
    for part in text.split(","):
        if not part:
            continue
        if "=" not in part:
            raise FcotError(
                f"{what} {redact_text(text)!r}: {redact_text(part)!r} is not key=value; lm-eval model args look "
                f"like 'pretrained=<model>,dtype=bfloat16'"
            )
        key, value = part.split("=", 1)
        pairs[key.strip()] = value
    return pairs


@dataclass(frozen=True)
class TeacherSpec:
    """``--teacher`` as given (``text``) and, for a model teacher, its arguments in order."""

    text: str
    arguments: dict[str, Any]

    @classmethod
    def parse(cls, text: str, what: str = "--teacher") -> TeacherSpec:
        text = text.strip()
        if text == PAPER_SOURCE:
            return cls(text, {})
        arguments = parse_model_args(text, what)
        if arguments and any(not isinstance(key, str) or not key for key in arguments):
            raise FcotError(f"{what}: every model argument needs a name")
        if not arguments:
            raise FcotError(f"{what} is empty: pass 'paper' or lm-eval model args such as 'pretrained=<model>'")
        return cls(text, arguments)

    @property
    def is_paper(self) -> bool:
        """The paper's released text-davinci-002 rationales: nothing is generated."""
        return self.text == PAPER_SOURCE

    @property
    def served(self) -> bool:
        """Behind an OpenAI-compatible server (one prompt per request)."""
        return "base_url" in self.arguments

    @property
    def is_json(self) -> bool:
        return self.text.startswith("{")

    def model_args(self, **defaults: str) -> str | dict[str, Any]:
        """The model args for ``--model zscot`` (a dict where they were given as JSON), with ``defaults`` added
        where the user set none."""
        if self.is_json:
            return {**defaults, **self.arguments}
        extra = [f"{key}={value}" for key, value in defaults.items() if key not in self.arguments]
        return ",".join([self.text, *extra]) if extra else self.text

    def identity(self) -> str:
        """What decides the teacher's text: every argument but the operational ones, bookkeeping and secrets.

        A new URL, port, concurrency, timeout or token is the same teacher; its finished responses stay valid.
        """
        if self.is_paper:
            return PAPER_SOURCE
        return ",".join(f"{key}={value}" for key, value in self.arguments.items() if changes_text(key))
