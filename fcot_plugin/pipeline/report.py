"""``report.md``, ``report.html`` and ``accuracy.png`` of a run folder, from the lm-eval results files it holds.

Every student and baseline number is read from a results file written by lm-eval (or from the stage records that
point at them), so the report cannot disagree with the evaluation. The one exception is the paper teacher's row:
the released text-davinci-002 rationales come with no lm-eval run, so their test accuracy is scored here, in
Python, with the same answer rules (:mod:`fcot_plugin.tasks.answers`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from fcot_plugin.curation.responses import paper_responses
from fcot_plugin.harness.runner import accuracy, newest_results, question_count
from fcot_plugin.pipeline.report_html import write_html
from fcot_plugin.pipeline.run_folder import RunFolder
from fcot_plugin.pipeline.settings import uses_paper_teacher
from fcot_plugin.tasks.answers import extract_answer, is_correct
from fcot_plugin.tasks.formats import PAPER_TEACHER
from fcot_plugin.tasks.names import task_name
from fcot_plugin.tasks.registry import data_dir, get_task
from fcot_plugin.teacher.accounting import accounting_markdown

ROW_LABELS = {
    "student": "student, Fine-tune-CoT (ours)",
    "zeroshot": "student before training, zero-shot",
    "zscot": "student before training, zero-shot-CoT",
}


def paper_teacher_test_accuracy(task: str) -> float | None:
    """The released text-davinci-002 completions re-scored on the test split (greedy completions only)."""
    if not (data_dir() / "teacher_rationales" / PAPER_TEACHER / f"{task}.jsonl").is_file():
        return None
    responses = list(paper_responses(task, split="test"))
    correct = sum(is_correct(task, extract_answer(task, item.response), item.answer) for item in responses)
    return correct / len(responses)


def lm_eval_accuracy(results_dir: Path, task: str) -> tuple[float, int, Path]:
    """Accuracy and number of questions from the newest lm-eval results file under ``results_dir``."""
    found = newest_results(results_dir)
    if found is None:
        raise FileNotFoundError(f"no lm-eval results under {results_dir}")
    results, path = found
    return accuracy(results, task), question_count(results, task), path


def row_label(name: str, selection: dict[str, Any] | None, dataset_format: str = "fcot") -> str:
    """The report's name of an evaluation; with epoch selection the student rows say which epoch they are."""
    student = ROW_LABELS["student"] if dataset_format == "fcot" else "student, vanilla answer-only (ours)"
    if selection and name == "student":
        return f"{student}, validation-chosen epoch ({selection['chosen_epoch']})"
    if selection and name == "student_last":
        return f"{student}, last epoch ({selection['last_epoch']})"
    return student if name == "student" else ROW_LABELS.get(name, name)


def collect(run_dir: Path) -> dict[str, Any]:
    """Everything the report shows, as plain data (also written to ``report.json``)."""
    folder = RunFolder(run_dir)
    config = folder.config()
    stages = folder.all_results()
    task = config["task"]
    selection = stages.get("train", {}).get("selection")
    dataset_format = config["dataset_format"]
    rows = []
    for name, record in stages.get("evaluate", {}).items():
        if name == "seconds":
            continue
        value, n, source = lm_eval_accuracy(folder.eval_dir(record.get("same_as", name)), record["task"])
        label = row_label(name, selection, dataset_format)
        rows.append(
            {
                "key": name,
                "name": label,
                "accuracy": value,
                "n": n,
                "split": "test",
                "source": str(source.relative_to(run_dir)),
            }
        )
    if uses_paper_teacher(config):
        teacher = paper_teacher_test_accuracy(task)
        if teacher is not None:
            rows.append(
                {
                    "key": "teacher",
                    "name": f"teacher: {PAPER_TEACHER} zero-shot-CoT (released)",
                    "accuracy": teacher,
                    "n": None,
                    "split": "test",
                    "source": "fcot_plugin/data/teacher_rationales",
                }
            )
    elif "train_accuracy" in stages.get("teacher", {}):
        teacher = stages["teacher"]["train_accuracy"]
        rows.append(
            {
                "key": "teacher",
                "name": f"teacher: {config['teacher']} zero-shot-CoT",
                "accuracy": teacher,
                "n": None,
                "split": "train",
                "source": "teacher/",
            }
        )
    per_question = curated_per_question(folder.data_dir, stages.get("curate", {}).get("stats", {}).get("questions"))
    return {
        "config": config,
        "stages": stages,
        "rows": rows,
        "paper": paper_rows(task),
        "curated_per_question": per_question,
        "epochs": epoch_curve(folder, selection),
    }


