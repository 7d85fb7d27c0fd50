"""The paper's Fine-tune-CoT table for one student, next to the paper's GPT-2 and Flan-T5 rows, one column per task.

    python benchmarks/paper_table.py                      # all 9 tasks with released rationales, 6 epochs
    python benchmarks/paper_table.py --tasks coin_flip --epochs 2 --eval_limit 10 --sc_limit 5 --sc_samples 2 \\
        --output /tmp/pt                                  # a quick look (subsets are stated in the table)

Per task, two ``fcot distill`` runs with the paper's teacher rationales, each choosing its epoch on a validation
slice of the train split (never the test split): ``<runs_dir>/<task>/fcot`` (Fine-tune-CoT, plus the untrained
student's zero-shot and zero-shot-CoT baselines) and ``<runs_dir>/<task>/vanilla`` (answer-only fine-tuning).
Then the validation-chosen Fine-tune-CoT student's self-consistency (``fcot_<task>_sc``: k sampled rationales at
temperature T, majority vote) under ``<runs_dir>/<task>/sc``. Every step is resumable: run folders skip finished
stages and a self-consistency score is reused while its student and settings are unchanged. The table is written
after every task, so a long run leaves partial results. The paper's open-source rows are the best of 20 epochs
on the test set (their protocol); ours never look at the test set to choose.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from fcot_plugin.core.files import result_file

RESULTS = Path(__file__).parent / "results"
PAPER_TASKS = (
    "single_eq",
    "addsub",
    "multiarith",
    "svamp",
    "date_understanding",
    "tracking_shuffled_objects",
    "last_letter_concatenation",
    "coin_flip",
    "strategy_qa",
)
PAPER_STUDENTS = (
    "GPT-2 Small (124M)",
    "GPT-2 Medium (355M)",
    "GPT-2 Large (774M)",
    "Flan-T5-Small (60M)",
    "Flan-T5-Base (220M)",
    "Flan-T5-Large (700M)",
)
GOAL_STUDENT, GOAL_TASKS = "GPT-2 Medium (355M)", 7  # the goal: beat it on at least 7 of the 9 tasks
# Options handed to every `fcot distill` as they are; unset (None), fcot distill's own default applies.
PASSED_TO_DISTILL = (
    "validation_size",
    "learning_rate",
    "seed",
    "train_limit",
    "eval_limit",
    "eval_batch_size",
    "train_sampling_strategy",
    "eval_engine",
)


def distill_option(name: str, note: str = "") -> Any:
    """A table option that is ``fcot distill --<name>`` for both students: its help and default are fcot's own."""
    from fcot_plugin.pipeline.settings import DistillArguments

    declared = DistillArguments.__dataclass_fields__[name]
    default = "" if declared.default is None else f" (default there: {declared.default})"
    return field(default=None, metadata={"help": f"fcot distill: {declared.metadata['help']}{default}{note}"})


