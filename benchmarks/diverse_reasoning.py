"""Diverse reasoning with a live teacher: the student's accuracy against D, rationales per question, per task.

    python benchmarks/diverse_reasoning.py --teacher Qwen/Qwen2.5-Coder-1.5B-Instruct --teacher_engine llamacpp \\
        --tasks date_understanding,multiarith --diverse 1,4,8

One ``fcot distill`` command per cell, run one after another in ``<runs_dir>/<task>/d<D>`` (and ``d<D>-mixed``):
the live teacher samples D rationales per train question at T=0.7, the embedded SmolLM2-135M student trains with
the recipe of the published paper table for that task (epochs, validation slice, learning rate, seed and batches
read from ``benchmarks/results/paper_table.json``) and chooses its epoch on the validation slice, never on test.
Cells per task, in order: each D up to ``--mixed_diverse``, then the mixed row (the paper's released rationales
plus the live teacher's ``--mixed_diverse`` samples, ``fcot distill --add_paper_rationales``); the larger D of
every task come after all tasks' first cells, so a budget that runs out leaves whole tasks, not half of each.

Every cell samples at the same T, so D=1 is the first of the D=4 samples: before a cell starts, its teacher ledger
is seeded with every response the task's earlier cells paid for (``fcot_plugin.teacher.cache.copy_entries``), and
its teacher generates only the new samples. The cells' accounting records show it (``teacher.reused``).

Finished cells are read from their run folders, never run again; ``--budget_hours`` stops starting new cells once
the cells' recorded time reaches it, and the cells not started are reported as not run. Writes ``--output``
``.json`` (one row per cell), ``.md`` (the table and the goals, met or missed and by how much) and ``.png``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fcot_plugin.core.files import result_file

sys.path.insert(0, str(Path(__file__).parent))  # paper_table.py is a sibling script, not a package
from paper_table import (  # noqa: E402
    GOAL_STUDENT,
    GOAL_TASKS,
    PAPER_TASKS,
    RESULTS,
    finished,
    paper_value,
    recorded_machine,
    student_name,
)

PUBLISHED_TABLE = RESULTS / "paper_table.json"
CANDIDATE_TASKS = ("date_understanding", "svamp", "single_eq", "multiarith", "coin_flip")
TEMPERATURE = 0.7  # the paper's diverse-reasoning T, for every cell (D=1 included: it is the first of the samples)
# What a cell's row must hold, whatever happened to it (the test checks every one).
FIELDS = (
    "cell",
    "task",
    "teacher",
    "teacher_gguf_sha256",
    "engine",
    "diverse",
    "mixed",
    "temperature",
    "status",
    "command",
    "run_dir",
    "teacher_accuracy",
    "teacher_cache",
    "rationales",
    "kept",
    "rejected",
    "duplicates",
    "paper_rationales",
    "training_rows",
    "training_tokens",
    "epochs",
    "epoch",
    "validation_best",
    "student_accuracy",
    "n",
    "ci95",
    "seconds",
    "machine",
    "device",
    "recipe",
)


def engines() -> tuple[str, ...]:
    """The teacher engines ``fcot distill --teacher_engine`` offers; the one place this script imports the engine
    module (it moves between packages as the serving code grows)."""
    from fcot_plugin.serving.served import ENGINES

    return ENGINES


@dataclass
class CampaignArguments:
    teacher: str = field(
        default="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        metadata={"help": "fcot distill --teacher: the model the engine serves (a folder or Hub id)"},
    )
    teacher_engine: str = field(default="llamacpp", metadata={"help": "fcot distill --teacher_engine"})
    tasks: str = field(
        default="date_understanding,multiarith",
        metadata={
            "help": "comma-separated tasks, in the order their cells run (each needs a row in the published "
            f"table and the paper's released rationales): from {', '.join(CANDIDATE_TASKS)}"
        },
    )
    diverse: str = field(default="1,4,8", metadata={"help": "comma-separated D, rationales per question"})
    mixed_diverse: int = field(
        default=4,
        metadata={"help": "D of the mixed row (paper rationales + live samples); the D up to it run first, per task"},
    )
    mixed: bool = field(default=True, metadata={"help": "run the mixed row of each task"})
    budget_hours: float = field(
        default=8.0,
        metadata={"help": "start no new cell once the cells' recorded time (teacher, training, scoring) reaches it"},
    )
    max_cells: int | None = field(default=None, metadata={"help": "run at most the first N cells in order"})
    student: str = field(default="smollm2-135m", metadata={"help": "fcot distill --student"})
    epochs: float | None = field(
        default=None, metadata={"help": "override the published recipe's epochs (default: the task's own)"}
    )
    validation_size: float | None = field(
        default=None, metadata={"help": "override the published recipe's validation slice (default: the task's own)"}
    )
    train_limit: int | None = field(default=None, metadata={"help": "fcot distill --train_limit (tests)"})
    eval_limit: int | None = field(default=None, metadata={"help": "fcot distill --eval_limit (tests)"})
    teacher_max_gen_toks: int | None = field(default=None, metadata={"help": "fcot distill --teacher_max_gen_toks"})
    max_gen_toks: int | None = field(default=None, metadata={"help": "fcot distill --max_gen_toks (tests)"})
    eval_batch_size: int | None = field(default=None, metadata={"help": "fcot distill --eval_batch_size"})
    precision: str = field(default="auto", metadata={"help": "fcot distill --precision"})
    estimate_tokens_per_second: float | None = field(
        default=None,
        metadata={
            "help": "run nothing: print each cell's estimated seconds for a teacher of this many completion "
            "tokens/s (with --estimate_rationale_tokens and --estimate_teacher_accuracy) and which fit"
        },
    )
    estimate_rationale_tokens: float = field(default=100.0, metadata={"help": "estimate: mean rationale tokens"})
    estimate_teacher_accuracy: float = field(default=0.5, metadata={"help": "estimate: share of correct samples"})
    runs_dir: str = field(default="runs/diverse_reasoning", metadata={"help": "cells run in <runs_dir>/<task>/"})
    output: str = field(default=str(RESULTS / "diverse_reasoning"), metadata={"help": "results path, no suffix"})

    def __post_init__(self) -> None:
        from fcot_plugin.core.errors import FcotError
        from fcot_plugin.core.precision import normalise
        from fcot_plugin.tasks.formats import check_paper_rationales
        from fcot_plugin.tasks.registry import TASKS

        self.task_list = [task.strip() for task in self.tasks.split(",") if task.strip()]
        if not self.task_list:
            raise FcotError("--tasks is empty; name at least one task, e.g. --tasks date_understanding")
        for task in self.task_list:
            if task not in TASKS:
                raise FcotError(f"unknown task {task!r} in --tasks; choose from: {', '.join(CANDIDATE_TASKS)}")
            check_paper_rationales(task)
        try:
            self.diverse_list = sorted({int(value) for value in self.diverse.split(",") if value.strip()})
        except ValueError:
            raise FcotError(f"--diverse {self.diverse!r}: give whole numbers, e.g. --diverse 1,4,8") from None
        if not self.diverse_list or self.diverse_list[0] < 1:
            raise FcotError(f"--diverse {self.diverse!r}: give numbers >= 1, e.g. --diverse 1,4,8")
        if self.mixed and self.mixed_diverse not in self.diverse_list:
            raise FcotError(
                f"--mixed_diverse {self.mixed_diverse} is not among --diverse {self.diverse}: the mixed "
                "row reuses that cell's samples; add it or pass --mixed false"
            )
        if self.teacher_engine not in engines():
            raise FcotError(
                f"unknown --teacher_engine {self.teacher_engine!r}; this fcot offers: {', '.join(engines())}"
            )
        if self.budget_hours <= 0:
            raise FcotError(f"--budget_hours must be > 0, got {self.budget_hours}")
        if self.max_cells is not None and self.max_cells < 1:
            raise FcotError(f"--max_cells must be >= 1, got {self.max_cells}")
        if self.estimate_tokens_per_second is not None and self.estimate_tokens_per_second <= 0:
            raise FcotError(f"--estimate_tokens_per_second must be > 0, got {self.estimate_tokens_per_second}")
        self.precision = normalise(self.precision)
        for task in self.task_list:
            published_recipe(task)  # a task missing from the published table fails here, before any cell


# ---------------------------------------------------------------------- the cells


@dataclass(frozen=True)
class Cell:
    task: str
    diverse: int
    mixed: bool = False

    @property
    def name(self) -> str:
        return f"{self.task}/d{self.diverse}{'-mixed' * self.mixed}"


def plan(args: CampaignArguments) -> list[Cell]:
    """Every cell in the order it runs: per task the D up to the mixed row's and the mixed row, then the larger D."""
    first = [d for d in args.diverse_list if not args.mixed or d <= args.mixed_diverse]
    later = [d for d in args.diverse_list if d not in first]
    cells = []
    for task in args.task_list:
        cells += [Cell(task, d) for d in first]
        cells += [Cell(task, args.mixed_diverse, mixed=True)] if args.mixed else []
    cells += [Cell(task, d) for task in args.task_list for d in later]
    return cells[: args.max_cells] if args.max_cells else cells


