"""``report.html``: one self-contained page of a run folder, for seeing *why* a student is good or bad.

Everything on the page is read from the run folder's own records, never computed again: the accuracy rows of
``report.json``, the plots, curation's per-rationale decisions (``data/curation_decisions.jsonl``) and lm-eval's
samples files of each test evaluation (the same files the accuracies come from). The data travels as one JSON
blob inside the page and is filtered and paged by the page's own script, so 10,000 rationales stay fast; the page
needs no server and no network.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path
from typing import Any

from fcot_plugin.core.files import write_text_atomic
from fcot_plugin.curation.decisions import read_decisions
from fcot_plugin.pipeline.run_folder import RunFolder

TEMPLATE = "report.html"
DATA_MARKER = "__FCOT_REPORT_DATA__"
#: evaluations of the trained student; the others (zeroshot, zscot) are the student before training
AFTER_TRAINING = ("student", "student_last")
#: the settings in the page's header
CONFIG_SHOWN = "task teacher student diverse teacher_temperature epochs learning_rate batch_size precision device"
CONFIG_SHOWN += " dataset_format eval_limit"


def _text(value: Any) -> str | None:
    """The first string in lm-eval's nested ``resps``/``filtered_resps`` (``[[text]]`` or ``[text]``)."""
    while isinstance(value, list | tuple):
        if not value:
            return None
        value = value[0]
    return None if value is None else str(value)


def samples_of(run_dir: Path, results_source: str, task: str) -> list[dict[str, Any]]:
    """The lm-eval samples written with the results file ``results_source`` (same folder, same timestamp)."""
    results = run_dir / results_source
    stamp = results.stem.removeprefix("results_")
    path = results.parent / f"samples_{task}_{stamp}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_questions(folder: RunFolder, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Test questions with each evaluation's output, answer and verdict, as lm-eval logged them."""
    evaluations = data["stages"].get("evaluate", {})
    questions: dict[int, dict[str, Any]] = {}
    for row in data["rows"]:
        record = evaluations.get(row["key"])
        if not isinstance(record, dict) or "task" not in record:
            continue
        for sample in samples_of(folder.path, row["source"], record["task"]):
            doc = sample["doc"]
            index = doc.get("sample_index", sample["doc_id"])
            gold = str(doc.get("answer", sample.get("target")))
            new = {"split": "test", "id": index, "question": doc["question"], "gold": gold, "rationales": []}
            entry = questions.setdefault(index, {**new, "outputs": []})
            output = {
                "key": row["key"],
                "label": row["name"],
                "after": row["key"] in AFTER_TRAINING,
                "text": _text(sample.get("resps")),
                "predicted": _text(sample.get("filtered_resps")),
                "correct": bool(sample.get("acc")),
            }
            entry["outputs"].append(output)
    return [questions[index] for index in sorted(questions)]


def train_questions(folder: RunFolder) -> list[dict[str, Any]]:
    """Train questions with every teacher rationale and curation's reason for it."""
    questions = []
    for record in read_decisions(folder.data_dir) or []:
        rationales = [
            {"d": d, "text": item["response"], **{key: item[key] for key in ("predicted", "correct", "reason")}}
            for d, item in enumerate(record["rationales"])
        ]
        held_out = any(item["reason"] == "held_out" for item in rationales)
        question = {"split": "validation" if held_out else "train", "id": record["sample_index"]}
        question.update(question=record["question"], gold=str(record["answer"]), rationales=rationales, outputs=[])
        questions.append(question)
    return questions


def _png(path: Path) -> str | None:
    return base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


def page_data(folder: RunFolder, data: dict[str, Any]) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready object."""
    return {
        "config": {key: data["config"].get(key) for key in CONFIG_SHOWN.split()},
        "rows": data["rows"],
        "paper": data["paper"],
        "epochs": data.get("epochs"),
        "curation": data["stages"].get("curate", {}).get("stats", {}),
        "plots": {"accuracy": _png(folder.plot), "epochs": _png(folder.epochs_plot)},
        "questions": train_questions(folder) + test_questions(folder, data),
        # answer-only (vanilla) data has no rationales, so no per-rationale record to show
        "decisions_recorded": read_decisions(folder.data_dir) is not None,
    }


def render_html(page: dict[str, Any]) -> str:
    """The template with the data blob inlined (``</`` escaped, so no text in it can close the script tag)."""
    template = (resources.files("fcot_plugin") / "templates" / TEMPLATE).read_text(encoding="utf-8")
    blob = json.dumps(page, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return template.replace(DATA_MARKER, blob)


def write_html(run_dir: str | Path, data: dict[str, Any]) -> Path:
    """``report.html`` of the run folder from the report's data (:func:`fcot_plugin.pipeline.report.collect`)."""
    folder = RunFolder(run_dir)
    write_text_atomic(folder.report_html, render_html(page_data(folder, data)))
    return folder.report_html
