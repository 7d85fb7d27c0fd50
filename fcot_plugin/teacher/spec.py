"""The teacher of ``fcot distill --teacher``, parsed once: the paper's released rationales, or lm-eval model args
for the ``zscot`` wrapper (``pretrained=...``, ``base=local-completions,base_url=...``).

Which arguments change the text a teacher writes, and which only change how requests travel, is decided here for
the stage fingerprint and for the ``zscot`` response cache alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.numbers import COUNT, NON_NEGATIVE, POSITIVE, SEED, Range
from fcot_plugin.core.secrets import (
    HEADER_KEYS,
    is_secret_key,
    redact_text,
    redact_urls,
    remember_secrets,
    structural_secrets,
)
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
    "base_url",
    "batch_size",
    "max_batch_size",
    "device",
    "num_concurrent",
    "max_retries",
    "timeout",
    "verify_certificate",
    "ca_cert_path",
    "header",
    "tokenizer_backend",
    "parallelize",
    "device_map",
    "segment_tokens",
    "n_per_request",
}


#: The type (and range) of each teacher argument fcot or lm-eval reads as a number, a flag or a name: a JSON teacher
#: (or ``k=v`` args, read as lm-eval reads them) with another type is one line naming the key, before anything runs.
ARGUMENT_TYPES: dict[str, tuple[tuple[type, ...], Range | None]] = {
    "base": ((str,), None),
    "answer_trigger": ((str,), None),
    "answer_max_gen_toks": ((int,), COUNT),
    "reasoning": ((bool, str), None),
    "cache": ((str,), None),
    "accounting": ((str,), None),
    "price_per_million_prompt": ((int, float), NON_NEGATIVE),
    "price_per_million_completion": ((int, float), NON_NEGATIVE),
    "pretrained": ((str,), None),
    "model": ((str,), None),
    "tokenizer": ((str,), None),
    "base_url": ((str,), None),
    "num_concurrent": ((int,), COUNT),
    "max_retries": ((int,), COUNT),
    "max_gen_toks": ((int,), COUNT),
    "max_length": ((int,), COUNT),
    "seed": ((int,), SEED),
    "timeout": ((int, float), POSITIVE),
    "batch_size": ((int, str), COUNT),
    "max_batch_size": ((int,), COUNT),
    "header": ((dict,), None),
}
_TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false", dict: "a JSON object"}


def lm_eval_value(text: str) -> Any:
    """A ``k=v`` value as lm-eval's ``handle_arg_string`` reads it: a quoted string, a flag, None, int, float."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lower = text.lower()
    if lower in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[lower]
    if text.lstrip("+-").isdigit() and text not in ("", "+", "-"):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_non_finite(item) for item in value)
    return False


def check_argument_types(arguments: dict[str, Any], what: str, *, as_text: bool) -> None:
    """Each argument of :data:`ARGUMENT_TYPES` of its type and in its range, every number finite (``as_text``:
    ``k=v`` values, read as lm-eval reads them); otherwise one line naming the key and what it takes."""
    for key, given in arguments.items():
        value = lm_eval_value(given) if as_text and isinstance(given, str) else given
        if value is None:
            continue
        shown = redact_text(repr(value)) if not isinstance(value, dict) else "{...}"
        if _non_finite(value):
            raise FcotError(f"{what}: {key!r} must be a finite number, got {shown}")
        if key not in ARGUMENT_TYPES:
            continue
        kinds, declared = ARGUMENT_TYPES[key]
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if not isinstance(value, kinds) or wrong_bool:
            expected = " or ".join(_TYPE_NAMES.get(kind, kind.__name__) for kind in kinds)
            raise FcotError(f"{what}: {key!r} must be {expected}, got {shown} ({type(value).__name__})")
        if declared is not None and isinstance(value, int | float) and not isinstance(value, bool):
            declared.check(f"{what} {key}", value)


def _without_secrets(value: Any) -> Any:
    """``value`` less what is secret by structure (secret keys and headers at any depth, URL userinfo)."""
    if isinstance(value, dict):
        return {
            key: _without_secrets(item)
            for key, item in value.items()
            if not is_secret_key(str(key)) and str(key).lower() not in HEADER_KEYS
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return redact_urls(value) if isinstance(value, str) else value


def text_arguments(arguments: dict[str, Any]) -> dict[str, str]:
    """The arguments that change a teacher's text (:func:`changes_text`), as the response cache keys them; a
    secret never reaches a key, even one nested in a JSON value."""
    return {key: str(_without_secrets(value)) for key, value in arguments.items() if changes_text(key)}


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
        except RecursionError:
            raise FcotError(f"{what} is nested too deeply to be model arguments; pass a flat JSON object") from None
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
        remember_secrets(structural_secrets(arguments))  # never shown nor written from now on, under any key
        if arguments and any(not isinstance(key, str) or not key for key in arguments):
            raise FcotError(f"{what}: every model argument needs a name")
        if not arguments:
            raise FcotError(f"{what} is empty: pass 'paper' or lm-eval model args such as 'pretrained=<model>'")
        check_argument_types(arguments, what, as_text=not text.startswith("{"))
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
        return ",".join(f"{key}={value}" for key, value in text_arguments(self.arguments).items())
