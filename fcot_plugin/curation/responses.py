"""Teacher responses to the train questions: from lm-eval samples files of a ``zscot`` teacher run, or the
paper's released text-davinci-002 rationales. Each response is rationale + trigger + answer, as ``zscot`` returns it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import read_json
from fcot_plugin.core.secrets import redact_text
from fcot_plugin.tasks import prompts
from fcot_plugin.tasks.formats import PAPER_SOURCE, PAPER_TEACHER, check_paper_rationales
from fcot_plugin.tasks.names import task_name
from fcot_plugin.tasks.registry import load_rows

_SAMPLES_NAME = re.compile(r"^samples_(?P<task>fcot_.+?)_(?P<timestamp>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")


class CurationError(FcotError):
    """Input that cannot be curated; the message says why and what to do."""


@dataclass
class TeacherResponse:
    """One teacher response to one training question."""

    sample_index: int
    question: str
    answer: str
    response: str  # rationale + trigger + answer, as `--model zscot` returns it
    source: str = "teacher"  # "paper": the paper's released rationale, mixed in (fcot distill --add_paper_rationales)


@dataclass
class TeacherInfo:
    """Where the rationales came from, for the dataset card."""

    name: str
    samples_per_question: int | None = None
    temperature: float | None = None
    files: list[str] = field(default_factory=list)
    accounting: dict[str, Any] | None = None  # requests, tokens, time, cost of the zscot run (teacher.accounting)
    mixed_with: str | None = None  # a second teacher's rationales added to these (the paper's, greedy)
    #: the weights file an embedded teacher was served from (model, file, gguf_sha256, license, source)
    weights: dict[str, Any] | None = None


# ---------------------------------------------------------------------- sources


def paper_responses(task: str, split: str = "train", all_completions: bool = False) -> Iterator[TeacherResponse]:
    """The paper's released completions of ``split`` (greedy ``completion_index`` 0 unless ``all_completions``)."""
    path = check_paper_rationales(task, CurationError)
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["split"] != split or (row["completion_index"] != 0 and not all_completions):
            continue
        # Rebuild the response exactly as `zscot` returns it (the stage-2 answer stops at a repeated trigger).
        answer = prompts.truncate_at_stop(row["answer_completion"])
        response = row["rationale"] + row["answer_trigger"] + answer
        yield TeacherResponse(row["sample_index"], row["question"], row["answer"], response, source=PAPER_SOURCE)


def find_samples_files(samples: str | Path, task: str) -> list[Path]:
    """The lm-eval samples files of ``task``'s teacher runs in a file or an lm-eval output folder."""
    path = Path(samples).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.rglob(f"samples_{task_name(task, 'teacher')}*.jsonl"))
        if not files:
            found = sorted(p.name for p in path.rglob("samples_*.jsonl"))[:5]
            raise CurationError(
                f"no samples of {task_name(task, 'teacher')} or {task_name(task, 'teacher_diverse')} under {path} "
                f"(samples files found: {found or 'none'}); run the teacher with --log_samples first"
            )
    else:
        raise CurationError(f"{path} does not exist; pass an lm-eval output folder or a samples_*.jsonl file")
    if len(files) > 1:  # several teacher runs (or teacher and teacher_diverse): mixing them would double-count
        listing = ", ".join(str(file) for file in files)
        raise CurationError(
            f"{path} holds {len(files)} teacher runs ({listing}); curation reads exactly one: pass one of these "
            f"files as the samples source"
        )
    return files


def samples_responses(files: Iterable[Path], task: str) -> Iterator[TeacherResponse]:
    """Every response of every question in lm-eval samples files (one line per doc and filter)."""
    for file in files:
        try:
            yield from _file_responses(file, task)
        except UnicodeDecodeError as error:
            raise CurationError(
                f"{file} is not UTF-8 text (byte {error.start}); pass the samples_*.jsonl file lm-eval wrote"
            ) from None


def _train_questions(task: str) -> dict[int, str] | None:
    """The train split's question of every sample index (None where it cannot be read here: AQuA's needs the Hub)."""
    try:
        return {int(row["sample_index"]): row["question"] for row in load_rows(task, "train")}
    except Exception:  # noqa: BLE001 - not readable offline: the samples are judged by their task and fields only
        return None


