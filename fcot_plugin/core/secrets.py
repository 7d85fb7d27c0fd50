"""Keep secrets out of everything fcot writes: files, cards, logs, pickles and the terminal.

A user can put a secret in lm-eval model args (``--teacher "pretrained=...,token=hf_..."``), in a recipe
(``hub_token:``), on the command line (``--hub_token X``, even where no such option exists) or in the environment
(``HF_TOKEN``). fcot needs the value to call the Hub or an API, never to show or record it. Two rules, wherever
text leaves the process:

* **by key**: the value under every key that names a secret (:func:`is_secret_key`) becomes ``<redacted>``,
  whatever the value looks like, in every format the libraries print: ``k=v``, ``k: v``, Python reprs
  (``{'api_key': 'sk-1'}``, ``Namespace(hub_token='x')``), JSON (``"token": "abc"``), a command line
  (``--hub_token X``, ``--hub_token=X``) and argparse's list of unused arguments (``['--hub_token', 'X']``);
* **by value**: the exact secrets fcot was given (:func:`secret_values`: the command line and the environment)
  are replaced wherever they appear, under any key or none, once :func:`remember_secrets` (or
  :func:`guard_terminal`) has seen them. Hugging Face (``hf_...``) and OpenAI-style (``sk-...``) keys of a
  credential's length, and ``Bearer`` tokens, are replaced by their shape too.

:func:`guard_terminal`, the first thing the ``fcot`` and ``fcot-eval`` commands do, applies both rules to every log
record and to everything written to ``sys.stdout`` and ``sys.stderr`` (:class:`RedactingStream`).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"

# ---------------------------------------------------------------------------------------------------- secret keys

# token, hub_token, use_auth_token, api_key, openai_api_key, aws_secret_access_key, password, ... (compared in
# snake_case, see is_secret_key)
_SECRET_KEY = re.compile(
    r"^(token|.*(hub|auth|access|hf|api|bearer|refresh|session)_?token|.*api_?key|.*secret(_access)?(_key)?"
    r"|.*password|passwd|.*credentials?|(proxy_)?authori[sz]ation|(set_)?cookie|userinfo)$"
)
#: HTTP headers that always carry a credential; any other whose name holds one of _SECRET_HEADER_WORDS does too
_SECRET_HEADERS = frozenset({"authorization", "proxy_authorization", "cookie", "set_cookie", "x_api_key"})
_SECRET_HEADER_WORDS = ("key", "token", "secret", "auth", "password", "cookie")
#: keys whose value is a mapping of HTTP headers (lm-eval's API models take ``header``)
HEADER_KEYS = frozenset({"header", "headers", "default_headers", "extra_headers", "http_headers"})
#: ``<word>_token`` keys that name a token of a vocabulary or a chat template, not a credential; whatever comes
#: before the word too (``add_bos_token``, ``tokenizer_pad_token``). Any other ``*_token`` is a secret.
VOCABULARY_TOKENS = frozenset(
    {
        "pad",
        "bos",
        "eos",
        "unk",
        "sep",
        "cls",
        "mask",
        "eot",
        "eom",
        "boi",
        "eoi",
        "sentinel",
        "special",
        "additional_special",
        "decoder_start",
        "start",
        "end",
        "stop",
        "prefix",
        "suffix",
        "middle",
        "next",
        "top",
        "first",
        "last",
        "new",
        "placeholder",
        "split",
        "separator",
        "think_start",
        "think_end",
        "image",
        "video",
        "audio",
        "tool_call",
        "end_of_turn",
    }
)
#: ``<word>_key`` keys that name a key of a mapping, a table or a dataset, not a credential (``sort_key``,
#: ``dataset_text_key``). Any other ``*_key`` (``private_key``, ``wandb_key``, ``openai_key``) is a secret.
VOCABULARY_KEYS = frozenset(
    {
        "cache",
        "sort",
        "recipe",
        "primary",
        "foreign",
        "group",
        "dict",
        "hash",
        "lookup",
        "partition",
        "index",
        "id",
        "name",
        "label",
        "text",
        "input",
        "output",
        "target",
        "prompt",
        "completion",
        "question",
        "answer",
        "column",
        "field",
        "metric",
        "result",
        "task",
        "doc",
        "config",
        "sample",
        "message",
        "content",
        "role",
        "dataset",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_key(key: str) -> bool:
    """``token``, ``hub_token``, ``api_key``, ``HF_TOKEN``, ``--hub-token``, ``apiKey``, any other ``*_token`` or
    ``*_key`` ... but not ``max_gen_toks``, ``tokenizer``, ``pad_token``, ``add_bos_token``, ``pad_token_id``,
    ``max_new_tokens`` or ``cache_key`` (:data:`VOCABULARY_TOKENS`, :data:`VOCABULARY_KEYS`).

    A key is compared in ``snake_case`` (``hubToken``, ``HUB-TOKEN`` and ``--hub_token`` are ``hub_token``); of a
    dotted key (``hf_hub_log_args.token``), its last part.
    """
    name = str(key).strip().strip("'\"").lstrip("-")
    name = _CAMEL.sub("_", name).lower().replace("-", "_").rsplit(".", 1)[-1]
    if not name:
        return False
    if _SECRET_KEY.match(name):
        return True
    for suffix, vocabulary in (("_token", VOCABULARY_TOKENS), ("_key", VOCABULARY_KEYS)):
        if name.endswith(suffix) and len(name) > len(suffix):
            words = name[: -len(suffix)].split("_")  # tokenizer_pad_token: its last words name the token
            return not any("_".join(words[start:]) in vocabulary for start in range(len(words)))
    return False


def is_secret_header(name: str) -> bool:
    """``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``X-Api-Key`` and any header whose name holds
    ``key``, ``token``, ``secret`` or ``auth`` (``X-Auth-Foo``, ``X-Goog-Api-Key``, ``Private-Token``)."""
    name = str(name).strip().lower().replace("-", "_")
    return name in _SECRET_HEADERS or any(word in name for word in _SECRET_HEADER_WORDS)


# ---------------------------------------------------------------------------------------------- secrets in URLs

#: ``scheme://userinfo@``: the user name and password of any URL, wherever it sits (model args, logs, repr)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#'\"<>\[\]{}|\\]+)@")
URL_USERINFO_REDACTED = "***"


def redact_urls(text: str) -> str:
    """``text`` with the userinfo of every URL replaced: ``http://alice:pw@host/v1`` -> ``http://***@host/v1``,
    which still tells two servers apart."""
    if "://" not in text:
        return text
    return _URL_USERINFO.sub(lambda match: f"{match['scheme']}{URL_USERINFO_REDACTED}@", text)


def url_secrets(text: str) -> set[str]:
    """The userinfo of every URL in ``text``, whole and as its password alone (raw and percent-decoded)."""
    from urllib.parse import unquote

    found: set[str] = set()
    for match in _URL_USERINFO.finditer(text or ""):
        userinfo = match["userinfo"]
        if userinfo == URL_USERINFO_REDACTED:
            continue
        found.add(userinfo)
        _, colon, password = userinfo.partition(":")
        if colon and password:
            found |= {password, unquote(password)}
    return found


# ---------------------------------------------------------------------------------------------- secrets in text

_QUOTED = r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""
# an unquoted value: up to a comma or a space, less the quotes and brackets that close the text around it
_BARE = r"[^\s,]+?(?=['\")\]}]*(?:[\s,]|$))"
# an unquoted value on a command line, where commas belong to the value
_ARGUMENT = r"(?!-)\S+?(?=['\")\]}]*(?:\s|$))"
_NAME = r"[A-Za-z_][\w.\-]*"
#: (the key and its separator, the value after it), applied in this order
_FORMATS = (
    # a quoted key: Python reprs and JSON ('api_key': 'sk-1', "token": "abc", "token":1); a literal (None, true)
    # is no secret, and a list or a mapping is left whole (its strings are redacted by value); pprint may put the
    # value on the next line
    (
        re.compile(rf"(?P<q>['\"])(?P<key>-{{0,2}}{_NAME})(?P=q)[ \t]*[:=]\s*"),
        re.compile(
            rf"(?P<literal>(?:None|null|True|False|true|false)\b|(?=[\[{{(]))|(?P<quoted>{_QUOTED})|(?P<bare>{_BARE})"
        ),
    ),
    # argparse's list of unused arguments: ['--hub_token', 'X']
    (re.compile(rf"(?P<q>['\"])(?P<key>--?{_NAME})(?P=q)[ \t]*,\s*"), re.compile(rf"(?P<quoted>{_QUOTED})")),
    # a command line: --hub_token X, --hub_token=X (commas are part of the value)
    (
        re.compile(rf"(?<![\w\-])(?P<key>--{_NAME})(?:[ \t]+|=)"),
        re.compile(rf"(?P<quoted>{_QUOTED})|(?P<bare>{_ARGUMENT})"),
    ),
    # key=value (model args, environment, URLs, Namespace(hub_token='x'), -x=X), key: value (YAML, logs)
    (
        re.compile(rf"(?<![\w.\-])(?P<key>-{{0,2}}{_NAME})[ \t]*[:=][ \t]*"),
        re.compile(rf"(?P<quoted>{_QUOTED})|(?P<bare>{_BARE})"),
    ),
)
#: credentials recognisable by their shape, under any key or none
_SHAPES = re.compile(
    r"\bhf_[A-Za-z0-9]{20,}\b|(?<![\w-])sk-[A-Za-z0-9_\-]{20,}|(?<=\bBearer )[\w.~+/=\-]{8,}"
    r"|(?<=\bBasic )[A-Za-z0-9+/=]{6,}|(?<=\bToken )[\w.~+/=\-]{8,}"
)
#: the scheme word before an HTTP credential, whose credential the shapes above redact
_AUTH_SCHEMES = frozenset({"Basic", "Bearer", "Token"})
_ENV_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
#: a value shorter than this, or one of these words, is not replaced wherever it appears (its key still hides it)
_MIN_VALUE_LENGTH = 4
_NOT_SECRETS = frozenset({"true", "false", "none", "null", "yes", "no", REDACTED})
#: a value shorter than this is replaced as a whole word only (``sk-1`` stays in ``task-1``)
_WHOLE_WORD_BELOW = 12
#: the secrets given to this process (remember_secrets), replaced by value in everything redact_text sees
_REMEMBERED: set[str] = set()


def _unquoted(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _metavar(key: str) -> str:
    """argparse's placeholder for an option's value in ``--help`` (``--hub_token HUB_TOKEN``): no secret."""
    return key.lstrip("-").replace("-", "_").upper()


def _secrets_by_key(text: str, prefix: re.Pattern, value_pattern: re.Pattern) -> Iterator[tuple[re.Match, re.Match]]:
    """(key, value) of every value under a secret key in ``text``, in one format; a value is looked at once."""
    position = 0
    while (key := prefix.search(text, position)) is not None:
        position = key.end()
        if not is_secret_key(key["key"]):
            continue  # its value is looked at too: "args: token=x"
        value = value_pattern.match(text, key.end())
        if value is None or value.lastgroup == "literal" or _unquoted(value[0]) in (REDACTED, _metavar(key["key"])):
            continue
        if value.lastgroup == "bare" and value[0] in _AUTH_SCHEMES:  # "Authorization: Basic <shape-redacted>"
            continue
        yield key, value
        position = value.end()


def _redact_keys(text: str) -> str:
    for prefix, value_pattern in _FORMATS:
        pieces, position = [], 0
        for key, value in _secrets_by_key(text, prefix, value_pattern):
            quote = value[0][0] if value.lastgroup == "quoted" else (key.groupdict().get("q") or "")
            pieces += [text[position : value.start()], f"{quote}{REDACTED}{quote}"]
            position = value.end()
        if pieces:
            text = "".join([*pieces, text[position:]])
    return text


def _worth_replacing(value: str) -> bool:
    return len(value) >= _MIN_VALUE_LENGTH and value.lower() not in _NOT_SECRETS and value != REDACTED


@lru_cache(maxsize=8)
def _values_pattern(values: frozenset[str]) -> re.Pattern | None:
    """One pattern for ``values``, longest first; short ones only as whole words."""
    alternatives = [
        re.escape(value) if len(value) >= _WHOLE_WORD_BELOW else rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"
        for value in sorted(values, key=len, reverse=True)
        if _worth_replacing(value)
    ]
    return re.compile("|".join(alternatives)) if alternatives else None


def redact_values(text: str, values: Iterable[str]) -> str:
    """``text`` with each of the exact ``values`` replaced (one of under 12 characters only as a whole word)."""
    pattern = _values_pattern(frozenset(values))
    return pattern.sub(REDACTED, text) if pattern is not None else text


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """``text`` with its secrets replaced: the remembered ones and ``values`` wherever they appear, every value
    under a secret key in any format, and every ``hf_...`` / ``sk-...`` key of a credential's length."""
    if not text:
        return text
    text = redact_values(redact_urls(text), {*_REMEMBERED, *values})
    return _redact_keys(_SHAPES.sub(REDACTED, text))


