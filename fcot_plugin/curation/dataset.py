"""Teacher rationales → Fine-tune-CoT training data (``prompt``/``completion`` rows).

Sources are lm-eval samples files of ``fcot_<task>_teacher*`` runs (all D responses per question) or the
paper's released text-davinci-002 completions shipped with the package (``paper``). Rationales whose
answer is wrong under the paper's rules are dropped, identical rationales of a question are kept once,
and each row becomes ``{question} ###`` → `` {rationale} --> {answer}`` (the trainer adds EOS).
"""

from __future__ import annotations

import errno
import json
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fcot_plugin.curation.decisions import Decisions
from fcot_plugin.curation.decontaminate import remove_overlap
from fcot_plugin.curation.responses import (
    CurationError,
    TeacherInfo,
    TeacherResponse,
    paper_responses,
    teacher_responses,
)
from fcot_plugin.tasks import prompts
from fcot_plugin.tasks.answers import extract_answer, is_correct, split_rationale
from fcot_plugin.tasks.formats import FORMATS, PAPER_SOURCE, PAPER_TEACHER
from fcot_plugin.tasks.registry import get_task, load_rows


@dataclass
class CurationStats:
    questions: int = 0
    rationales: int = 0
    correct: int = 0
    duplicates: int = 0
    rows: int = 0
    questions_covered: int = 0
    held_out: int = 0  # train questions kept out of training for epoch selection (fcot distill --epochs N)
    overlap: int = 0  # train questions dropped because the test split asks them too (curation.decontaminate)
    paper_rationales: int = 0  # of ``rationales``: the paper's, mixed in (--add_paper_rationales)
    paper_rows: int = 0  # of ``rows``: from the paper's rationales

    @property
    def filter_rate(self) -> float:
        """Share of teacher rationales dropped for a wrong answer."""
        return 1 - self.correct / self.rationales if self.rationales else 0.0


def fine_tune_cot_rows(
    task: str, responses: Iterable[TeacherResponse], deduplicate: bool = True, decisions: Decisions | None = None
) -> tuple[list[dict[str, Any]], CurationStats]:
    """Keep correct rationales and format them; one row per distinct correct rationale.

    ``decisions``, when given, records every rationale with the reason it was kept or rejected.
    """
    stats = CurationStats()
    decisions = decisions if decisions is not None else Decisions()
    rows, questions, covered, seen = [], set(), set(), set()
    for item in responses:
        questions.add(item.sample_index)
        stats.rationales += 1
        stats.paper_rationales += item.source == PAPER_SOURCE
        predicted = extract_answer(task, item.response)
        if not is_correct(task, predicted, item.answer):
            decisions.add(item, "no_answer" if predicted is None else "wrong_answer", predicted, False)
            continue
        stats.correct += 1
        parts = split_rationale(item.response)
        rationale = (parts[0] if parts else item.response).strip()
        if not rationale:
            decisions.add(item, "no_rationale", predicted, True)
            continue
        key = (item.sample_index, rationale)
        if deduplicate and key in seen:
            stats.duplicates += 1
            decisions.add(item, "duplicate", predicted, True)
            continue
        seen.add(key)
        decisions.add(item, "kept", predicted, True)
        covered.add(item.sample_index)
        stats.paper_rows += item.source == PAPER_SOURCE
        rows.append(
            {
                "prompt": prompts.student_prompt(item.question),
                "completion": prompts.student_completion(rationale, item.answer),
                "sample_index": item.sample_index,
            }
        )
    stats.questions, stats.rows, stats.questions_covered = len(questions), len(rows), len(covered)
    return rows, stats


def vanilla_rows(task: str, responses: Iterable[TeacherResponse]) -> tuple[list[dict[str, Any]], CurationStats]:
    """Answer-only rows with the gold answer, one per question (no teacher filtering: the paper's baseline)."""
    by_question = {item.sample_index: item for item in responses}
    rows = [
        {
            "prompt": prompts.student_prompt(item.question),
            "completion": prompts.vanilla_completion(item.answer),
            "sample_index": index,
        }
        for index, item in sorted(by_question.items())
    ]
    count = len(rows)
    return rows, CurationStats(questions=count, rows=count, questions_covered=count)