def _file_responses(file: Path, task: str) -> Iterator[TeacherResponse]:
    """One samples file's responses, judged by what it holds: fcot samples of ``task``, on its train split.

    A samples file of a test-split task would leak the test set into training; it is refused whatever its name.
    """
    train = _train_questions(task)
    seen_docs: set[int] = set()
    with open(file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            where = f"{file}:{line_number}"
            try:
                sample = json.loads(line)
            except json.JSONDecodeError as error:
                raise CurationError(
                    f"{where}: not JSON ({error.msg}); pass a samples_*.jsonl file written by lm-eval with "
                    f"--log_samples"
                ) from None
            doc = (sample.get("doc") if isinstance(sample, dict) else None) or {}
            if doc.get("fcot_task") != task:
                raise CurationError(
                    f"{where}: not a sample of an fcot {task} task (doc has fcot_task={doc.get('fcot_task')!r}); "
                    f"produce teacher samples with lm_eval --model zscot ... --tasks {task_name(task, 'teacher')} "
                    f"--log_samples"
                )
            missing = [key for key in ("doc_id", "resps") if key not in sample] + [
                key for key in ("sample_index", "question", "answer") if key not in doc
            ]
            if missing or not isinstance(sample["resps"], list) or not sample["resps"]:
                raise CurationError(
                    f"{where}: an lm-eval sample without {', '.join(missing) or 'responses'}; pass the samples file "
                    f"lm-eval wrote with --log_samples"
                )
            if train is not None and train.get(int(doc["sample_index"])) != doc["question"]:
                raise CurationError(
                    f"{where}: question {doc['sample_index']} is not from {task}'s train split (curation needs "
                    f"teacher rationales on the train split, or the test set leaks into training); run "
                    f"{task_name(task, 'teacher')}, which answers the train split"
                )
            if sample["doc_id"] in seen_docs:  # the same doc again under another filter
                continue
            seen_docs.add(sample["doc_id"])
            for response in sample["resps"][0]:
                yield TeacherResponse(doc["sample_index"], doc["question"], doc["answer"], response)


def teacher_info_from_results(files: list[Path]) -> TeacherInfo:
    """Teacher model, D and T from the results_*.json written beside lm-eval samples files."""
    info = TeacherInfo(name="unknown", files=[str(file) for file in files])
    for file in files:
        match = _SAMPLES_NAME.match(file.name)  # a renamed file: its teacher is recorded as unknown
        results_file = file.parent / f"results_{match['timestamp']}.json" if match else None
        if not results_file or not results_file.is_file():
            continue
        results = read_json(
            results_file, "delete it (the teacher is then recorded as unknown) or run the teacher again"
        )
        config = results.get("config", {})
        info.name = f"{config.get('model')} ({redact_text(str(config.get('model_args')))})"
        task_config = results.get("configs", {}).get(match["task"], {})
        info.samples_per_question = task_config.get("repeats")
        info.temperature = (task_config.get("generation_kwargs") or {}).get("temperature", 0.0)
        info.accounting = config.get("fcot_teacher_accounting")
    return info


# ---------------------------------------------------------------------- formatting


def teacher_responses(
    task: str, samples: str, all_completions: bool = False, question_limit: int | None = None
) -> tuple[list[TeacherResponse], TeacherInfo]:
    """Every teacher response of the first ``question_limit`` train questions (all without a limit)."""
    if samples == PAPER_SOURCE:
        responses = list(paper_responses(task, all_completions=all_completions))
        teacher = TeacherInfo(name=f"{PAPER_TEACHER} (paper release)", samples_per_question=1, temperature=0.0)
    else:
        files = find_samples_files(samples, task)
        responses = list(samples_responses(files, task))
        teacher = teacher_info_from_results(files)
    if question_limit is not None:
        first = set(list(dict.fromkeys(item.sample_index for item in responses))[:question_limit])
        responses = [item for item in responses if item.sample_index in first]
    return responses, teacher