def redact(value: Any, values: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value with secrets redacted: whole values under secret keys, and inside strings
    (:func:`redact_text`, ``values`` too)."""
    values = frozenset(values)
    if isinstance(value, dict):
        return {
            key: (
                REDACTED
                if is_secret_key(str(key)) and item not in (None, "", False)
                else _redact_headers(item, values)
                if str(key).lower() in HEADER_KEYS
                else redact(item, values)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, values) for item in value]
    if isinstance(value, str):
        return redact_text(value, values)
    return value


def _redact_headers(headers: Any, values: frozenset[str]) -> Any:
    if not isinstance(headers, dict):
        return redact(headers, values)
    return {
        name: REDACTED if is_secret_header(name) and item not in (None, "") else redact(item, values)
        for name, item in headers.items()
    }


def structural_secrets(value: Any, *, secret: bool = False, header: bool = False) -> set[str]:
    """Every secret in a JSON-like value by where it sits: strings under a secret-named key at any depth, values of
    secret headers under ``header``, URL userinfo and ``Basic``/``Bearer`` credentials in any string."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            found |= structural_secrets(
                item,
                secret=secret or is_secret_key(name) or (header and is_secret_header(name)),
                header=name.lower() in HEADER_KEYS,
            )
    elif isinstance(value, list | tuple):
        for item in value:
            found |= structural_secrets(item, secret=secret, header=header)
    elif isinstance(value, str):
        if secret:
            found.add(value)
            scheme, _, credential = value.partition(" ")  # "Basic abc=", "Bearer xyz": the credential alone too
            if credential and scheme.isalpha():
                found.add(credential)
        found |= url_secrets(value)
        found |= set(_SHAPES.findall(value))
    elif secret and isinstance(value, int | float) and not isinstance(value, bool):
        found.add(str(value))
    return {item for item in found if _worth_replacing(item)}


