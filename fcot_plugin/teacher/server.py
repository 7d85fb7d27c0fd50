"""A teacher behind an OpenAI-compatible HTTP server (``vllm serve``, ``transformers serve``, a paid API).

Two jobs, both about saying in one line what went wrong and what to do:

* :func:`check_server` before anything runs: the server answers, and serves the model the run asks for;
* :func:`server_error` when a request fails mid-run (the server died, timed out or answered with an error),
  after lm-eval's own retries (``max_retries``, ``timeout`` in the model args) gave up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fcot_plugin.core.errors import FcotError


class TeacherError(FcotError):
    """The teacher server cannot be used; the message says what to do."""


#: Several servers of one teacher in one ``base_url`` (model args split at commas, so not a comma)
SERVERS_SEPARATOR = "|"


def server_urls(base_url: Any) -> list[str]:
    """The servers a ``base_url`` names: one URL, or several joined by ``|`` (one per node, or per replica)."""
    if not base_url:
        return []
    return [url.strip() for url in str(base_url).split(SERVERS_SEPARATOR) if url.strip()]


def live_servers(urls: list[str], model: str | None, timeout: float = 30) -> list[str]:
    """The servers that answer now; each one that does not is logged and left out, and none at all is the
    first one's one-line error. One server is checked as before: its error ends the run."""
    if len(urls) == 1:
        check_server(urls[0], model, timeout=timeout)
        return urls
    import logging

    live, first_error = [], None
    for url in urls:
        try:
            check_server(url, model, timeout=timeout)
            live.append(url)
        except TeacherError as error:
            logging.getLogger(__name__).warning("teacher server left out: %s", error)
            first_error = first_error or error
    if not live:
        raise first_error
    return live


def models_url(base_url: str) -> str:
    """``.../v1/completions`` or ``.../v1/chat/completions`` -> ``.../v1/models``."""
    root = base_url.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
            break
    return f"{root}/models"


def check_server(base_url: str, model: str | None, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
    """Fail with one line unless ``base_url``'s server answers and lists ``model`` among the models it serves.

    A server without ``/v1/models`` (or one that wants other credentials for it) is not judged here; its
    first request is.
    """
    import requests

    url = models_url(base_url)
    try:
        response = requests.get(url, headers=headers or {}, timeout=timeout)
    except requests.exceptions.Timeout:
        raise TeacherError(
            f"the teacher server at {base_url} did not answer within {timeout:g} s; check that it is healthy, "
            "or raise timeout=... in the model args"
        ) from None
    except requests.exceptions.RequestException as error:
        raise TeacherError(
            f"cannot reach the teacher server at {base_url} ({type(error).__name__}); start it first "
            "(e.g. `transformers serve <model> --port 8000`, or `vllm serve <model>` in its own environment) "
            "or fix base_url in the model args"
        ) from None
    if not response.ok:
        return
    try:
        served = [entry["id"] for entry in response.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    if served and model is not None and model not in served:
        raise TeacherError(
            f"the server at {base_url} serves {', '.join(repr(name) for name in served)}, not {model!r}; "
            "pass model=<one of those> in the model args, or start the server with that model"
        )


def is_server_error(error: BaseException) -> bool:
    """Whether ``error`` came from talking to the server (not a bug in fcot or lm-eval)."""
    import requests

    try:
        import aiohttp

        client_errors: tuple[type[BaseException], ...] = (aiohttp.ClientError,)
    except ImportError:  # pragma: no cover - aiohttp ships with lm-eval's API models
        client_errors = ()
    return isinstance(error, requests.exceptions.RequestException | asyncio.TimeoutError | TimeoutError) or (
        bool(client_errors) and isinstance(error, client_errors)
    )


def malformed_answer(error: BaseException, base_url: str) -> TeacherError | None:
    """One line for a server answer without the fields of an OpenAI-compatible one (lm-eval's ``KeyError:
    'choices'``), naming the server (its URL's userinfo redacted) and what was missing; None for other errors."""
    from fcot_plugin.core.secrets import redact_text

    if isinstance(error, KeyError):
        missing = f"the field {error.args[0]!r}" if error.args else "an expected field"
    elif isinstance(error, TypeError | IndexError | AttributeError):
        missing = f"the fields of a completion ({type(error).__name__}: {' '.join(str(error).split())[:120]})"
    else:
        return None
    return TeacherError(
        redact_text(
            f"the teacher server at {base_url} answered without {missing}; it does not speak the OpenAI completions "
            "API at that URL: check base_url (e.g. http://host:8000/v1/completions, or /v1/chat/completions with "
            "base=local-chat-completions) and the server's log"
        )
    )


def server_error(error: BaseException, base_url: str, settings: dict[str, Any], kept: str) -> TeacherError:
    """One line for a request that failed after lm-eval's retries; ``kept`` says where finished work is."""
    import requests

    status = getattr(getattr(error, "response", None), "status_code", None) or getattr(error, "status", None)
    if isinstance(error, requests.exceptions.Timeout | asyncio.TimeoutError | TimeoutError):
        what = f"timed out (timeout={settings.get('timeout', 300)} s)"
        fix = "raise timeout=... in the model args, lower max_gen_toks, or give the server more capacity"
    elif status is not None:
        body = getattr(getattr(error, "response", None), "text", "") or getattr(error, "message", "")
        what = f"answered HTTP {status}" + (f" ({' '.join(str(body).split())[:160]})" if body else "")
        fix = (
            "check the model args (a server that takes one text prompt per request needs batch_size=1 and "
            "tokenized_requests=False)"
            if status == 400
            else "fix the request or the server (see its log)"
        )
    else:
        what = f"stopped answering ({type(error).__name__})"
        fix = "restart the server"
    from fcot_plugin.core.secrets import redact_urls

    retries = settings.get("max_retries", 3)
    return TeacherError(
        f"the teacher server at {redact_urls(base_url)} {what} after {retries} tries; {fix}, then {kept}"
    )