def epoch_curve(folder: RunFolder, selection: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validation accuracy per epoch, each read from its lm-eval results file, and the chosen and last epochs."""
    if not selection:
        return None
    curve = []
    for entry in selection["curve"]:
        found = newest_results(folder.validation_dir(entry["epoch"]))
        if found is None:
            raise FileNotFoundError(f"no lm-eval results under {folder.validation_dir(entry['epoch'])}")
        results, path = found
        (task,) = results["results"]
        curve.append(
            {
                "epoch": entry["epoch"],
                "accuracy": accuracy(results, task),
                "n": question_count(results, task),
                "source": str(path.relative_to(folder.path)),
            }
        )
    return {
        "curve": curve,
        "chosen_epoch": selection["chosen_epoch"],
        "last_epoch": selection["last_epoch"],
        "validation_seed": folder.config().get("validation_seed"),
    }


def curated_per_question(data: Path, questions: int | None) -> dict[int, int] | None:
    """Questions by how many curated rationales they kept (0..D): what diverse reasoning bought."""
    from collections import Counter

    if not (data / "dataset_dict.json").is_file():
        return None
    from datasets import load_from_disk

    kept = Counter(load_from_disk(str(data))["train"]["sample_index"])
    histogram = Counter(kept.values())
    if questions and questions > len(kept):
        histogram[0] = questions - len(kept)
    return dict(sorted(histogram.items()))


def paper_rows(task: str) -> list[dict[str, Any]]:
    """The paper's teacher and Fine-tune-CoT rows for ``task`` (other methods: ``tasks.paper_results``)."""
    from fcot_plugin.tasks.paper_results import results_for

    return [
        {"student": r.student, "method": r.method, "accuracy": r.accuracy[task], "source": r.source}
        for r in results_for(task)
        if r.method == "fine-tune-cot" or r.student.startswith("teacher")
    ]


def _hardware(config: dict[str, Any]) -> str:
    """The hardware the precision was chosen for, as config.json recorded it."""
    hardware = config.get("hardware") or {}
    if hardware.get("gpu_name"):
        return f"{hardware['gpu_name']}"
    flags = " ".join(hardware.get("cpu_flags") or []) or "no AVX-512/AMX flags"
    native = "native bf16" if hardware.get("native_bf16") else "no native bf16"
    return f"{hardware.get('cpu_model', 'unknown CPU')} ({native}; {flags})"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def render(data: dict[str, Any]) -> str:
    config, stages = data["config"], data["stages"]
    spec = get_task(config["task"])
    curation = stages.get("curate", {}).get("stats", {})
    train = stages.get("train", {})
    limit_note = (
        f"**Test subset:** the first {config['eval_limit']} test questions (`--eval_limit`), not the whole split.\n\n"
        if config.get("eval_limit")
        else ""
    )
    ours = "\n".join(
        f"| {row['name']} | {row['split']} | {_percent(row['accuracy'])} | {row['n'] or '–'} | `{row['source']}` |"
        for row in data["rows"]
    )
    paper = "\n".join(
        f"| {row['student']} | {row['method']} | {row['accuracy']:.2f} | {row['source']} |" for row in data["paper"]
    )
    timings = ", ".join(f"{name} {record.get('seconds', 0):.0f} s" for name, record in stages.items())
    per_question = ", ".join(
        f"{kept}: {count} question{'s' * (count != 1)}"
        for kept, count in (data.get("curated_per_question") or {}).items()
    )
    accounting = stages.get("teacher", {}).get("accounting")
    teacher_run = f"## Teacher run\n\n{accounting_markdown(accounting)}\n\n" if accounting else ""
    mixed = (
        f"- mixed teachers (`--add_paper_rationales`): {curation.get('paper_rationales', '–')} of the rationales are "
        f"the paper's released ones, {curation.get('paper_rows', '–')} of the rows come from them\n"
        if config.get("add_paper_rationales")
        else ""
    )
    embedded = stages.get("teacher", {}).get("embedded_teacher")
    if embedded:
        teacher_run += (
            f"The teacher was the embedded {embedded['model']} ({embedded['license']}): `{embedded['file']}`, from "
            f"the GGUF file with SHA-256 `{embedded['gguf_sha256']}` ({embedded['source']}).\n\n"
        )
    epochs = data.get("epochs")
    if epochs:
        scoring = (
            f"once per epoch on {epochs['curve'][0]['n']} train questions held out of training (validation, seed "
            f"{epochs['validation_seed']}); the epoch best on validation (ties: the earliest) is the student, and "
            f"the test split is scored only for it and for the last epoch: no checkpoint is picked on the test set"
        )
        curve = "\n".join(
            f"| {entry['epoch']}{' (chosen)' * (entry['epoch'] == epochs['chosen_epoch'])} | "
            f"{_percent(entry['accuracy'])} | {entry['n']} | `{entry['source']}` |"
            for entry in epochs["curve"]
        )
        epoch_section = (
            f"## Validation accuracy per epoch (%)\n\n| epoch | validation accuracy | questions | lm-eval results |\n"
            f"|---|---:|---:|---|\n{curve}\n\n![validation accuracy per epoch](epochs.png)\n\n"
        )
    else:
        scoring = "once, after\nthe last epoch: no checkpoint is picked on the test set"
        epoch_section = ""
    return f"""# Fine-tune-CoT run: {spec.title}

Teacher `{config["teacher"]}`, student `{config["student"]}`, D={config["diverse"]},
T={config["teacher_temperature"]}, {config["epochs"]} epoch(s), lr {config["learning_rate"]},
batch {config["batch_size"]}, precision {config["precision"]} on {_hardware(config)}, device {config["device"]}.

{limit_note}## Accuracy (%)

| model | split | accuracy | questions | lm-eval results |
|---|---|---:|---:|---|
{ours}

Students are scored greedily with lm-eval (`{task_name(config["task"])}*` tasks, no chat template), {scoring}.
The paper's open-source numbers below are the best of 20 epochs on the test set, so they are optimistic next
to ours.

## The paper's numbers for {spec.title} (%)

| student | method | accuracy | source |
|---|---|---:|---|
{paper or "| – | – | – | – |"}

{epoch_section}{teacher_run}## Data and training

- curated rows: {curation.get("rows", "–")} from {curation.get("rationales", "–")} teacher rationales on
  {curation.get("questions", "–")} train questions ({curation.get("correct", "–")} correct)
{mixed}- curated rationales per question (kept: questions): {per_question or "–"}
- training loss: {train.get("first_loss", "–")} → {train.get("last_loss", "–")}
- stage times: {timings}

![accuracy](accuracy.png)
"""


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["name"] for row in data["rows"]]
    values = [100 * row["accuracy"] for row in data["rows"]]
    figure, axis = plt.subplots(figsize=(8, 0.6 * len(labels) + 1.2))
    bars = axis.barh(labels, values, color=["#2a6f97" if "ours" in label else "#adb5bd" for label in labels])
    axis.bar_label(bars, fmt="%.1f")
    axis.set_xlim(0, 105)
    axis.invert_yaxis()
    axis.set_xlabel("accuracy (%)")
    axis.set_title(f"Fine-tune-CoT: {get_task(data['config']['task']).title}")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    write_bytes_atomic(path, image.getvalue())