# ------------------------------------------------------------------------------------------ the secrets given


def _text_forms(value: str) -> set[str]:
    """A value as found in text, and unescaped when it was a quoted literal (``'a\\'b'`` -> ``a\\'b``, ``a'b``)."""
    forms = {_unquoted(value)}
    if value[:1] in "'\"" and "\\" in value:
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            literal = None
        if isinstance(literal, str):
            forms.add(literal)
    return forms


def _argv_secrets(argv: Sequence[str]) -> set[str]:
    """Values of secret-named options in ``argv`` (``--hub_token X``, ``--hub_token=X``), known to fcot or not."""
    found = set()
    for index, argument in enumerate(argv):
        if not argument.startswith("-"):
            continue
        name, equals, value = argument.partition("=")
        if not is_secret_key(name):
            continue
        if equals:
            found.add(value)
        elif index + 1 < len(argv) and not argv[index + 1].startswith("--"):
            found.add(argv[index + 1])
    return found


def secret_values(texts: Iterable[str | None] = (), argv: Sequence[str] = ()) -> set[str]:
    """The literal secrets in ``texts`` (model args, in any format), in ``argv`` (secret-named options, and secrets
    inside any argument) and in the environment (``HF_TOKEN``, ``OPENAI_API_KEY``, any secret-named variable),
    to scrub by value; none shorter than 4 characters (the key hides those)."""
    found = {os.environ.get(name, "") for name in _ENV_VARIABLES}
    found.update(
        value
        for name, value in os.environ.items()
        if (is_secret_key(name) or is_secret_env(name)) and not value.startswith(("/", "~"))
    )
    for value in os.environ.values():  # a proxy's or a server's URL with a password, under any name
        found.update(url_secrets(value))
    found.update(_argv_secrets(argv))
    for text in [*texts, *argv]:
        text = text or ""
        for prefix, value_pattern in _FORMATS:
            for _, value in _secrets_by_key(text, prefix, value_pattern):
                found.update(_text_forms(value[0]))
        found.update(_SHAPES.findall(text))
        found.update(url_secrets(text))
        if text.lstrip().startswith("{"):  # a JSON teacher: secrets by where they sit, at any depth
            try:
                found.update(structural_secrets(json.loads(text)))
            except (ValueError, RecursionError):
                pass
    return {value for value in found if _worth_replacing(value)}