# ---------------------------------------------------------------------- the whole step


@dataclass
class CurationResult:
    task: str
    format: str
    rows: list[dict[str, Any]]
    stats: CurationStats
    teacher: TeacherInfo
    decisions: Decisions | None = None  # per rationale, kept or why not (absent for vanilla: no rationale is used)


def curate(
    task: str,
    samples: str,
    format: str = "fcot",
    deduplicate: bool = True,
    all_completions: bool = False,
    question_limit: int | None = None,
    held_out: Collection[int] = (),
    decontaminate: bool = True,
    add_paper: bool = False,
) -> CurationResult:
    """Curate rationales of ``task`` from lm-eval samples (path) or from ``paper``.

    ``question_limit`` keeps the first N questions only (quick runs and tests); the questions in ``held_out``
    (sample indices: a validation slice) are dropped before anything else, so no row of them is trained on.
    ``decontaminate`` drops the train questions the test split asks too (MultiArith's paper split has 5, StrategyQA's
    1); ``False`` reproduces the paper's training sets exactly.
    ``add_paper`` (mixed teachers) puts the paper's released rationale of each of the same questions first; a
    teacher sample identical to it is then counted as a duplicate.
    """
    get_task(task)
    if format not in FORMATS:
        raise CurationError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    responses, teacher = teacher_responses(task, samples, all_completions, question_limit)
    if not responses:
        raise CurationError(
            f"{task}: the samples {samples} hold no teacher responses (the file is empty), so nothing was written; "
            f"pass the samples file of a finished teacher run (lm-eval --log_samples), or run the teacher again"
        )
    if add_paper:
        if samples == PAPER_SOURCE:
            raise CurationError("the samples are the paper's rationales already; there is nothing to mix in")
        questions = {item.sample_index for item in responses}
        paper = [item for item in paper_responses(task) if item.sample_index in questions]
        responses = paper + responses
        teacher.mixed_with = f"{PAPER_TEACHER} (paper release), 1 greedy rationale per question"
    held_out = set(held_out)
    decisions = None if format == "vanilla" else Decisions()
    for item in responses:
        if item.sample_index in held_out and decisions is not None:
            predicted = extract_answer(task, item.response)
            decisions.add(item, "held_out", predicted, is_correct(task, predicted, item.answer))
    responses = [item for item in responses if item.sample_index not in held_out]
    test_questions = [row["question"] for row in load_rows(task, "test")] if decontaminate else []
    responses, overlapping = remove_overlap(responses, test_questions)
    for item in overlapping if decisions is not None else ():
        predicted = extract_answer(task, item.response)
        decisions.add(item, "overlap", predicted, is_correct(task, predicted, item.answer))
    if format == "vanilla":
        rows, stats = vanilla_rows(task, responses)
    else:
        rows, stats = fine_tune_cot_rows(task, responses, deduplicate=deduplicate, decisions=decisions)
    stats.held_out = len(held_out)
    stats.overlap = len({item.sample_index for item in overlapping})  # reason "overlap": asked by the test split
    if not rows and stats.rationales == 0:
        raise CurationError(
            f"{task}: every one of the {len(held_out)} questions with teacher responses is held out for "
            f"validation, so there is nothing to train on; pass a smaller --validation_size"
        )
    if not rows:
        raise CurationError(
            f"{task}: none of {stats.rationales} teacher rationales for {stats.questions} questions had a correct "
            f"answer, so there is nothing to train on and nothing was written. Check the teacher's outputs in "
            f"the samples file (a stronger teacher, more samples with fcot_samples, or answer_trigger=typed help)"
        )
    return CurationResult(task, format, rows, stats, teacher, decisions)