@dataclass
class TableArguments:
    tasks: str = field(
        default=",".join(PAPER_TASKS),
        metadata={"help": "comma-separated tasks (default: the 9 with the paper's released rationales)"},
    )
    student: str = field(default="smollm2-135m", metadata={"help": "student id/folder; smollm2-135m = embedded"})
    epochs: float = field(
        default=6.0,
        metadata={
            "help": "epochs per student; each epoch is scored on the validation slice and the best one kept "
            "(the paper: 20, best epoch on test)"
        },
    )
    validation_size: float | None = distill_option("validation_size")
    learning_rate: float | None = distill_option("learning_rate")
    seed: int | None = distill_option(
        "seed", "; the validation slice keeps its own seed, so other seeds choose on the same held-out questions"
    )
    train_limit: int | None = distill_option("train_limit")
    eval_limit: int | None = distill_option("eval_limit")
    sc_samples: int = field(default=8, metadata={"help": "self-consistency: k sampled rationales per question"})
    sc_temperature: float = field(default=0.7, metadata={"help": "self-consistency: sampling temperature T (> 0)"})
    sc_limit: int | None = field(
        default=None,
        metadata={
            "help": "self-consistency on the first N test questions only (k generations each; default: "
            "--eval_limit); 0 skips it"
        },
    )
    vanilla: bool = field(default=True, metadata={"help": "also train and score the answer-only (vanilla) student"})
    baselines: bool = field(
        default=True,
        metadata={"help": "score the untrained student's zero-shot and zero-shot-CoT (no epochs: one run is enough)"},
    )
    precision: str = field(default="auto", metadata={"help": "fcot distill: auto (bf16 where native), bf16 or fp32"})
    eval_batch_size: int | None = distill_option("eval_batch_size")
    eval_engine: str | None = distill_option("eval_engine")
    train_sampling_strategy: str | None = distill_option(
        "train_sampling_strategy", ". Not a merge setting: the table shows each task's, read from its run folder"
    )
    from_run_folders: bool = field(
        default=False,
        metadata={
            "help": "train and score nothing: the table from the finished run folders under --runs_dir, as "
            "they were run (a task without a finished Fine-tune-CoT run is left out, a missing vanilla "
            "student or self-consistency score shows as -)"
        },
    )
    runs_dir: str = field(default="runs/paper_table", metadata={"help": "run folders go to <runs_dir>/<task>/"})
    merge_with: str | None = field(
        default=None,
        metadata={
            "help": "an earlier table's .json: its tasks that this run does not score are kept, marked as "
            "carried over (a table built over several sessions); its settings must match these"
        },
    )
    output: str = field(default=str(RESULTS / "paper_table"), metadata={"help": "results path without suffix"})

    def __post_init__(self) -> None:
        from fcot_plugin.core.errors import FcotError
        from fcot_plugin.core.precision import normalise
        from fcot_plugin.tasks.formats import check_paper_rationales
        from fcot_plugin.tasks.registry import TASKS

        self.task_list = [task.strip() for task in self.tasks.split(",") if task.strip()]
        if not self.task_list:
            raise FcotError("--tasks is empty; name at least one task, e.g. --tasks coin_flip")
        for task in self.task_list:
            if task not in TASKS:
                raise FcotError(f"unknown task {task!r} in --tasks; choose from: {', '.join(PAPER_TASKS)}")
            check_paper_rationales(task)
        if self.sc_samples < 1:
            raise FcotError(f"--sc_samples must be >= 1, got {self.sc_samples}")
        if not 0 < self.sc_temperature < float("inf"):  # NaN too
            raise FcotError(
                f"--sc_temperature must be > 0 (T = 0 makes every sample the same), got {self.sc_temperature}"
            )
        if self.sc_limit is not None and self.sc_limit < 0:
            raise FcotError(f"--sc_limit must be >= 0 (0 skips self-consistency), got {self.sc_limit}")
        if self.sc_limit is None:
            self.sc_limit = self.eval_limit
        self.precision = normalise(self.precision)  # a typo fails here, not after the first task's training
        if self.merge_with is not None:
            self.earlier = earlier_table(self)  # a mismatch fails here too


# Settings a carried-over row must share with this run; a key an older table lacks had the default then. Training
# settings are not among them (epochs, learning rate, seed, validation slice): each row records its own, and the
# table's header names every task that differs (a task still improving on validation is trained longer).
COMPARABLE = (
    "student",
    "train_limit",
    "eval_limit",
    "sc_samples",
    "sc_temperature",
    "sc_limit",
    "vanilla",
    "baselines",
    "precision",
)