def is_secret_env(name: str) -> bool:
    """An environment variable that holds a credential by its name: ``*_TOKEN``, ``*_KEY``, ``*_AUTH``,
    ``*_COOKIE``, ``*PASSWORD*``, ``*SECRET*`` (``TOKENIZERS_PARALLELISM`` is no secret; a path never is)."""
    name = name.upper()
    return name.endswith(("_TOKEN", "_KEY", "_AUTH", "_COOKIE", "_PASSWD", "_CREDENTIALS")) or any(
        word in name for word in ("PASSWORD", "SECRET")
    )


def remember_secrets(values: Iterable[str]) -> None:
    """Replace ``values`` (those of 4 characters or more) in all that :func:`redact_text` sees from now on."""
    _REMEMBERED.update(value for value in values if value and _worth_replacing(value))


def _scrubbed(text: str, suffix: str, secrets: set[str]) -> str:
    if suffix == ".jsonl":  # samples hold the model's own text: only the exact secrets are taken out of them
        return redact_values(text, secrets)
    if suffix == ".json":  # redacted as data, so that it stays JSON
        try:
            data = json.loads(text)
        except ValueError:
            return redact_text(text, secrets)
        cleaned = redact(data, secrets)
        return text if cleaned == data else json.dumps(cleaned, indent=2, ensure_ascii=False) + "\n"
    return redact_text(text, secrets)