def published_recipe(task: str) -> dict[str, Any]:
    """The student's recipe for ``task`` exactly as the published paper table trained it (its run's record)."""
    from fcot_plugin.core.errors import FcotError
    from fcot_plugin.core.files import read_json

    table = read_json(PUBLISHED_TABLE, "restore it from the repository")
    row = table["tasks"].get(task)
    if row is None:
        raise FcotError(f"{task!r} has no row in {PUBLISHED_TABLE}; choose a task the published table scored")
    fcot = row["fcot"]
    return {
        "epochs": fcot["epochs"],
        "validation_size": fcot["validation_size"],
        "learning_rate": fcot["learning_rate"],
        "seed": fcot["seed"],
        "train_sampling_strategy": fcot["batches"],
        "published": {
            "accuracy": row["ours"]["fcot_chosen"]["accuracy"],
            "n": row["ours"]["fcot_chosen"]["n"],
            "validation_best": validation_best(fcot.get("validation_curve")),
            "rows": fcot["train_rows"],
            "seconds": fcot["seconds"],
        },
    }


def run_dir(args: CampaignArguments, cell: Cell) -> Path:
    return Path(args.runs_dir) / cell.task / cell.name.split("/", 1)[1]


def command(args: CampaignArguments, cell: Cell) -> list[str]:
    """The cell's ``fcot distill`` command line."""
    recipe = published_recipe(cell.task)
    options = {
        "task": cell.task,
        "teacher": args.teacher,
        "teacher_engine": args.teacher_engine,
        "diverse": cell.diverse,
        "teacher_temperature": TEMPERATURE,
        "student": args.student,
        "epochs": args.epochs if args.epochs is not None else recipe["epochs"],
        "validation_size": args.validation_size if args.validation_size is not None else recipe["validation_size"],
        "learning_rate": recipe["learning_rate"],
        "seed": recipe["seed"],
        "train_sampling_strategy": recipe["train_sampling_strategy"],
        "precision": args.precision,
        "baselines": "false",  # the untrained student's scores are the published table's already
        "add_paper_rationales": "true" if cell.mixed else None,
        "train_limit": args.train_limit,
        "eval_limit": args.eval_limit,
        "teacher_max_gen_toks": args.teacher_max_gen_toks,
        "max_gen_toks": args.max_gen_toks,
        "eval_batch_size": args.eval_batch_size,
        "run_dir": str(run_dir(args, cell)),
    }
    line = ["fcot", "distill"]
    for name, value in options.items():
        if value is not None:
            line += [f"--{name}", f"{value:g}" if isinstance(value, float) else str(value)]
    return line


