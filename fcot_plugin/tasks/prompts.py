"""Every exact format string of the paper, in one place.

Teacher (Kojima et al. two-stage zero-shot-CoT), Fine-tune-CoT student, vanilla student, the
zero-shot baseline and the authors' Few-shot-CoT prompts (shipped in ``data/prompts/``). The lm-eval task
configs, the ``zscot`` model and curation all build their text with these functions, so a format changes in
exactly one place.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

DEFAULT_ANSWER_TRIGGER = "\nTherefore, the answer is"
STUDENT_PROMPT_SUFFIX = " ###"
STUDENT_ANSWER_SEPARATOR = " --> "
# Stage 2 stops at a new question or at a repeat of an answer trigger, so the trigger appended by
# ``zscot`` is always the last one in its response (see fcot_plugin.tasks.answers).
STAGE2_STOP_SEQUENCES = ("\nQ:", "Therefore, the answer", "Therefore, among")


def teacher_stage1(question: str) -> str:
    """Stage 1 of zero-shot-CoT: the prompt that elicits a rationale."""
    return f"Q: {question}\nA: Let's think step by step."


def teacher_stage2(stage1_prompt: str, rationale: str, trigger: str = DEFAULT_ANSWER_TRIGGER) -> str:
    """Stage 2 of zero-shot-CoT: the stage-1 prompt, the rationale and the answer trigger."""
    return f"{stage1_prompt}{rationale}{trigger}"


def student_prompt(question: str) -> str:
    """The prompt a Fine-tune-CoT (or vanilla) student sees: ``{question} ###``."""
    return f"{question}{STUDENT_PROMPT_SUFFIX}"


def student_completion(rationale: str, answer: str) -> str:
    """What a Fine-tune-CoT student learns to write: `` {rationale} --> {answer}`` (EOS is the trainer's)."""
    return f" {rationale.strip()}{STUDENT_ANSWER_SEPARATOR}{answer.strip()}"


def vanilla_completion(answer: str) -> str:
    """What a vanilla (answer-only) student learns to write: `` {answer}``."""
    return f" {answer.strip()}"


def zero_shot_prompt(question: str) -> str:
    """The zero-shot baseline prompt: ``Q: {question}\\n\\nA:``."""
    return f"Q: {question}\n\nA:"


@cache
def few_shot_cot_prompts() -> dict[str, str]:
    """The authors' Few-shot-CoT exemplars (adapted from Wei et al. 2022) by task; 11 tasks, not shuffled objects."""
    path = resources.files("fcot_plugin") / "data" / "prompts" / "few_shot_cot_prompts.json"
    return {task: entry["prompt"] for task, entry in json.loads(path.read_text(encoding="utf-8")).items()}


def few_shot_cot_prompt(task: str, question: str) -> str:
    """The Few-shot-CoT baseline: the exemplars, then ``\\nQ: {question}\\nA:`` (the authors' decoder format)."""
    exemplars = few_shot_cot_prompts().get(task)
    if exemplars is None:
        raise ValueError(
            f"the authors released no Few-shot-CoT prompt for {task!r}; tasks with one: "
            f"{', '.join(few_shot_cot_prompts())}"
        )
    return f"{exemplars}\nQ: {question}\nA:"


def truncate_at_stop(text: str, stop_sequences: tuple[str, ...] = STAGE2_STOP_SEQUENCES) -> str:
    """Cut ``text`` at the first stop sequence, as a generation with these ``until`` strings would."""
    cut = len(text)
    for stop in stop_sequences:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]
