"""The paper's answer rules, checked on hand-made cases and on the paper's own released teacher outputs."""

from __future__ import annotations

import json

import pytest

from fcot_plugin.tasks.answers import extract_answer, is_correct, normalize_gold
from fcot_plugin.tasks.prompts import truncate_at_stop
from fcot_plugin.tasks.registry import data_dir

# Teacher accuracy of text-davinci-002 zero-shot-CoT reported by the paper (over all released completions).
PAPER_TEACHER_ACCURACY = {
    "single_eq": 81.50,
    "addsub": 76.71,
    "multiarith": 78.79,
    "svamp": 64.20,
    "date_understanding": 67.58,
    "tracking_shuffled_objects": 53.20,
    "last_letter_concatenation": 57.71,
    "coin_flip": 90.04,
    "strategy_qa": 53.45,
}


@pytest.mark.parametrize("task", sorted(PAPER_TEACHER_ACCURACY))
def test_rescoring_released_teacher_completions_reproduces_the_paper(task):
    path = data_dir() / "teacher_rationales" / "text-davinci-002" / f"{task}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]  # every completion, train and test
    correct = 0
    for row in rows:
        # The response exactly as `--model zscot` returns it: rationale + trigger + stage-2 answer.
        response = row["rationale"] + row["answer_trigger"] + truncate_at_stop(row["answer_completion"])
        correct += is_correct(task, extract_answer(task, response), row["answer"])
    assert round(100 * correct / len(rows), 2) == pytest.approx(PAPER_TEACHER_ACCURACY[task], abs=0.01)


@pytest.mark.parametrize(
    ("task", "text", "expected"),
    [
        # student outputs: first candidate after "-->"
        ("multiarith", " 3 + 4 = 7 apples. --> 7", "7"),
        ("multiarith", " 1,000 + 200 = 1,200 --> 1,200 and 5", "1200"),
        ("gsm8k", " so 5 - 2 = 3 --> -3", "-3"),
        ("aqua", " Option B is wrong. --> C", "C"),
        ("date_understanding", " --> F", "F"),
        ("tracking_shuffled_objects", " Bob has the D ball --> B", "B"),
        ("coin_flip", " The coin was flipped twice. --> Yes.", "yes"),
        ("strategy_qa", " --> no", "no"),
        ("last_letter_concatenation", ' The letters are "y", "a". --> "ya jo".', "yajo"),
        # no prefix: the last candidate
        ("multiarith", " 3 + 4 = 7 then 7 * 2 = 14", "14"),
        # zscot responses: first candidate after the last trigger
        ("coin_flip", " Therefore, the answer is no. Flip.\nTherefore, the answer is yes, then no.", "yes"),
        ("svamp", " 2 + 2 = 4\nTherefore, the answer (arabic numerals) is 4.0 cats, not 5", "4.0"),
        ("commonsense_qa", " It is (B).\n Therefore, among A through E, the answer is (D).", "D"),
        ("last_letter_concatenation", ' y, a\nTherefore, the answer is "ya".', "ya"),
    ],
)
def test_extract_answer(task, text, expected):
    assert extract_answer(task, text) == expected


@pytest.mark.parametrize("text", ["", None, "no numbers here -->", "Therefore, the answer is unknown."])
def test_extract_answer_without_a_candidate_is_none(text):
    assert extract_answer("multiarith", text) is None


def test_no_prefix_first_is_the_rule_for_answer_only_outputs():
    assert extract_answer("multiarith", " 12 apples, not 13", no_prefix="first") == "12"
    assert extract_answer("multiarith", " 12 apples, not 13", no_prefix="last") == "13"


@pytest.mark.parametrize(
    ("task", "prediction", "gold", "expected"),
    [
        ("single_eq", "43", "43.0", True),
        ("svamp", "43.0000001", "43.0", True),
        ("addsub", "43.1", "43", False),
        ("multiarith", "39.0", "39", False),  # exact strings, as the authors compared
        ("gsm8k", "1200", "1,200", True),
        ("strategy_qa", "yes", "Yes", True),
        ("last_letter_concatenation", "YaJo", "yajo", False),  # case-sensitive
        ("coin_flip", None, "yes", False),
    ],
)
def test_is_correct(task, prediction, gold, expected):
    assert is_correct(task, prediction, gold) is expected


def test_non_numeric_gold_is_a_clear_error():
    with pytest.raises(ValueError, match="gold answer 'forty' is not a number"):
        normalize_gold("multiarith", "forty")


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown fcot task 'multi_arith'.*multiarith"):
        extract_answer("multi_arith", "--> 3")
