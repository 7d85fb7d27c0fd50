"""``fcot task`` and ``fcot distill --dataset``: a user's own data as a Fine-tune-CoT task, end to end.

Bad data is one line before any teacher runs; the generated task folder is a real lm-eval task that plain
``lm_eval --include_path`` scores; curation drops train questions the test split asks; the teacher is a real
OpenAI-compatible server over HTTP (``answer_server``).
"""

from __future__ import annotations

import json

import pytest
from helpers.one_line import one_line_error
from helpers.own_data import choice_rows, number_rows, write_jsonl

from fcot_plugin.cli.fcot import main
from fcot_plugin.curation.decontaminate import remove_overlap
from fcot_plugin.pipeline.settings import OwnDataArguments
from fcot_plugin.tasks.answer_types import get_answer_type
from fcot_plugin.tasks.own_data import build_task

# ---------------------------------------------------------------------- answer types


def test_each_answer_type_declares_trigger_extraction_and_comparison():
    number = get_answer_type("number")
    assert number.trigger == "Therefore, the answer (arabic numerals) is"
    assert number.normalize("$1,200") == "1200" and number.normalize("12 kg") == "12"
    assert number.same("1200.0", "1200") and number.candidates("so 1,200 dollars") == ["1200"]
    choice = get_answer_type("A-D")
    assert choice.trigger == "Therefore, among A through D, the answer is" and choice.candidates("(D) or E") == ["D"]
    with pytest.raises(ValueError, match="not a choice letter A-D"):
        choice.normalize("E")
    assert get_answer_type("yes_no").normalize("True") == "yes"
    text = get_answer_type("text")
    assert text.normalize("Item 3.") == "item 3" and text.candidates(" Item 3. Because") == ["item 3"]


def test_choices_are_rendered_as_the_paper_renders_them(tmp_path):
    source = write_jsonl(tmp_path / "pick.jsonl", choice_rows())
    options = {"question_field": "q", "answer_field": "a", "choices_field": "options"}
    task = build_task(OwnDataArguments(dataset=str(source), answer_type="choice", **options))
    row = task.splits["train"][0] if task.splits["train"][0]["sample_index"] == 0 else task.splits["test"][0]
    assert row["question"] == "Which is larger than 3? Answer choices: (A) 2, (B) 4, (C) 1." and row["answer"] == "B"
    assert task.answer_type == "A-C"


# ---------------------------------------------------------------------- bad data: one line, before any teacher


BAD = [
    ("missing", [{"question": "q1", "answer": "1"}, {"question": "q2"}], "number", [], "row 1 has no 'answer'"),
    (
        "not_number",
        [{"question": "q1", "answer": "1"}, {"question": "q2", "answer": "two"}],
        "number",
        [],
        "row 1: answer 'two' is not a number",
    ),
    (
        "outside",
        [{"question": "q (A) x (B) y", "answer": "C"}],
        "choice",
        [],
        "row 0: answer 'C' is not one of the question's choice letters A-B",
    ),
    (
        "outside_list",
        [{"question": "q", "c": ["x", "y"], "answer": "D"}],
        "choice",
        ["--choices_field", "c"],
        "row 0: answer 'D' is neither a letter A-B nor one of its choices",
    ),
    (
        "dups",
        [{"question": "same", "answer": "yes"}] * 6,
        "yes_no",
        [],
        "every test question also appears in the train split",
    ),
    ("empty", [], "number", [], "cannot read --dataset"),
    ("type", [{"question": "q", "answer": "1"}], "numeric", [], "unknown --answer_type 'numeric'"),
]


@pytest.mark.parametrize(("name", "rows", "answer_type", "extra", "expected"), BAD, ids=[case[0] for case in BAD])
def test_bad_data_is_one_line_naming_the_row_and_the_fix(tmp_path, capsys, name, rows, answer_type, extra, expected):
    source = write_jsonl(tmp_path / f"{name}.jsonl", rows)
    argv = ["task", "--dataset", str(source), "--answer_type", answer_type, *extra, "--out", str(tmp_path / "out")]
    one_line_error(capsys, main, argv, "fcot", expected)
    assert not (tmp_path / "out").exists()


def test_unreadable_file_and_empty_split_are_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    one_line_error(
        capsys,
        main,
        ["task", "--dataset", str(broken), "--answer_type", "number", "--out", str(tmp_path / "o")],
        "fcot",
        "cannot read --dataset",
    )
    folder = tmp_path / "splits"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", number_rows(4))
    (folder / "test.jsonl").write_text("\n")
    one_line_error(
        capsys,
        main,
        [
            "task",
            "--dataset",
            str(folder),
            "--answer_type",
            "number",
            "--test_split",
            "test",
            "--out",
            str(tmp_path / "o"),
        ],
        "fcot",
        "",
    )


def test_task_and_dataset_are_mutually_exclusive(tmp_path, capsys):
    source = write_jsonl(tmp_path / "n.jsonl", number_rows())
    one_line_error(
        capsys,
        main,
        ["distill", "--task", "coin_flip", "--dataset", str(source), "--answer_type", "number"],
        "fcot",
        "not both",
    )
    one_line_error(
        capsys,
        main,
        ["distill", "--dataset", str(source), "--answer_type", "number"],
        "fcot",
        "--dataset needs a --teacher model",
    )


# ---------------------------------------------------------------------- decontamination


def test_remove_overlap_drops_normalised_test_questions():
    rows = ["What is 2+2?", "what is  2+2", "Other question"]
    kept, removed = remove_overlap(rows, ["WHAT IS 2+2?!"], question=lambda row: row)
    assert kept == ["Other question"] and removed == rows[:2]


# ---------------------------------------------------------------------- the task folder and plain lm-eval


def test_fcot_task_writes_a_folder_plain_lm_eval_reads_from_anywhere(tmp_path, capsys):
    source = tmp_path / "sums.csv"
    source.write_text("question,answer\n" + "".join(f'"What is {i} + {i}?","{2 * i:,}"\n' for i in range(20)))
    main(["task", "--dataset", str(source), "--answer_type", "number", "--out", str(tmp_path / "tasks")])
    assert "fcot_sums (number): 16 train and 4 test questions" in capsys.readouterr().out
    described = json.loads((tmp_path / "tasks" / "fcot_task.json").read_text())
    assert described["provenance"]["test"] == "a seeded 0.2 fraction of 'train'" and described["provenance"]["sha256"]
    names = {path.stem for path in (tmp_path / "tasks").glob("*.yaml")}
    assert {
        "fcot_sums",
        "fcot_sums_teacher",
        "fcot_sums_teacher_diverse",
        "fcot_sums_zeroshot",
        "fcot_sums_zscot",
        "fcot_sums_vanilla",
    } <= names

    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    tasks = manager.load_task_or_group(["fcot_sums", "fcot_sums_teacher"])
    assert len(list(tasks["fcot_sums"].eval_docs)) == 4 and len(list(tasks["fcot_sums_teacher"].eval_docs)) == 16
