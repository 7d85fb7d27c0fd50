"""What an OpenAI-compatible engine takes beyond the OpenAI API, declared per engine.

Two things zscot uses when the engine has them:

* continuing the final assistant message, so a chat teacher's stage 2 is Kojima's exact prompt
  (:mod:`fcot_plugin.teacher.chat`): vLLM takes ``continue_final_message`` with ``add_generation_prompt`` off;
  llama.cpp's ``llama-server`` continues a final assistant message by itself (unless started with
  ``--no-prefill-assistant``) and returns the whole message, the part it was given included;
* ``n`` samples of one prompt in one request, so diverse reasoning's D samples share the prompt's prefill and
  prefix cache: vLLM, ``llama-server`` (llama.cpp as ``make teacher`` builds it) and OpenAI answer ``n`` with n
  choices. ``llama-server`` takes ``n`` up to its ``--parallel`` slots and answers a larger one with HTTP 400, so
  its slots (``total_slots`` of its ``/props``) cap ``n``.

``transformers serve`` has neither: it refuses unknown request fields and answers ``n`` with one choice. The
engine is told by the server's ``/v1/models`` (``owned_by`` is ``vllm`` for vLLM, ``llamacpp`` for
``llama-server``) and OpenAI by its host; any other server gets the plain OpenAI API.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

from fcot_plugin.core.numbers import COUNT
from fcot_plugin.teacher.server import models_url


@dataclass(frozen=True)
class ApiFeatures:
    """One engine's extras: ``continue_body`` are the request fields that continue the final assistant message
    (None: it cannot), ``n_samples`` whether it answers ``n`` with n choices, ``max_n`` the largest ``n`` it takes
    (None: no limit known)."""

    engine: str
    continue_body: dict[str, Any] | None = field(default=None)
    n_samples: bool = False
    max_n: int | None = None

    @property
    def continues(self) -> bool:
        return self.continue_body is not None


#: By ``/v1/models``' ``owned_by``.
ENGINES = {
    "vllm": ApiFeatures("vllm", {"continue_final_message": True, "add_generation_prompt": False}, n_samples=True),
    "llamacpp": ApiFeatures("llamacpp", {}, n_samples=True),
}
OPENAI = ApiFeatures("openai", None, n_samples=True)
OPENAI_HOSTS = ("api.openai.com",)


def features_of(base_url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> ApiFeatures:
    """The extras of the server at ``base_url``; a server that does not say which engine it is gets none."""
    if urlparse(base_url).hostname in OPENAI_HOSTS:
        return OPENAI
    owner = served_by(base_url, headers, timeout)
    features = ENGINES.get(owner or "", ApiFeatures(owner or "unknown"))
    if features.engine == "llamacpp":
        features = replace(features, max_n=llamacpp_slots(base_url, headers, timeout))
    return features


def llamacpp_slots(base_url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> int | None:
    """``total_slots`` of ``llama-server``'s ``/props`` (its ``--parallel``), or None where it does not say."""
    root = models_url(base_url).removesuffix("/models").removesuffix("/v1")
    props = _get_json(f"{root}/props", headers, timeout)
    slots = props.get("total_slots") if isinstance(props, dict) else None
    return slots if isinstance(slots, int) and COUNT.holds(slots) else None


def served_by(base_url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> str | None:
    """``owned_by`` of the first model the server lists, or None where it lists none or does not answer."""
    listing = _get_json(models_url(base_url), headers, timeout)
    models = (listing.get("data") or []) if isinstance(listing, dict) else []
    owners = [entry.get("owned_by") for entry in models if isinstance(entry, dict)]
    return str(owners[0]) if owners and owners[0] else None


def _get_json(url: str, headers: dict[str, str] | None, timeout: float) -> Any:
    """The JSON a GET of ``url`` answers, or None where the server does not answer, refuses or sends no JSON."""
    import requests

    try:
        response = requests.get(url, headers=headers or {}, timeout=timeout)
        return response.json() if response.ok else None
    except (requests.exceptions.RequestException, ValueError):
        return None