def train_question_count(task: str) -> int | None:
    try:
        return len(load_rows(task, "train"))
    except Exception:  # AQuA's train split needs the Hub; the count is only for the card
        return None


#: What ``save_dataset`` writes: the dataset (``datasets.save_to_disk``), its card and the curation summary
CURATION_SUMMARY = "fcot_curation.json"
MADE_BY = "fcot curate"


def check_out(out: str | Path, overwrite: bool, what: str = "--out") -> Path:
    """Before anything runs: ``out`` is a new folder, or (``overwrite``) one fcot wrote, else one line."""
    from fcot_plugin.core.folders import check_output_folder

    path = check_output_folder(out, what, made_by=MADE_BY)
    if path.exists() and not overwrite:
        raise CurationError(f"{out} already exists; choose another --out or pass --overwrite")
    return path


def save_dataset(
    result: CurationResult,
    out: str | Path,
    overwrite: bool = False,
    before_rename: Callable[[Path], Any] | None = None,
) -> Path:
    """Write the dataset (``datasets`` format, split ``train``) and its card, atomically.

    ``before_rename`` runs on the finished staging folder before it becomes ``out`` (a Hub push): if it fails,
    nothing is left at ``out`` to block the corrected command. ``overwrite`` replaces only the entries fcot wrote
    in ``out`` (its marker's, see :mod:`fcot_plugin.core.folders`); the user's files there stay.
    """
    import datasets

    from fcot_plugin.core.folders import mark_folder, remove_written, written_entries
    from fcot_plugin.hub.cards import dataset_card

    out = check_out(out, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise CurationError(
            f"cannot write {out} ({error.strerror}); pass an --out in a folder you can write"
        ) from None
    try:
        dataset = datasets.Dataset.from_list(result.rows)
        datasets.DatasetDict({"train": dataset}).save_to_disk(str(staging))
        (staging / "README.md").write_text(str(dataset_card(curation_summary(result))), encoding="utf-8")
        (staging / CURATION_SUMMARY).write_text(json.dumps(curation_summary(result), indent=2) + "\n")
        if result.decisions is not None:
            result.decisions.write(staging)
        written = sorted(entry.name for entry in staging.iterdir())
        if before_rename is not None:
            before_rename(staging)
        if out.exists():  # --overwrite (checked): what fcot wrote goes, the user's files stay
            ours = written_entries(out)
            theirs = sorted(name for name in written if name not in ours and (out / name).exists())
            if theirs:  # renaming over them would replace the user's files
                raise CurationError(
                    f"{out} holds {', '.join(theirs)}, not written by fcot, where the dataset goes; "
                    f"move them or pass another --out"
                )
            remove_written(out, ours)
        if out.exists() and not any(out.iterdir()):
            out.rmdir()
        if out.exists():
            for name in written:
                (staging / name).rename(out / name)
        else:
            staging.rename(out)
        mark_folder(out, MADE_BY, written)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise CurationError(
            f"the disk is full writing {out}; nothing was written: free some space and run again"
        ) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def curation_summary(result: CurationResult) -> dict[str, Any]:
    """What the card and ``fcot_curation.json`` say of the data; the teacher with its secrets redacted."""
    from fcot_plugin.core.secrets import redact

    return {
        "task": result.task,
        "format": result.format,
        "teacher": redact(asdict(result.teacher)),
        "stats": {**asdict(result.stats), "filter_rate": round(result.stats.filter_rate, 4)},
    }


def curation_line(result: CurationResult) -> str:
    """The one-line account of a curation, as ``fcot curate`` prints it and ``fcot distill`` logs it."""
    stats = result.stats
    return (
        f"{result.task}: {stats.questions} questions, {stats.rationales} teacher rationales, {stats.correct} correct "
        f"(filter rate {stats.filter_rate:.1%}), {stats.duplicates} duplicates removed, {stats.overlap} rows "
        f"overlapping the test split removed -> {stats.rows} rows covering {stats.questions_covered} questions"
    )