def seed_ledger(args: CampaignArguments, cell: Cell, cells: list[Cell]) -> int:
    """Copy into the cell's teacher ledger every response the task's earlier cells hold: their samples are the
    first of this cell's, at the same T (responses of other settings stay unused: their keys differ)."""
    from fcot_plugin.core.folders import read_marker
    from fcot_plugin.pipeline.run_folder import RunFolder
    from fcot_plugin.teacher.cache import copy_entries

    folder = RunFolder(run_dir(args, cell))
    sources = [
        RunFolder(run_dir(args, earlier)).teacher_cache
        for earlier in cells[: cells.index(cell)]
        if earlier.task == cell.task
    ]
    sources = [source for source in sources if source.is_file()]
    if not sources:
        return 0
    if folder.path.exists() and read_marker(folder.path) is None:
        return 0  # not fcot's: fcot distill refuses it in one line, and nothing is written into it here
    folder.mark()  # the cell's run folder, made here for fcot distill: its ledger is the first entry in it
    return sum(copy_entries(source, folder.teacher_cache) for source in sources)


def run_cell(args: CampaignArguments, cell: Cell, cells: list[Cell]) -> dict[str, Any]:
    """One ``fcot distill`` in its own process (its memory goes back when it ends); a failure is one line."""
    line = command(args, cell)
    added = seed_ledger(args, cell, cells)
    logging.info("%s: %d responses of earlier cells in its teacher ledger; %s", cell.name, added, " ".join(line))
    started = time.monotonic()
    tail: list[str] = []  # its progress goes on to this terminal as it comes; the last lines are kept for the error
    with subprocess.Popen(
        [sys.executable, "-m", "fcot_plugin.cli.fcot", *line[1:]], stderr=subprocess.PIPE, text=True
    ) as process:
        for text in process.stderr:
            sys.stderr.write(text)
            tail = [*tail[-49:], text.rstrip("\n")]
    seconds = round(time.monotonic() - started, 1)
    if process.returncode == 0:
        return cell_row(args, cell)
    errors = [text.split("fcot: error: ", 1)[1] for text in tail if "fcot: error: " in text]
    error = errors[-1] if errors else f"exit {process.returncode}: {' | '.join(tail[-3:])}"
    logging.warning("%s: failed after %.0f s: %s", cell.name, seconds, error)
    return {**empty_row(args, cell), "status": "failed", "error": error, "seconds": {"total": seconds}}


