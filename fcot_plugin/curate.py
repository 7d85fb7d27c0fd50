"""Teacher rationales → Fine-tune-CoT training data (``prompt``/``completion`` rows).

Sources are lm-eval samples files of ``fcot_<task>_teacher*`` runs (all D responses per question) or the
paper's released text-davinci-002 completions shipped with the package (``paper``). Rationales whose
answer is wrong under the paper's rules are dropped, identical rationales of a question are kept once,
and each row becomes ``{question} ###`` → `` {rationale} --> {answer}`` (the trainer adds EOS).
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fcot_plugin import prompts
from fcot_plugin.answers import extract_answer, is_correct, split_rationale
from fcot_plugin.errors import FcotError
from fcot_plugin.formats import FORMATS, PAPER_SOURCE, PAPER_TEACHER, check_paper_rationales
from fcot_plugin.secrets import redact_text
from fcot_plugin.state import read_json
from fcot_plugin.tasks import get_task, load_rows

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


@dataclass
class CurationStats:
    questions: int = 0
    rationales: int = 0
    correct: int = 0
    duplicates: int = 0
    rows: int = 0
    questions_covered: int = 0
    held_out: int = 0  # train questions kept out of training for epoch selection (fcot distill --epochs N)

    @property
    def filter_rate(self) -> float:
        """Share of teacher rationales dropped for a wrong answer."""
        return 1 - self.correct / self.rationales if self.rationales else 0.0


@dataclass
class TeacherInfo:
    """Where the rationales came from, for the dataset card."""

    name: str
    samples_per_question: int | None = None
    temperature: float | None = None
    files: list[str] = field(default_factory=list)
    accounting: dict[str, Any] | None = None  # requests, tokens, time, cost of the zscot run (fcot_plugin.accounting)


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
        yield TeacherResponse(
            row["sample_index"], row["question"], row["answer"], row["rationale"] + row["answer_trigger"] + answer
        )


def find_samples_files(samples: str | Path, task: str) -> list[Path]:
    """The lm-eval samples files of ``task``'s teacher runs in a file or an lm-eval output folder."""
    path = Path(samples).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.rglob(f"samples_fcot_{task}_teacher*.jsonl"))
        if not files:
            found = sorted(p.name for p in path.rglob("samples_*.jsonl"))[:5]
            raise CurationError(
                f"no samples of fcot_{task}_teacher or fcot_{task}_teacher_diverse under {path} "
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
    for file in files:
        match = _SAMPLES_NAME.match(file.name)
        name = match["task"] if match else None
        if name not in (f"fcot_{task}_teacher", f"fcot_{task}_teacher_diverse"):
            raise CurationError(
                f"{file.name} is not a samples file of fcot_{task}_teacher (curation needs teacher rationales on "
                f"the train split; test-split tasks would leak the test set into training)"
            )
    return files


def samples_responses(files: Iterable[Path], task: str) -> Iterator[TeacherResponse]:
    """Every response of every question in lm-eval samples files (one line per doc and filter)."""
    for file in files:
        seen_docs: set[int] = set()
        with open(file, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                try:
                    sample = json.loads(line)
                except json.JSONDecodeError as error:
                    raise CurationError(
                        f"{file}:{line_number}: not JSON ({error.msg}); pass a samples_*.jsonl file written by "
                        f"lm-eval with --log_samples"
                    ) from None
                doc = (sample.get("doc") if isinstance(sample, dict) else None) or {}
                if doc.get("fcot_task") != task:
                    raise CurationError(
                        f"{file}:{line_number}: not a sample of an fcot {task} task (doc has fcot_task="
                        f"{doc.get('fcot_task')!r}); produce teacher samples with "
                        f"lm_eval --model zscot ... --tasks fcot_{task}_teacher --log_samples"
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
        match = _SAMPLES_NAME.match(file.name)
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


def fine_tune_cot_rows(
    task: str, responses: Iterable[TeacherResponse], deduplicate: bool = True
) -> tuple[list[dict[str, Any]], CurationStats]:
    """Keep correct rationales and format them; one row per distinct correct rationale."""
    stats = CurationStats()
    rows, questions, covered, seen = [], set(), set(), set()
    for item in responses:
        questions.add(item.sample_index)
        stats.rationales += 1
        if not is_correct(task, extract_answer(task, item.response), item.answer):
            continue
        stats.correct += 1
        parts = split_rationale(item.response)
        rationale = (parts[0] if parts else item.response).strip()
        if not rationale:
            continue
        key = (item.sample_index, rationale)
        if deduplicate and key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        covered.add(item.sample_index)
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


def curate(
    task: str,
    samples: str,
    format: str = "fcot",
    deduplicate: bool = True,
    all_completions: bool = False,
    question_limit: int | None = None,
    held_out: Collection[int] = (),
) -> CurationResult:
    """Curate rationales of ``task`` from lm-eval samples (path) or from ``paper``.

    ``question_limit`` keeps the first N questions only (quick runs and tests); the questions in ``held_out``
    (sample indices: a validation slice) are dropped before anything else, so no row of them is trained on.
    """
    get_task(task)
    if format not in FORMATS:
        raise CurationError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    responses, teacher = teacher_responses(task, samples, all_completions, question_limit)
    held_out = set(held_out)
    responses = [item for item in responses if item.sample_index not in held_out]
    if format == "vanilla":
        rows, stats = vanilla_rows(task, responses)
    else:
        rows, stats = fine_tune_cot_rows(task, responses, deduplicate=deduplicate)
    stats.held_out = len(held_out)
    if not rows:
        raise CurationError(
            f"{task}: none of {stats.rationales} teacher rationales for {stats.questions} questions had a correct "
            f"answer, so there is nothing to train on and nothing was written. Check the teacher's outputs in "
            f"the samples file (a stronger teacher, more samples with fcot_samples, or answer_trigger=typed help)"
        )
    return CurationResult(task, format, rows, stats, teacher)


def train_question_count(task: str) -> int | None:
    try:
        return len(load_rows(task, "train"))
    except Exception:  # AQuA's train split needs the Hub; the count is only for the card
        return None


def save_dataset(result: CurationResult, out: str | Path, overwrite: bool = False) -> Path:
    """Write the dataset (``datasets`` format, split ``train``) and its card, atomically."""
    import datasets

    from fcot_plugin.hub import dataset_card

    out = Path(out).expanduser()
    if out.exists() and not overwrite:
        raise CurationError(f"{out} already exists; choose another --out or pass --overwrite")
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
        (staging / "fcot_curation.json").write_text(json.dumps(curation_summary(result), indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
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
    return {
        "task": result.task,
        "format": result.format,
        "teacher": asdict(result.teacher),
        "stats": {**asdict(result.stats), "filter_rate": round(result.stats.filter_rate, 4)},
    }