def earlier_table(args: TableArguments) -> dict[str, Any]:
    """The table named by --merge_with, checked to have been run with this run's settings."""
    from fcot_plugin.core.errors import FcotError
    from fcot_plugin.core.files import read_json

    path = Path(args.merge_with).expanduser()
    if not path.is_file():
        raise FcotError(f"--merge_with {path}: no such file; give the .json an earlier paper_table.py run wrote")
    earlier = read_json(path, "give the .json an earlier paper_table.py run wrote")
    if not isinstance(earlier, dict) or not isinstance(earlier.get("tasks"), dict) or "config" not in earlier:
        raise FcotError(f"--merge_with {path} is not a table paper_table.py wrote (no 'config' and 'tasks')")
    defaults = {f.name: f.default for f in fields(TableArguments)}
    differ = [
        f"{key} {earlier['config'].get(key, defaults[key])!r} there, {getattr(args, key)!r} here"
        for key in COMPARABLE
        if earlier["config"].get(key, defaults[key]) != getattr(args, key)
    ]
    if differ:
        raise FcotError(
            f"--merge_with {path} was run with other settings ({'; '.join(differ)}); rows scored "
            "differently cannot share a table: rerun with the same settings or drop --merge_with"
        )
    return earlier


# ---------------------------------------------------------------------- running one task


def distill_run(args: TableArguments, task: str, dataset_format: str) -> Path:
    """``fcot distill`` of one student format; resumes whatever finished in its run folder."""
    from fcot_plugin.pipeline.distill import distill
    from fcot_plugin.pipeline.settings import DistillArguments

    run_dir = Path(args.runs_dir) / task / dataset_format
    passed = {name: getattr(args, name) for name in PASSED_TO_DISTILL if getattr(args, name) is not None}
    return distill(
        DistillArguments(
            task=task,
            student=args.student,
            dataset_format=dataset_format,
            run_dir=str(run_dir),
            epochs=args.epochs,
            precision=args.precision,
            baselines=args.baselines and dataset_format == "fcot",
            **passed,
        )
    )


def sc_key(args: TableArguments, fcot_dir: Path) -> dict[str, Any]:
    """What an SC score belongs to: the trained student (its train stage) and k, T, limit."""
    from fcot_plugin.pipeline.run_folder import RunFolder, bookkeeping

    train = bookkeeping(RunFolder(fcot_dir).stage_record("train"))
    return {
        "student": [train.get("fingerprint"), train.get("outputs")],
        "samples": args.sc_samples,
        "temperature": args.sc_temperature,
        "limit": args.sc_limit,
    }