def empty_row(args: CampaignArguments, cell: Cell) -> dict[str, Any]:
    row = dict.fromkeys(FIELDS)
    row.update(
        {
            "cell": cell.name,
            "task": cell.task,
            "teacher": args.teacher,
            "engine": args.teacher_engine,
            "diverse": cell.diverse,
            "mixed": cell.mixed,
            "temperature": TEMPERATURE,
            "status": "not run",
            "command": " ".join(command(args, cell)),
            "run_dir": str(run_dir(args, cell)),
            "teacher_gguf_sha256": gguf_sha256(args.teacher),
            "recipe": published_recipe(cell.task),
            "seconds": {"total": 0.0},
        }
    )
    return row


def cell_row(args: CampaignArguments, cell: Cell) -> dict[str, Any]:
    """A finished cell, read from its run folder."""
    from fcot_plugin.pipeline.run_folder import RunFolder

    folder = RunFolder(run_dir(args, cell))
    config, stages = folder.config(), folder.all_results()
    teacher, curation, train = stages["teacher"], stages["curate"]["stats"], stages["train"]
    student = stages["evaluate"]["student"]
    selection = train.get("selection")
    accounting = teacher.get("accounting") or {}
    correct, n = round(student["accuracy"] * student["n"]), student["n"]
    seconds = {stage: record.get("seconds") or 0.0 for stage, record in stages.items()}
    return {
        **empty_row(args, cell),
        "status": "finished",
        "engine": config.get("teacher_engine"),
        "teacher": config["teacher"],
        "temperature": config["teacher_temperature"],
        "teacher_accuracy": 100 * teacher["train_accuracy"] if teacher.get("train_accuracy") is not None else None,
        "teacher_cache": {
            key: accounting.get(key)
            for key in ("responses", "reused", "generated", "requests", "prompt_tokens", "completion_tokens")
        },
        "rationales": curation["rationales"],
        "kept": curation["rows"],
        "rejected": curation["rationales"] - curation["correct"],
        "duplicates": curation["duplicates"],
        "paper_rationales": curation.get("paper_rationales", 0),
        "training_rows": curation["rows"],
        "training_tokens": training_tokens(folder.data_dir, config["student"]),
        "epochs": config["epochs"],
        "epoch": selection["chosen_epoch"] if selection else None,
        "validation_best": validation_best(selection["curve"] if selection else None),
        "student_accuracy": 100 * student["accuracy"],
        "n": n,
        "ci95": [round(100 * bound, 2) for bound in wilson(correct, n)],
        "seconds": {
            "teacher": seconds.get("teacher", 0.0),
            "training": seconds.get("train", 0.0),  # the epochs' validation scoring included
            "total": round(sum(seconds.values()), 1),
        },
        "machine": recorded_machine(folder.path),
        "device": config["device"],
    }


