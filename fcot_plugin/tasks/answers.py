"""The paper's answer-cleansing rules: the only place they live.

Ported from the authors' ``src/evaluation/evaluator.py`` (reasoning-teacher): every fcot task's metric,
the curation filter and the report go through :func:`extract_answer` and :func:`is_correct`, so a
student, a teacher and a baseline are always scored by the same rules.

Where the answer is looked for in a text:

* a student output (Fine-tune-CoT format): the first candidate after ``-->``;
* a whole ``zscot`` response (rationale + answer trigger + answer): the first candidate after the last
  answer trigger (the ``zscot`` model appends the trigger and stops the answer before any repeat of
  it, so the last trigger is the one it appended);
* a Few-shot-CoT output: the first candidate after ``The answer is`` (the exemplars' answer phrase), else
  the last candidate (:func:`extract_few_shot_cot_answer`);
* anything else: the last candidate (``no_prefix="last"``, the authors' rule for a missing prefix) or
  the first one (``no_prefix="first"``, the authors' rule for answer-only outputs: vanilla students,
  zero-shot baselines and a bare stage-2 answer).
"""

from __future__ import annotations

import re
from typing import Literal

from fcot_plugin.tasks.answer_types import get_answer_type
from fcot_plugin.tasks.registry import get_task

STUDENT_PREFIX = "-->"
FEW_SHOT_COT_PREFIX = "The answer is"  # how every exemplar of the authors' Few-shot-CoT prompts ends

# Kojima's generic trigger and his typed ones, e.g. " Therefore, the answer (arabic numerals) is" or
# " Therefore, among A through E, the answer is".
ANSWER_TRIGGER_PATTERN = re.compile(r"Therefore, (?:among A through [A-Z], )?the answer(?: \([^)]*\))? is")

NoPrefix = Literal["first", "last"]


def answer_candidates(task: str, text: str) -> list[str]:
    """Every substring of ``text`` that has the task's answer format, in order of appearance."""
    return get_answer_type(get_task(task).answer_type).candidates(text)


def _text_after_prefix(text: str) -> str | None:
    """The text after the student prefix or, failing that, after the last answer trigger."""
    index = text.find(STUDENT_PREFIX)
    if index != -1:
        return text[index + len(STUDENT_PREFIX) :]
    triggers = list(ANSWER_TRIGGER_PATTERN.finditer(text))
    if triggers:
        return text[triggers[-1].end() :]
    return None


def split_rationale(response: str) -> tuple[str, str] | None:
    """Split a ``zscot`` response into (rationale, text after the trigger); ``None`` without a trigger."""
    triggers = list(ANSWER_TRIGGER_PATTERN.finditer(response))
    if not triggers:
        return None
    last = triggers[-1]
    return response[: last.start()], response[last.end() :]


def extract_answer(task: str, text: str | None, *, no_prefix: NoPrefix = "last") -> str | None:
    """The normalised answer in ``text`` under the paper's rules, or ``None`` when there is none.

    ``task`` is an fcot task key such as ``"multiarith"``. Numbers come back without thousands
    separators, yes/no answers lower-cased; letters and last-letter strings as written.
    """
    if not text:
        return None
    after_prefix = _text_after_prefix(text)
    if after_prefix is not None:
        candidates = answer_candidates(task, after_prefix)
        return candidates[0] if candidates else None
    candidates = answer_candidates(task, text)
    if not candidates:
        return None
    return candidates[0] if no_prefix == "first" else candidates[-1]


def extract_few_shot_cot_answer(task: str, text: str | None) -> str | None:
    """The answer of a Few-shot-CoT output: the first candidate after ``The answer is``, else the last one."""
    if not text:
        return None
    index = text.find(FEW_SHOT_COT_PREFIX)
    if index == -1:
        candidates = answer_candidates(task, text)
        return candidates[-1] if candidates else None
    candidates = answer_candidates(task, text[index + len(FEW_SHOT_COT_PREFIX) :])
    return candidates[0] if candidates else None


def normalize_gold(task: str, gold: str | int | float) -> str:
    """A dataset's gold answer in the form :func:`extract_answer` returns.

    Raises ``ValueError`` naming the task when the gold answer does not fit the task's answer type (a numeric
    task's answer that is not a number, a letter outside the choices): that is a broken dataset row, and scoring
    it silently as wrong would hide it.
    """
    try:
        return get_answer_type(get_task(task).answer_type).normalize(str(gold).strip())
    except ValueError as error:
        raise ValueError(f"{task}: gold answer {gold!r} {error}; fix the dataset row") from None


def is_correct(task: str, prediction: str | None, gold: str | int | float) -> bool:
    """Whether ``prediction`` (from :func:`extract_answer`) matches ``gold`` under the task's answer type.

    SingleEq, AddSub and SVAMP (and ``number`` tasks) compare as floats within 1e-6; MultiArith and GSM8K compare
    exact strings, as the authors did (``"39.0"`` is not ``"39"``); ``text`` compares normalised text.
    """
    if prediction is None:
        return False
    return get_answer_type(get_task(task).answer_type).same(prediction, normalize_gold(task, gold))