def scrub_files(folder: str | Path, secrets: Iterable[str]) -> list[Path]:
    """Replace ``secrets`` in every text file under ``folder`` (lm-eval writes model args verbatim); returns them."""
    from fcot_plugin.core.files import write_text_atomic

    secrets = {secret for secret in secrets if secret} | _REMEMBERED
    changed = []
    root = Path(folder)
    if not secrets or not root.exists():
        return changed
    for path in root.rglob("*") if root.is_dir() else [root]:
        if not path.is_file() or path.suffix not in (".json", ".jsonl", ".md", ".yaml", ".txt", ".log"):
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        cleaned = _scrubbed(text, path.suffix, secrets)
        if cleaned != text:
            write_text_atomic(path, cleaned)
            changed.append(path)
    return changed


# ----------------------------------------------------------------------------------------- logs and the terminal


def install_log_redaction() -> None:
    """Redact secrets in every log record, whichever logger or handler it goes to (idempotent).

    The environment's secrets are remembered too, so a record holding one under no key loses it as well.
    """
    remember_secrets(secret_values())
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


class RedactingStream:
    """A text stream that passes each write through :func:`redact_text` to the stream it wraps.

    Line-buffered, and per write: each ``write`` is redacted on its own and passed on at once, nothing is held
    back (progress bars that redraw a line with ``\\r`` keep working), and the wrapped stream is flushed after
    each line (``\\n`` or ``\\r``). The price: a key and its value split across two writes (``print("token=",
    value)`` writes them apart) escape the key rule; the value rule still catches a remembered secret, which is
    whole in one write unless a caller writes it in pieces. Everything else (``isatty``, ``fileno``, ``flush``,
    ``encoding``, ``buffer``...) is the wrapped stream's; bytes written to ``buffer`` or to the file descriptor
    itself (child processes, C libraries) are not redacted.
    """

    fcot_redacts = True

    def __init__(self, stream: Any) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            return self.wrapped.write(text)
        self.wrapped.write(redact_text(text))
        if "\n" in text or "\r" in text:
            self.wrapped.flush()
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        if name == "wrapped":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def __repr__(self) -> str:
        return f"<RedactingStream {self.wrapped!r}>"


def guard_terminal(argv: Sequence[str] = ()) -> None:
    """Keep secrets off the terminal and out of the logs from now on (idempotent; call it before parsing ``argv``).

    Remembers the secrets in ``argv`` and the environment (:func:`secret_values`), redacts every log record
    (:func:`install_log_redaction`) and wraps ``sys.stdout`` and ``sys.stderr`` in a :class:`RedactingStream`
    (once: a stream already wrapped is left as it is). What prints through them afterwards, argparse's and fcot's
    one-line errors, lm-eval's ``print`` of its results and warnings included, is redacted.
    """
    remember_secrets(secret_values(argv=list(argv)))
    install_log_redaction()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
