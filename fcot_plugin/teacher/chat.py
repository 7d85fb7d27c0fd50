"""Chat teachers: Kojima's two stages as chat messages.

Stage 1 is the task's prompt as one user message (what lm-eval's ``--apply_chat_template`` makes of a zero-shot
task). Stage 2 is ``{stage-1 prompt}{rationale}{trigger}`` continued by the answer, which a completions endpoint
takes as text; a chat endpoint takes messages and opens a new assistant turn, so stage 2 is asked one of two ways:

* ``continue`` (:data:`CONTINUE`): the rationale and the trigger are the assistant's message, and the engine
  continues that message instead of opening a new one (vLLM's ``continue_final_message``). The chat template then
  renders exactly Kojima's stage-2 text inside the assistant's turn. An engine that returns the whole message has
  the part it was sent removed.
* ``follow_up`` (:data:`FOLLOW_UP`): the rationale is the assistant's message and the trigger a new user turn; the
  reply is the answer. A reply that restates the trigger has it removed, and the reply is cut at the stage-2 stop
  sequences here (sent to the server, a stop at the restated trigger would end the reply before the answer).

Which one an engine takes is declared in :mod:`fcot_plugin.teacher.api_features`.
"""

from __future__ import annotations

import json
from typing import Any

from fcot_plugin.tasks.prompts import truncate_at_stop

AUTO = "auto"
CONTINUE = "continue"
FOLLOW_UP = "follow_up"
STAGE2_MODES = (AUTO, CONTINUE, FOLLOW_UP)
#: What a follow-up stage 2 sends as ``until``: a new question only (see the module docstring).
FOLLOW_UP_STOP = ("\nQ:",)


def check_stage2_mode(mode: str) -> str:
    """``stage2_chat`` as given, checked."""
    mode = str(mode).strip().lower()
    if mode not in STAGE2_MODES:
        raise ValueError(f"stage2_chat={mode!r}: use one of {', '.join(STAGE2_MODES)}")
    return mode


def as_messages(prompt: str) -> list[dict[str, Any]]:
    """A prompt as chat messages: the JSON lm-eval makes of a chat (``--apply_chat_template``), or a plain prompt
    as one user message."""
    if prompt.startswith("["):
        try:
            messages = json.loads(prompt)
        except ValueError:
            messages = None
        if isinstance(messages, list) and all(isinstance(m, dict) and "role" in m for m in messages):
            return messages
    return [{"role": "user", "content": prompt}]


def messages_text(messages: list[dict[str, Any]]) -> str:
    """Messages as the JSON text lm-eval's chat models take (and the cache keys on)."""
    return json.dumps(messages, ensure_ascii=False)


def stage2_messages(messages: list[dict[str, Any]], rationale: str, trigger: str, mode: str) -> list[dict[str, Any]]:
    """The stage-2 conversation after the stage-1 ``messages`` and the ``rationale`` they got."""
    if mode == CONTINUE:
        return [*messages, {"role": "assistant", "content": f"{rationale}{trigger}"}]
    if mode == FOLLOW_UP:
        return [*messages, {"role": "assistant", "content": rationale}, {"role": "user", "content": trigger.strip()}]
    raise ValueError(f"no stage-2 chat mode {mode!r}")


def stage2_kwargs(answer_kwargs: dict[str, Any], mode: str, continue_body: dict[str, Any]) -> dict[str, Any]:
    """The stage-2 generation kwargs: ``continue_body`` (the engine's own request fields) when continuing, a
    new-question stop only for a follow-up turn."""
    if mode == CONTINUE:
        return {**answer_kwargs, **continue_body}
    return {**answer_kwargs, "until": list(FOLLOW_UP_STOP)}


def continued_answer(reply: str, message: str) -> str:
    """A continued assistant message as its continuation: engines that return the whole message (llama.cpp's
    ``llama-server``) give the ``message`` they were sent back in front of it."""
    return reply[len(message) :] if reply.startswith(message) else reply


def follow_up_answer(reply: str, trigger: str) -> str:
    """A follow-up turn's reply as the text after the trigger: a restated trigger removed, cut at the stage-2 stop
    sequences, one space before it (``{rationale}{trigger} {answer}``)."""
    text = reply.strip()
    head = trigger.strip()
    if text.startswith(head):
        text = text[len(head) :]
    text = truncate_at_stop(text).strip()
    return f" {text}" if text else ""
