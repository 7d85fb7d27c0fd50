"""The paper's published accuracies, read from ``data/paper_results.csv`` for side-by-side reports.

The numbers are data, not code: one CSV row per table cell (student, method, task, accuracy in percent, the
paper table it comes from). Where they were transcribed from, and the choices made, are in ``data/SOURCES.md``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

from fcot_plugin.tasks.registry import data_dir

RESULTS_FILE = "paper_results.csv"


@dataclass(frozen=True)
class PaperResult:
    """One row of a published table: a student (or the teacher) under one method."""

    student: str  # e.g. "GPT-3 ada (0.3B)", "GPT-2 Small (124M)", or "teacher: text-davinci-002"
    method: str  # "random", "zero-shot", "zero-shot-cot", "few-shot-cot", "vanilla", "fine-tune-cot", ...
    accuracy: dict[str, float]  # task key -> accuracy in percent, only the tasks the table reports
    source: str  # the paper table's LaTeX label (see data/SOURCES.md)


@cache
def paper_results() -> tuple[PaperResult, ...]:
    """Every published row, in the order of the paper's tables (one ``PaperResult`` per student and method)."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    with (data_dir() / RESULTS_FILE).open(newline="", encoding="utf-8") as handle:
        for cell in csv.DictReader(handle):
            key = (cell["student"], cell["method"], cell["table"])
            rows.setdefault(key, {})[cell["task"]] = float(cell["accuracy"])
    return tuple(PaperResult(student, method, accuracy, table) for (student, method, table), accuracy in rows.items())


def results_for(task: str) -> list[PaperResult]:
    """The published rows that report ``task`` (a dataset key such as ``"multiarith"``), in table order."""
    return [row for row in paper_results() if task in row.accuracy]