def self_consistency(args: TableArguments, task: str, fcot_dir: Path) -> dict[str, Any] | None:
    """The validation-chosen student's majority vote over k samples; reused while student and settings match."""
    from fcot_plugin.core.files import read_json, write_json_atomic
    from fcot_plugin.core.precision import torch_dtype_name
    from fcot_plugin.harness.model_names import LOCAL_MODEL
    from fcot_plugin.harness.runner import accuracy, question_count, run_lm_eval
    from fcot_plugin.pipeline.run_folder import RunFolder
    from fcot_plugin.tasks.names import task_name
    from fcot_plugin.training.adapters import lm_eval_model_args

    if args.sc_limit == 0:
        return None
    folder, key = RunFolder(fcot_dir), sc_key(args, fcot_dir)
    config = folder.config()
    out = fcot_dir.parent / "sc"
    record_file = out / "sc.json"
    if record_file.is_file():
        record = read_json(record_file, "delete it and run the same command again")
        if record.get("key") == key:
            logging.info("%s: self-consistency done in an earlier run with the same student and settings", task)
            return record
        stale = out.with_name(f"sc.previous-{datetime.now():%Y-%m-%dT%H-%M-%S}")
        out.rename(stale)  # another student or setting: kept aside, never mixed in
        logging.info("%s: self-consistency settings or student changed; earlier results moved to %s", task, stale)
    name = task_name(task, "sc")
    started = time.monotonic()
    results = run_lm_eval(
        LOCAL_MODEL,
        lm_eval_model_args(folder.student_dir, torch_dtype_name(config["precision"])),
        [name],
        limit=args.sc_limit,
        batch_size=args.eval_batch_size or distill_default("eval_batch_size"),
        output_path=out,
        metadata={"fcot_samples": args.sc_samples, "fcot_temperature": args.sc_temperature},
        device=config["device"],
    )
    record = {
        "key": key,
        "task": name,
        "accuracy": accuracy(results, name),
        "n": question_count(results, name),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_json_atomic(record_file, record)
    return record


def scores(run_dir: Path) -> dict[str, Any]:
    """Test accuracies (%) of one run folder, the epoch selection, and the seconds of every stage."""
    from fcot_plugin.pipeline.run_folder import RunFolder

    folder = RunFolder(run_dir)
    config, stages = folder.config(), folder.all_results()
    evaluate, selection = stages["evaluate"], stages["train"].get("selection")
    rows = {
        name: {"accuracy": 100 * record["accuracy"], "n": record["n"]}
        for name, record in evaluate.items()
        if name != "seconds"
    }
    rows.setdefault("student_last", rows["student"])  # no selection (one epoch, or validation_size 0): one student
    return {
        "rows": rows,
        "epochs": config["epochs"],
        "learning_rate": config["learning_rate"],
        "seed": config["seed"],
        "validation_size": config["validation_size"],
        "chosen_epoch": selection["chosen_epoch"] if selection else None,
        "last_epoch": selection["last_epoch"] if selection else None,
        "validation_curve": selection["curve"] if selection else None,
        "train_rows": stages["curate"]["stats"]["rows"],
        "batches": training_batches(folder),
        "seconds": {stage: record.get("seconds") for stage, record in stages.items()},
    }


def training_batches(folder) -> str:
    """How the run drew its training batches, from its train.yaml."""
    import yaml

    return yaml.safe_load(folder.train_config.read_text())["train_sampling_strategy"]


def paper_value(task: str, student: str, method: str = "fine-tune-cot") -> float | None:
    from fcot_plugin.tasks.paper_results import results_for

    return next((r.accuracy[task] for r in results_for(task) if r.student == student and r.method == method), None)


def finished(run_dir: Path) -> bool:
    from fcot_plugin.pipeline.run_folder import RunFolder

    return run_dir.is_dir() and RunFolder(run_dir).stage_record("evaluate") is not None


def recorded_self_consistency(args: TableArguments, fcot_dir: Path) -> dict[str, Any] | None:
    """The SC score recorded for this very student with the k, T and limit asked for, if there is one."""
    from fcot_plugin.core.files import read_json

    record_file = fcot_dir.parent / "sc" / "sc.json"
    if not record_file.is_file():
        return None
    record = read_json(record_file, "delete it and run the same command again")
    return record if record.get("key") == sc_key(args, fcot_dir) else None


def run_task(args: TableArguments, task: str) -> dict[str, Any] | None:
    if args.from_run_folders:
        fcot_dir, vanilla_dir = (Path(args.runs_dir) / task / name for name in ("fcot", "vanilla"))
        if not finished(fcot_dir):
            logging.info("%s: no finished Fine-tune-CoT run in %s; left out", task, fcot_dir)
            return None
        vanilla = scores(vanilla_dir) if args.vanilla and finished(vanilla_dir) else None
        sc = recorded_self_consistency(args, fcot_dir) if args.sc_limit != 0 else None
    else:
        fcot_dir = distill_run(args, task, "fcot")
        vanilla = scores(distill_run(args, task, "vanilla")) if args.vanilla else None
        sc = self_consistency(args, task, fcot_dir)
    fcot = scores(fcot_dir)
    ours = {
        "zeroshot": fcot["rows"].get("zeroshot"),
        "zscot": fcot["rows"].get("zscot"),
        "vanilla": vanilla["rows"]["student"] if vanilla else None,
        "fcot_last": fcot["rows"]["student_last"],
        "fcot_chosen": fcot["rows"]["student"],
        "sc": {"accuracy": 100 * sc["accuracy"], "n": sc["n"]} if sc else None,
    }
    seconds = sum(v or 0 for v in fcot["seconds"].values()) + (sc["seconds"] if sc else 0)
    seconds += sum(v or 0 for v in vanilla["seconds"].values()) if vanilla else 0
    return {
        "ours": ours,
        "fcot": fcot,
        "vanilla": vanilla,
        "sc": sc,
        "paper": {student: paper_value(task, student) for student in PAPER_STUDENTS},
        "minutes": round(seconds / 60, 1),
        "machine": recorded_machine(fcot_dir),
        "runs_dir": args.runs_dir,
    }


def recorded_machine(fcot_dir: Path) -> str:
    """The machine that trained and scored a task, as its run folder recorded it (not the one running this)."""
    from fcot_plugin.core.precision import Hardware
    from fcot_plugin.pipeline.run_folder import RunFolder

    hardware = RunFolder(fcot_dir).config().get("hardware")
    return Hardware.from_dict(hardware).describe() if hardware else "not recorded in the run folder"


# ---------------------------------------------------------------------- the table


def goal(table: dict[str, Any]) -> dict[str, Any]:
    """Tasks where our validation-chosen Fine-tune-CoT beats the paper's GPT-2 Medium Fine-tune-CoT."""
    won = []
    for task, row in table["tasks"].items():
        theirs = row["paper"][GOAL_STUDENT]
        if theirs is not None and row["ours"]["fcot_chosen"]["accuracy"] > theirs:
            won.append(task)
    return {
        "against": f"{GOAL_STUDENT} Fine-tune-CoT",
        "beaten": won,
        "count": len(won),
        "scored": len(table["tasks"]),
        "needed": GOAL_TASKS,
    }


def student_name(student: str) -> str:
    from fcot_plugin.training.students import EMBEDDED_HUB_ID, EMBEDDED_STUDENT

    return Path(EMBEDDED_HUB_ID if student == EMBEDDED_STUDENT else student).name


def ordered(tasks: dict[str, Any]) -> list[str]:
    """Tasks in the paper's column order."""
    return sorted(tasks, key=lambda t: PAPER_TASKS.index(t) if t in PAPER_TASKS else len(PAPER_TASKS))


BATCHES = {"group_by_length": "length-grouped"}  # other strategies are shown by their transformers name


def markdown(table: dict[str, Any]) -> str:
    from fcot_plugin.tasks.registry import get_task

    config = table["config"]
    tasks = ordered(table["tasks"])
    rows = table["tasks"]
    k, temperature = config["sc_samples"], config["sc_temperature"]

    def cell(score: dict[str, Any] | float | None, bold: bool = False) -> str:
        value = score["accuracy"] if isinstance(score, dict) else score
        return "–" if value is None else (f"**{value:.2f}**" if bold else f"{value:.2f}")

    def line(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    ours = [
        ("zeroshot", "zero-shot (untrained)"),
        ("zscot", "zero-shot-CoT (untrained)"),
        ("vanilla", "vanilla (answer-only), validation-chosen epoch"),
        ("fcot_last", "Fine-tune-CoT, last epoch"),
        ("fcot_chosen", "Fine-tune-CoT, validation-chosen epoch"),
        ("sc", f"Fine-tune-CoT + self-consistency (k={k}, T={temperature})"),
    ]
    name = student_name(config["student"])
    lines = [line("model", [get_task(task).title for task in tasks]), "|---|" + "---:|" * len(tasks)]
    lines += [
        line(f"{name}: {label}", [cell(rows[t]["ours"][key], bold=key == "fcot_chosen") for t in tasks])
        for key, label in ours
    ]
    lines.append(
        line(
            "epoch chosen on validation / last",
            [f"{rows[t]['fcot']['chosen_epoch'] or '–'} / {rows[t]['fcot']['last_epoch'] or '–'}" for t in tasks],
        )
    )
    lines.append(
        line(
            "validation questions (held out of the train split)",
            [
                str(rows[t]["fcot"]["validation_curve"][0]["n"]) if rows[t]["fcot"]["validation_curve"] else "–"
                for t in tasks
            ],
        )
    )
    batches = [rows[t]["fcot"]["batches"] for t in tasks]
    lines.append(line("training batches", [BATCHES.get(b, b) for b in batches]))
    lines += [
        line(f"paper: {student} Fine-tune-CoT", [cell(rows[t]["paper"][student]) for t in tasks])
        for student in PAPER_STUDENTS
    ]
    lines.append(
        line(
            "test questions scored (ours / self-consistency)",
            [f"{rows[t]['ours']['fcot_chosen']['n']} / {rows[t]['sc']['n'] if rows[t]['sc'] else '–'}" for t in tasks],
        )
    )
    carried = [t for t in tasks if rows[t].get("carried_from")]  # rows --merge_with kept from an earlier table
    sources = [rows[t]["carried_from"] for t in carried]
    minutes = [f"{rows[t]['minutes']:.1f}" for t in tasks]
    lines.append(line("minutes (both students, baselines, self-consistency)", minutes))
    result = table["goal"]
    if not any(rows[t]["fcot"]["chosen_epoch"] for t in tasks):  # epochs are per row: no row chose one
        selection = "nothing held out, the last epoch kept"
    else:
        held = trained_with(rows, tasks, "validation_size", "held out", held_out)
        selection = f"every epoch scored on a validation slice of the train split ({held}), the best kept"
    subset = f"the first {config['eval_limit']} test questions" if config["eval_limit"] else "the full test split"
    if config["sc_limit"] == 0:
        sc_sentence = "Self-consistency: not run (--sc_limit 0)"
    else:
        sc_subset = (
            "the full test split" if config["sc_limit"] is None else f"the first {config['sc_limit']} test questions"
        )
        sc_sentence = (
            f"Self-consistency: the validation-chosen Fine-tune-CoT student, k={k} samples at "
            f"T={temperature}, majority vote, on {sc_subset}"
        )
    return (
        f"# Fine-tune-CoT table: {name}, paper teacher (text-davinci-002 released rationales)\n\n"
        f"Accuracy (%) on {subset}. {trained_with(rows, tasks, 'epochs', 'Epochs per student', '{:g}'.format)}. "
        f"{trained_with(rows, tasks, 'learning_rate', 'Learning rate', scientific)}. "
        f"{trained_with(rows, tasks, 'seed', 'Training seed', str)}. AdamW, batch 8; {selection}. "
        f"{sc_sentence}. The paper's rows: best of 20 epochs on the test set (their protocol), so "
        f"optimistic.\n\n" + "\n".join(lines) + "\n\n"
        f"**Goal** (our validation-chosen Fine-tune-CoT above the paper's {result['against']} on at least "
        f"{result['needed']} of 9 tasks): beaten on {result['count']} of the {result['scored']} tasks scored"
        + (f" ({', '.join(result['beaten'])})" if result["beaten"] else "")
        + (f", on {subset} only" if config["eval_limit"] else "")
        + ".\n\n"
        + (
            f"Carried over from an earlier run with the same settings ({', '.join(dict.fromkeys(sources))}): "
            f"{', '.join(get_task(t).title for t in carried)}.\n\n"
            if carried
            else ""
        )
        + f"Machine: {table['machine']}. Run folders: {run_folders(table)}.\n"
    )


def trained_with(rows: dict[str, Any], tasks: list[str], key: str, label: str, show: Callable[[float], str]) -> str:
    """One training setting (epochs, learning rate, ...): one value when every task shares it, else the usual one
    and the tasks that differ."""
    from collections import Counter

    from fcot_plugin.tasks.registry import get_task

    per_task = {}
    for task in tasks:
        trained = [rows[task][student][key] for student in ("fcot", "vanilla") if rows[task].get(student)]
        per_task[task] = " / ".join(dict.fromkeys(show(value) for value in trained))
    usual = Counter(per_task.values()).most_common(1)[0][0]
    others = [f"{get_task(task).title} {value}" for task, value in per_task.items() if value != usual]
    if not others:
        return f"{label}: {usual}"
    return f"{label}: {usual}, except (Fine-tune-CoT / vanilla where they differ): {', '.join(others)}"


def held_out(size: float) -> str:
    """A validation_size as fcot distill reads it: a fraction of the train questions, or a count."""
    return "none" if not size else f"{size:g} of the train questions" if size < 1 else f"{size:g} questions"


def scientific(value: float) -> str:
    """3e-4, not 0.0003: how learning rates are written."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def write(table: dict[str, Any], output: Path) -> None:
    from fcot_plugin.core.files import write_json_atomic, write_text_atomic

    table["goal"] = goal(table)
    table["machine"] = machines(table)
    write_json_atomic(result_file(output, ".json"), table)
    write_text_atomic(result_file(output, ".md"), markdown(table))


def run_folders(table: dict[str, Any]) -> str:
    """Where the rows' run folders are: one pattern, or one per group of tasks (a merged table's rows may differ)."""
    from fcot_plugin.tasks.registry import get_task

    tasks_in: dict[str, list[str]] = {}
    for task in ordered(table["tasks"]):
        runs_dir = table["tasks"][task].get("runs_dir", table["config"]["runs_dir"])
        tasks_in.setdefault(f"`{runs_dir}/<task>/{{fcot,vanilla,sc}}`", []).append(get_task(task).title)
    if len(tasks_in) == 1:
        return next(iter(tasks_in))
    return "; ".join(f"{pattern} ({', '.join(titles)})" for pattern, titles in tasks_in.items())


def machines(table: dict[str, Any]) -> str:
    """One machine, or each machine with the tasks it ran (rows of a merged table may come from several)."""
    from fcot_plugin.tasks.registry import get_task

    tasks_on: dict[str, list[str]] = {}
    for task in ordered(table["tasks"]):
        tasks_on.setdefault(table["tasks"][task]["machine"], []).append(get_task(task).title)
    if len(tasks_on) == 1:
        return next(iter(tasks_on))
    return "; ".join(f"{machine} ({', '.join(titles)})" for machine, titles in tasks_on.items())


def main(args: TableArguments) -> dict[str, Any]:
    from fcot_plugin.pipeline.preflight import check_run_dir

    for task in args.task_list:  # every run folder, before the first task trains for hours
        for dataset_format in ("fcot", "vanilla"):
            check_run_dir(Path(args.runs_dir) / task / dataset_format)
    table = {"config": asdict(args), "tasks": {}}
    output = Path(args.output).expanduser()
    if args.merge_with is not None and carry_over(table, args):
        write(table, output)  # the carried rows stand even if this run scores nothing
    for number, task in enumerate(args.task_list, 1):
        logging.info("paper table: task %d/%d %s", number, len(args.task_list), task)
        row = run_task(args, task)
        if row is not None:
            table["tasks"][task] = row
            write(table, output)  # after every task, so a long run leaves partial results
    print(f"done: {result_file(output, '.md')}" if table["tasks"] else "done: no task scored, no table written")
    return table


def distill_default(name: str) -> Any:
    """``fcot distill``'s default for one setting: what a row that did not record it was trained with."""
    from fcot_plugin.pipeline.settings import DistillArguments

    return next(f.default for f in fields(DistillArguments) if f.name == name)


def carry_over(table: dict[str, Any], args: TableArguments) -> list[str]:
    """Adds the earlier table's rows for tasks this run does not score, each marked with where it came from."""
    earlier, source = args.earlier, str(Path(args.merge_with).expanduser())
    carried = [task for task in earlier["tasks"] if task not in args.task_list]
    for task in carried:
        table["tasks"][task] = {**earlier["tasks"][task], "carried_from": source}
    return carried


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("paper_table.py", TableArguments, main, sys.argv[1:])
