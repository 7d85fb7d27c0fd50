"""Keep tokens out of everything fcot writes: files, cards, logs and pickles.

A user can put a token in lm-eval model args (``--teacher "pretrained=...,token=hf_..."``), in a recipe
(``hub_token:``) or in the environment (``HF_TOKEN``). fcot needs the value to call the Hub or an API, never
to record it: every value under a token-like key is replaced by ``<redacted>`` before it reaches a file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"
# token, hub_token, use_auth_token, api_key, openai_api_key, aws_secret_access_key, password, ... (but not
# add_bos_token, pad_token or max_gen_toks: those name tokens of a vocabulary, not credentials)
_SECRET_KEY = re.compile(
    r"^(token|.*(hub|auth|access|hf|api|bearer|refresh|session)[_-]?token|.*api[_-]?key|.*secret(_access)?(_key)?"
    r"|.*password|passwd|.*credentials?)$",
    re.I,
)
# key=value inside lm-eval model args ("pretrained=x,token=hf_abc") or "key: value" in text
_KEY_VALUE = re.compile(r"(?P<key>[A-Za-z0-9_\-]+)(?P<sep>\s*[=:]\s*)(?P<quote>['\"]?)(?P<value>[^,\s'\"}]+)")
# Hugging Face user/org tokens have a recognisable shape; catch them even under an unexpected key.
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_ENV_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")


def is_secret_key(key: str) -> bool:
    """``token``, ``hub_token``, ``api_key`` ... but not ``max_gen_toks``, ``tokenizer`` or ``pad_token_id``."""
    return bool(_SECRET_KEY.match(key.strip()))


def redact_text(text: str) -> str:
    """``text`` with every token-like ``key=value`` value and every ``hf_...`` token replaced."""

    def replace(match: re.Match) -> str:
        if not is_secret_key(match["key"]) or match["value"] == REDACTED:
            return match[0]
        return f"{match['key']}{match['sep']}{match['quote']}{REDACTED}"

    return _HF_TOKEN.sub(REDACTED, _KEY_VALUE.sub(replace, text))


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with secrets redacted: whole values under secret keys, and inside strings."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if is_secret_key(str(key)) and item not in (None, "", False) else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def secret_values(texts: Iterable[str | None] = ()) -> set[str]:
    """The literal secrets in ``texts`` (model args) and in the environment, to scrub from files by value."""
    found = {os.environ[name] for name in _ENV_VARIABLES if len(os.environ.get(name, "")) >= 8}
    for text in texts:
        for match in _KEY_VALUE.finditer(text or ""):
            if is_secret_key(match["key"]) and len(match["value"]) >= 4 and match["value"] != REDACTED:
                found.add(match["value"])
        found.update(_HF_TOKEN.findall(text or ""))
    return found


def scrub_files(folder: str | Path, secrets: Iterable[str]) -> list[Path]:
    """Replace ``secrets`` in every text file under ``folder`` (lm-eval writes model args verbatim); returns them."""
    from fcot_plugin.core.files import write_text_atomic

    secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    changed = []
    root = Path(folder)
    if not secrets or not root.exists():
        return changed
    for path in root.rglob("*") if root.is_dir() else [root]:
        if not path.is_file() or path.suffix not in (".json", ".jsonl", ".md", ".yaml", ".txt", ".log"):
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        cleaned = text
        for secret in secrets:
            cleaned = cleaned.replace(secret, REDACTED)
        cleaned = redact_text(cleaned) if path.suffix != ".jsonl" else cleaned
        if cleaned != text:
            write_text_atomic(path, cleaned)
            changed.append(path)
    return changed


def install_log_redaction() -> None:
    """Redact token-like values in every log record, whichever logger or handler it goes to (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "fcot_redacts", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return record
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    redacting_factory.fcot_redacts = True
    logging.setLogRecordFactory(redacting_factory)