def validation_best(curve: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The validation-chosen epoch's accuracy (%) and question count; ties go to the earliest epoch."""
    if not curve:
        return None
    best = max(curve, key=lambda point: point["accuracy"])  # max keeps the first of equals: the earliest epoch
    return {"epoch": best["epoch"], "accuracy": 100 * best["accuracy"], "n": best["n"]}


def training_tokens(data_dir: Path, student: str) -> int:
    """Prompt and completion tokens of the curated rows, under the student's tokenizer (EOS not counted)."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from fcot_plugin.training.students import resolve_student

    tokenizer = AutoTokenizer.from_pretrained(resolve_student(student))
    rows = load_from_disk(str(data_dir))["train"]
    texts = [prompt + completion for prompt, completion in zip(rows["prompt"], rows["completion"], strict=True)]
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion: sound at 0 and n correct, where the normal one is not."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


_GGUF: dict[str, str | None] = {}


def gguf_sha256(teacher: str) -> str | None:
    """SHA-256 of the teacher's GGUF file where it is one (or a folder holding exactly one), else None."""
    if teacher not in _GGUF:
        path = Path(teacher).expanduser()
        found = [path] if path.suffix == ".gguf" else sorted(path.glob("*.gguf")) if path.is_dir() else []
        digest = None
        if len(found) == 1 and found[0].is_file():
            sha = hashlib.sha256()
            with open(found[0], "rb") as handle:
                for block in iter(lambda: handle.read(1 << 24), b""):
                    sha.update(block)
            digest = sha.hexdigest()
        _GGUF[teacher] = digest
    return _GGUF[teacher]


# ---------------------------------------------------------------------- sizing


ANSWER_TOKENS = 8  # the stage-2 answer after the trigger: a few tokens


def estimate(args: CampaignArguments) -> list[dict[str, Any]]:
    """Estimated seconds of every cell, before any runs (the README's sizing rule):

    teacher = questions x new samples per question x (rationale + answer tokens) / tokens per second;
    training = the task's published seconds per row and epoch (validation scoring included) x epochs x rows, with
    rows = trained questions x D x teacher accuracy (+ the paper's curated rows in a mixed cell);
    scoring = half the published evaluate stage (it scored the student twice and two baselines).
    """
    from fcot_plugin.tasks.registry import load_rows

    cells, rows, total = plan(args), [], 0.0
    for cell in cells:
        recipe = published_recipe(cell.task)
        published = recipe["published"]
        questions = len(load_rows(cell.task, "train"))
        if args.train_limit:
            questions = min(questions, args.train_limit)
        held = recipe["validation_size"]
        trained = questions - (round(questions * held) if held < 1 else held)
        before = max((c.diverse for c in cells[: cells.index(cell)] if c.task == cell.task), default=0)
        new = max(0, cell.diverse - before)
        teacher = questions * new * (args.estimate_rationale_tokens + ANSWER_TOKENS) / args.estimate_tokens_per_second
        curated = trained * cell.diverse * args.estimate_teacher_accuracy + (published["rows"] if cell.mixed else 0)
        per_row_epoch = published["seconds"]["train"] / (recipe["epochs"] * published["rows"])
        training = per_row_epoch * recipe["epochs"] * curated
        scoring = published["seconds"]["evaluate"] / 2
        total += teacher + training + scoring
        rows.append(
            {
                "cell": cell.name,
                "new_samples_per_question": new,
                "teacher_s": round(teacher),
                "rows": round(curated),
                "training_s": round(training),
                "scoring_s": round(scoring),
                "cumulative_h": round(total / 3600, 2),
                "fits": total <= args.budget_hours * 3600,
            }
        )
    return rows


def print_estimate(args: CampaignArguments) -> None:
    print(
        f"estimate for {args.estimate_tokens_per_second:g} teacher tokens/s, {args.estimate_rationale_tokens:g} "
        f"rationale tokens, teacher accuracy {args.estimate_teacher_accuracy:g}, budget {args.budget_hours:g} h:"
    )
    for row in estimate(args):
        print(
            f"  {row['cell']:<32} +{row['new_samples_per_question']} samples/question  teacher "
            f"{row['teacher_s']:>6} s  rows {row['rows']:>5}  training {row['training_s']:>6} s  scoring "
            f"{row['scoring_s']:>4} s  cumulative {row['cumulative_h']:5.2f} h  {'fits' if row['fits'] else 'over'}"
        )


# ---------------------------------------------------------------------- the campaign


def main(args: CampaignArguments) -> dict[str, Any]:
    if args.estimate_tokens_per_second is not None:
        print_estimate(args)
        return {"estimate": estimate(args)}
    cells = plan(args)
    output = Path(args.output).expanduser()
    budget = args.budget_hours * 3600
    rows: list[dict[str, Any]] = []
    stopped = None
    for number, cell in enumerate(cells, 1):
        if finished(run_dir(args, cell)):
            logging.info("cell %d/%d %s: finished earlier, read from its run folder", number, len(cells), cell.name)
            rows.append(cell_row(args, cell))
        elif stopped or spent(rows) >= budget:
            stopped = stopped or f"budget of {args.budget_hours:g} h reached after {spent(rows) / 3600:.2f} h"
            rows.append({**empty_row(args, cell), "status": "not run", "error": stopped})
        else:
            logging.info(
                "cell %d/%d %s (%.2f of %g h spent)",
                number,
                len(cells),
                cell.name,
                spent(rows) / 3600,
                args.budget_hours,
            )
            rows.append(run_cell(args, cell, cells))
        write(args, rows, stopped, output)
    if stopped:
        print(f"stopped: {stopped}; {sum(row['status'] == 'not run' for row in rows)} cell(s) not run")
    print(f"done: {result_file(output, '.md')}")
    return {"cells": rows, "stopped": stopped}


def spent(rows: list[dict[str, Any]]) -> float:
    """Machine seconds the cells took, as recorded (finished cells: their stages; failed ones: until they failed)."""
    return sum(row["seconds"]["total"] for row in rows)


# ---------------------------------------------------------------------- results


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The goals stated before the campaign ran, each met, missed (by how much) or not measured."""
    done = {(row["task"], row["diverse"], row["mixed"]): row for row in rows if row["status"] == "finished"}
    result = []
    for task in dict.fromkeys(row["task"] for row in rows):
        one, four = done.get((task, 1, False)), done.get((task, 4, False))
        result.append(compare(f"{task}: D=4 above D=1", four, one))
    date_mixed = next((row for row in done.values() if row["task"] == "date_understanding" and row["mixed"]), None)
    paper_only = {"student_accuracy": published_recipe("date_understanding")["published"]["accuracy"]}
    if any(row["task"] == "date_understanding" for row in rows):
        result.append(
            compare("date_understanding: mixed above paper rationales only (published row)", date_mixed, paper_only)
        )
    table = replaced_table(rows)
    beaten = [task for task, row in table.items() if row["accuracy"] > row["gpt2_medium"]]
    result.append(
        {
            "goal": f"{GOAL_TASKS} of 9 tasks above the paper's {GOAL_STUDENT}",
            "met": len(beaten) >= 7,
            "by": len(beaten) - GOAL_TASKS,
            "value": len(beaten),
            "against": GOAL_TASKS,
            "beaten": beaten,
        }
    )
    return result


def compare(goal: str, ours: dict[str, Any] | None, other: dict[str, Any] | None) -> dict[str, Any]:
    if ours is None or other is None:
        return {"goal": goal, "met": None, "by": None, "value": None, "against": None}
    by = ours["student_accuracy"] - other["student_accuracy"]
    return {
        "goal": goal,
        "met": by > 0,
        "by": round(by, 2),
        "value": round(ours["student_accuracy"], 2),
        "against": round(other["student_accuracy"], 2),
    }


def replaced_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The published table's Fine-tune-CoT row per task, replaced by the validation-best of the task's cells where
    one of them is strictly better on validation (never on test; ties keep the published row)."""
    from fcot_plugin.core.files import read_json

    published = read_json(PUBLISHED_TABLE, "restore it from the repository")["tasks"]
    table = {}
    for task in PAPER_TASKS:
        if task not in published:
            continue
        recipe = published_recipe(task)
        best = {
            "accuracy": recipe["published"]["accuracy"],
            "source": "published",
            "validation": (recipe["published"]["validation_best"] or {}).get("accuracy", -1.0),
        }
        held_out = (recipe["published"]["validation_best"] or {}).get("n")
        for row in rows:
            valid = row["validation_best"] if row["task"] == task and row["status"] == "finished" else None
            comparable = valid and valid["n"] == held_out and row["n"] == recipe["published"]["n"]
            if comparable:  # the published run's held-out questions and its whole test split
                if valid["accuracy"] > best["validation"]:
                    best = {
                        "accuracy": row["student_accuracy"],
                        "source": row["cell"],
                        "validation": valid["accuracy"],
                    }
        table[task] = {**best, "gpt2_medium": paper_value(task, GOAL_STUDENT)}
    return table


def markdown(args: CampaignArguments, rows: list[dict[str, Any]], stopped: str | None) -> str:
    from fcot_plugin.tasks.registry import get_task

    def number(value: Any, digits: int = 2) -> str:
        return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = (
        "| task | D | mixed | status | teacher acc. (train) | kept / rejected | rows / tokens | epoch | "
        "validation best | student acc. | 95% CI | teacher s | training s | total s | reused / generated |"
    )
    lines = [header, "|---|---:|---|---|---:|---|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for row in rows:
        cache = row.get("teacher_cache") or {}
        valid = row["validation_best"]
        lines.append(
            f"| {get_task(row['task']).title} | {row['diverse']} | {'yes' if row['mixed'] else 'no'} | "
            f"{row['status']}{': ' + row['error'] if row.get('error') else ''} | {number(row['teacher_accuracy'])} | "
            f"{number(row['kept'])} / {number(row['rejected'])} | {number(row['training_rows'])} / "
            f"{number(row['training_tokens'])} | {number(row['epoch'])} | "
            f"{number(valid['accuracy']) + '% of ' + str(valid['n']) if valid else '–'} | "
            f"{number(row['student_accuracy'])} | {interval(row['ci95'])} | "
            f"{number(row['seconds'].get('teacher'), 0)} | {number(row['seconds'].get('training'), 0)} | "
            f"{number(row['seconds'].get('total'), 0)} | {number(cache.get('reused'))} / "
            f"{number(cache.get('generated'))} |"
        )
    goal_lines = []
    for goal in goals(rows):
        if goal["met"] is None:
            goal_lines.append(f"- {goal['goal']}: not measured (a cell it needs did not finish)")
        else:
            verdict = "met" if goal["met"] else "missed"
            goal_lines.append(
                f"- {goal['goal']}: **{verdict}**, {goal['value']} against {goal['against']} ({goal['by']:+g})"
            )
    table = replaced_table(rows)
    replaced = [
        f"{get_task(task).title} → {row['source']} ({row['accuracy']:.2f})"
        for task, row in table.items()
        if row["source"] != "published"
    ]
    finished_rows = [row for row in rows if row["status"] == "finished"]
    machines = sorted({row["machine"] for row in finished_rows}) or ["no cell finished"]
    devices = sorted({row["device"] for row in finished_rows}) or ["–"]
    subset = f" first {args.eval_limit} test questions," if args.eval_limit else ""
    digest = gguf_sha256(args.teacher)
    gguf = f" (GGUF SHA-256 `{digest}`)" if digest else ""
    return (
        f"# Diverse reasoning with a live teacher: {student_name(args.student)}\n\n"
        f"Teacher `{args.teacher}`{gguf} through `{args.teacher_engine}`, T={TEMPERATURE} for every D (D=1 is the "
        f"first of the samples), zero-shot-CoT on the train split; student trained with each task's published recipe "
        f"and its epoch chosen on the validation slice. Student accuracy (%) on the{subset} test split, Wilson 95% "
        f"interval. Mixed: the paper's released rationales plus the live samples.\n\n"
        + "\n".join(lines)
        + "\n\n## Goals (stated before the campaign ran)\n\n"
        + "\n".join(goal_lines)
        + "\n\nPublished Fine-tune-CoT rows replaced (validation-best cell, strictly above the published run on "
        f"validation): {', '.join(replaced) or 'none'}.\n\n"
        + (f"**Stopped:** {stopped}; cells marked not run were not started.\n\n" if stopped else "")
        + f"Machine: {'; '.join(machines)}. Device: {', '.join(devices)}. Run folders: `{args.runs_dir}/<task>/d<D>`."
        + "\n\n![student accuracy against D](diverse_reasoning.png)\n"
    )


def interval(ci95: list[float] | None) -> str:
    return "–" if not ci95 else f"{ci95[0]:.2f}–{ci95[1]:.2f}"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Student accuracy against D, one panel per task, as the paper's diverse-reasoning figure; the mixed row a
    separate marker, the published paper-rationale row and GPT-2 Medium as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fcot_plugin.tasks.registry import get_task

    tasks = list(dict.fromkeys(row["task"] for row in rows))
    figure, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for axis, task in zip(axes[0], tasks, strict=True):
        done = [row for row in rows if row["task"] == task and row["status"] == "finished"]
        for mixed, style, label in ((False, "o-", "live teacher"), (True, "*", "paper + live (mixed)")):
            points = sorted(
                (row["diverse"], row["student_accuracy"], row["ci95"]) for row in done if row["mixed"] == mixed
            )
            if points:
                xs, ys, cis = zip(*points, strict=True)
                errors = [
                    [y - ci[0] for y, ci in zip(ys, cis, strict=True)],
                    [ci[1] - y for y, ci in zip(ys, cis, strict=True)],
                ]
                xs = [x * 1.08 for x in xs] if mixed else xs  # beside the live row of the same D, not on it
                axis.errorbar(xs, ys, yerr=errors, fmt=style, capsize=3, markersize=9 if mixed else 6, label=label)
        axis.axhline(
            published_recipe(task)["published"]["accuracy"],
            linestyle="--",
            color="grey",
            label="paper rationales only (published)",
        )
        theirs = paper_value(task, GOAL_STUDENT)
        if theirs is not None:
            axis.axhline(theirs, linestyle=":", color="black", label=f"paper: {GOAL_STUDENT}")
        axis.set_xscale("log", base=2)
        axis.set_xticks(sorted({row["diverse"] for row in rows if row["task"] == task}))
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_title(get_task(task).title)
        axis.set_xlabel("D (teacher rationales per question)")
        axis.set_ylabel("student accuracy (%)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write(args: CampaignArguments, rows: list[dict[str, Any]], stopped: str | None, output: Path) -> None:
    from fcot_plugin.core.files import write_json_atomic, write_text_atomic

    result = {
        "config": asdict(args),
        "cells": rows,
        "budget": {"hours": args.budget_hours, "spent_hours": round(spent(rows) / 3600, 3), "stopped": stopped},
        "goals": goals(rows),
        "replaced_table": replaced_table(rows),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(result_file(output, ".json"), result)
    write_text_atomic(result_file(output, ".md"), markdown(args, rows, stopped))
    plot(rows, result_file(output, ".png"))


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("diverse_reasoning.py", CampaignArguments, main, sys.argv[1:])
