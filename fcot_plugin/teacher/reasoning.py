"""Reasoning-model teachers: the ``<think>…</think>`` trace is the rationale, the reply after it the answer.

Chat models such as Qwen3 or DeepSeek-R1 think before they answer, so zero-shot-CoT's second stage is not
needed: ``zscot`` with ``reasoning=true`` sends the task's prompt once (through the chat template with
``--apply_chat_template``), and this module turns the reply into the usual zscot response
``{thinking}{trigger} {answer}``, the answer parsed from the final reply with the task's own rules
(a ``\\boxed{...}`` answer first, else the paper's last-candidate rule). Curation then keeps the thinking as the
rationale, exactly as it keeps a stage-1 rationale.
"""

from __future__ import annotations

import re

from fcot_plugin.tasks.answers import extract_answer

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def split_thinking(reply: str) -> tuple[str, str] | None:
    """``(thinking, final reply)``, or ``None`` when the reply has no closed thinking block.

    Chat templates that open ``<think>`` in the prompt (Qwen3) leave only ``</think>`` in the reply; servers
    that split reasoning out (vLLM's reasoning parser) are rejoined by ``zscot`` before this is called.
    """
    close = reply.rfind(THINK_CLOSE)
    if close == -1:
        return None
    thinking = reply[:close]
    opening = thinking.find(THINK_OPEN)
    if opening != -1:
        thinking = thinking[opening + len(THINK_OPEN) :]
    return thinking.strip(), reply[close + len(THINK_CLOSE) :].strip()


def final_answer(task: str, final: str) -> str | None:
    """The answer in a reasoning model's final reply under ``task``'s rules.

    A final reply is a sentence, not the short stage-2 answer the paper's rules were written for, so the
    answer's own markup is tried first (last ``\\boxed{}``, last ``**bold**``, the text after the last colon)
    and the whole reply last; the first snippet the task's rules find an answer in wins.
    """
    snippets = [*reversed(_BOXED.findall(final)), *reversed(_BOLD.findall(final))]
    if ":" in final:
        snippets.append(final.rsplit(":", 1)[1])
    for snippet in [*snippets, final]:
        answer = extract_answer(task, snippet, no_prefix="last")
        if answer is not None:
            return answer
    return None


def reasoning_response(task: str, reply: str, trigger: str) -> str:
    """The zscot response for one reasoning reply: ``{thinking}{trigger} {answer}``.

    A reply without a thinking block keeps its whole text as the rationale; a thinking block that never closed
    (the budget ran out) has no answer; a reply whose answer cannot be parsed keeps its final text after the
    trigger. Either way the task's filter scores it ``[invalid]`` and curation drops it rather than guessing.
    """
    split = split_thinking(reply)
    if split is None and THINK_OPEN in reply:
        return f"{reply.split(THINK_OPEN, 1)[1].strip()}{trigger} "
    thinking, final = split if split is not None else (reply.strip(), reply)
    answer = final_answer(task, final)
    return f"{thinking}{trigger} {answer if answer is not None else ' '.join(final.split())}"