def plot_epochs(data: dict[str, Any], path: Path) -> None:
    """Validation accuracy per epoch, the chosen epoch marked: the evidence behind the student's epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = data["epochs"]
    x = [entry["epoch"] for entry in epochs["curve"]]
    y = [100 * entry["accuracy"] for entry in epochs["curve"]]
    chosen = epochs["chosen_epoch"]
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.plot(x, y, marker="o", color="#2a6f97", label="validation accuracy")
    axis.scatter(
        [chosen],
        [y[x.index(chosen)]],
        s=160,
        facecolors="none",
        edgecolors="#d62828",
        linewidths=2,
        label=f"chosen: epoch {chosen}",
        zorder=3,
    )
    axis.set_xticks(x)
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"accuracy (%) on {epochs['curve'][0]['n']} held-out train questions")
    axis.set_ylim(-4, 105)  # a 0% point and its marker stay visible
    axis.legend(loc="best")
    axis.set_title(f"Epoch selection: {get_task(data['config']['task']).title}")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    write_bytes_atomic(path, image.getvalue())


def write_report(run_dir: str | Path) -> dict[str, Any]:
    folder = RunFolder(run_dir)
    data = collect(folder.path)
    write_text_atomic(folder.report_md, render(data))
    write_json_atomic(folder.report_json, {k: data[k] for k in ("rows", "paper", "epochs")})
    plot(data, folder.plot)
    if data["epochs"]:
        plot_epochs(data, folder.epochs_plot)
    write_html(folder.path, data)  # after the plots: the page inlines them
    return {"report": str(folder.report_md), "html": str(folder.report_html), "rows": data["rows"]}


def report_command(run_dir: str | Path) -> Path:
    """``fcot report RUN_DIR``: the report of a run folder whose evaluate stage finished; returns report.html."""
    folder = RunFolder(run_dir)
    if not folder.stage_file("evaluate").is_file():
        raise FcotError(
            f"{folder.path} holds no finished fcot distill run (no {folder.stage_file('evaluate')}); give the "
            f"--run_dir of a finished run, or finish this one with the same fcot distill command"
        )
    write_report(folder.path)
    return folder.report_html
