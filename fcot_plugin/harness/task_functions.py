"""The functions and task class that the YAML configs in ``task_configs/`` point at with ``!function``.

lm-eval imports this module for every fcot task, so it imports nothing of fcot's heavier than the task registry,
prompts and answer rules. The models (``zscot``, ``hf-regroup``) are registered by the ``lm_eval.models`` entry
points (:mod:`fcot_plugin.harness.entry_points`) or by importing :mod:`fcot_plugin.harness.zscot`.

Run-time options, passed with lm-eval's ``--metadata '{...}'`` (JSON):

* ``fcot_data``: load the split from a local file/folder or a Hub dataset id instead of the shipped copy;
* ``fcot_samples`` / ``fcot_temperature``: D rationales per question at temperature T (teacher tasks), or the
  k sampled rationales that self-consistency (``fcot_<task>_sc``) votes over.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

import datasets
from lm_eval.api.task import ConfigurableTask

from fcot_plugin.tasks import prompts
from fcot_plugin.tasks.answers import extract_answer, extract_few_shot_cot_answer, is_correct, normalize_gold
from fcot_plugin.tasks.registry import DatasetError, get_task, load_rows, resolve_task
from fcot_plugin.tasks.sampling import TEMPERATURE, read_sampling, refuse_greedy_repeats

INVALID = "[invalid]"


# ---------------------------------------------------------------------- data


def load_split(
    fcot_task: str, split: str, fcot_data: str | None = None, fcot_task_folder: str | None = None, **_run_metadata: Any
) -> dict[str, Any]:
    """``custom_dataset`` hook: one split of a task as ``{split: datasets.Dataset}``.

    lm-eval passes the whole run metadata (model args, version, ...) as keyword arguments; only ``fcot_data``
    is ours. A task of the user's own names its folder (``fcot_task_folder``), which makes its answer rule known
    to this process. Gold answers are checked here so a broken row fails before any generation.
    """
    if fcot_task_folder is not None:
        resolve_task(fcot_task_folder)
    rows = load_rows(fcot_task, split, source=fcot_data)
    for index, row in enumerate(rows):
        try:
            normalize_gold(fcot_task, row["answer"])
        except ValueError as error:
            raise DatasetError(f"{fcot_data or 'shipped data'} [{split}] row {index}: {error}") from None
    columns = {
        "fcot_task": [fcot_task] * len(rows),
        "sample_index": [int(row["sample_index"]) for row in rows],
        "question": [row["question"] for row in rows],
        "answer": [row["answer"] for row in rows],
    }
    return {split: datasets.Dataset.from_dict(columns)}


# ---------------------------------------------------------------------- prompts


def student_prompt(doc: dict[str, Any]) -> str:
    return prompts.student_prompt(doc["question"])


def teacher_prompt(doc: dict[str, Any]) -> str:
    return prompts.teacher_stage1(doc["question"])


def zero_shot_prompt(doc: dict[str, Any]) -> str:
    return prompts.zero_shot_prompt(doc["question"])


def few_shot_cot_prompt(doc: dict[str, Any]) -> str:
    return prompts.few_shot_cot_prompt(doc["fcot_task"], doc["question"])


# ---------------------------------------------------------------------- filters and metrics


def _extract_all(resps, docs, no_prefix: str) -> list[list[str]]:
    """Map every response of every doc to its extracted answer (``[invalid]`` when there is none)."""
    return [
        [extract_answer(doc["fcot_task"], text, no_prefix=no_prefix) or INVALID for text in doc_resps]
        for doc_resps, doc in zip(resps, docs, strict=True)
    ]


def extract_reasoning_answers(resps, docs) -> list[list[str]]:
    """Filter for outputs with reasoning: after ``-->``/the trigger, else the last candidate."""
    return _extract_all(resps, docs, no_prefix="last")


def extract_direct_answers(resps, docs) -> list[list[str]]:
    """Filter for answer-only outputs (vanilla students, zero-shot): the first candidate."""
    return _extract_all(resps, docs, no_prefix="first")


def extract_few_shot_cot_answers(resps, docs) -> list[list[str]]:
    """Filter for Few-shot-CoT outputs: after ``The answer is``, else the last candidate."""
    return [
        [extract_few_shot_cot_answer(doc["fcot_task"], text) or INVALID for text in doc_resps]
        for doc_resps, doc in zip(resps, docs, strict=True)
    ]


def majority_answer(resps, docs) -> list[list[str]]:
    """Self-consistency's vote: the most frequent parsed answer of a doc's samples (ties: the earliest sample).

    Unlike lm-eval's ``majority_vote`` it ignores samples with no answer (``[invalid]`` only wins when every
    sample is invalid) and counts ``8`` and ``8.0`` as one answer where the task compares numbers as floats.
    """
    votes = []
    for answers, doc in zip(resps, docs, strict=True):
        valid = [answer for answer in answers if answer != INVALID]
        if not valid:
            votes.append([INVALID])
            continue
        as_float = get_task(doc["fcot_task"]).answer_type in ("float", "number")
        counts = Counter(float(answer) if as_float else answer for answer in valid)
        top = max(counts.values())
        votes.append([next(a for a in valid if counts[float(a) if as_float else a] == top)])
    return votes


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """Accuracy of a doc: the mean over its D responses (one response unless the task repeats)."""
    answers = results[0] if isinstance(results[0], list) else results
    scores = [is_correct(doc["fcot_task"], None if answer == INVALID else answer, doc["answer"]) for answer in answers]
    return {"acc": mean(float(score) for score in scores)}


# ---------------------------------------------------------------------- teacher task class


class FcotTeacherTask(ConfigurableTask):
    """A ConfigurableTask whose D (``repeats``) and T come from run metadata, not from package files.

    ``--metadata '{"fcot_samples": 64, "fcot_temperature": 0.7}'`` turns a teacher task into the
    paper's diverse reasoning without writing a YAML.
    """

    min_temperature_exclusive = False  # T = 0 is greedy decoding, valid for one rationale per question

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = {key: value for key, value in (config or {}).items() if key != "class"}
        where = str(config.get("task"))
        samples, temperature = read_sampling(
            config.get("metadata") or {}, where, positive_temperature=self.min_temperature_exclusive
        )
        generation_kwargs = dict(config.get("generation_kwargs") or {})
        if temperature is not None:
            generation_kwargs["temperature"] = temperature
            generation_kwargs["do_sample"] = temperature > 0
        if samples is not None:
            config["repeats"] = samples
        fix = f"set a temperature, e.g. --metadata '{{\"{TEMPERATURE}\": 0.7}}'"
        refuse_greedy_repeats(int(config.get("repeats") or 1), bool(generation_kwargs.get("do_sample")), where, fix)
        config["generation_kwargs"] = generation_kwargs
        super().__init__(config=config)


class FcotSelfConsistencyTask(FcotTeacherTask):
    """Student self-consistency (Wang et al. 2023): k sampled rationales at T > 0, majority vote over the answers.

    k and T are ``fcot_samples`` / ``fcot_temperature`` of ``--metadata`` (defaults in
    ``sc_template_yaml``: k = 8, T = 0.7); T = 0 would make every sample the greedy one, so it is refused.
    """

    min_temperature_exclusive = True
