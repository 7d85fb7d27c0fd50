"""The paper's published numbers, read from fcot_plugin/data/paper_results.csv (provenance in data/SOURCES.md)."""

from __future__ import annotations

import csv

import pytest

from fcot_plugin.tasks.paper_results import RESULTS_FILE, paper_results, results_for
from fcot_plugin.tasks.registry import TASKS, data_dir

# Cells of the paper's tables, as listed under "Spot checks" in fcot_plugin/data/SOURCES.md.
SPOT_CHECKS = [
    ("teacher: text-davinci-002", "zero-shot-cot", "multiarith", 78.79),
    ("teacher: text-davinci-002", "zero-shot-cot", "coin_flip", 90.04),
    ("GPT-3 curie (6.7B)", "fine-tune-cot", "coin_flip", 98.67),
    ("GPT-2 Small (124M)", "fine-tune-cot", "coin_flip", 77.33),
    ("GPT-2 Small (124M)", "fine-tune-cot", "last_letter_concatenation", 4.67),
    ("GPT-2 Small (124M)", "fine-tune-cot", "multiarith", 8.33),
    ("T5-Small (60M)", "fine-tune-cot", "coin_flip", 100.00),
    ("GPT-2 Large (774M)", "fine-tune-cot (diverse D=64)", "multiarith", 17.78),
    ("random guess", "random", "aqua", 20.00),
]


@pytest.mark.parametrize(("student", "method", "task", "value"), SPOT_CHECKS)
def test_spot_checks_match_the_paper(student, method, task, value):
    (row,) = [row for row in results_for(task) if row.student == student and row.method == method]
    assert row.accuracy[task] == value
    assert f"{value:.2f}" in (data_dir() / "SOURCES.md").read_text()


def test_every_cell_is_one_known_task_student_and_method():
    with (data_dir() / RESULTS_FILE).open(newline="") as handle:
        cells = list(csv.DictReader(handle))
    keys = [(cell["student"], cell["method"], cell["task"]) for cell in cells]
    assert len(keys) == len(set(keys)) == 708
    assert {cell["task"] for cell in cells} == set(TASKS)
    assert all(0 <= float(cell["accuracy"]) <= 100 and len(cell["accuracy"].split(".")[1]) == 2 for cell in cells)
    assert {cell["table"] for cell in cells} <= {
        "all",
        "tab:performance",
        "tab:performance_oai",
        "tab:performance+tab:performance_oai",
        "tab:performance_t5",
        "tab:performance_flan_t5",
        "tab:performance_gpt2",
    }


def test_rows_keep_table_order_and_dashes_stay_missing():
    rows = paper_results()
    assert len(rows) == 75 and rows[0].student == "random guess"
    assert [row.method for row in results_for("gsm8k") if "diverse" in row.method] == []  # a `-` in the paper
    assert "tracking_shuffled_objects" not in next(row for row in rows if row.method == "few-shot-cot").accuracy
