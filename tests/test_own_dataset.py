"""``fcot task`` and ``fcot distill --dataset``: a user's own data as a Fine-tune-CoT task, end to end.

Bad data is one line before any teacher runs; the generated task folder is a real lm-eval task that plain
``lm_eval --include_path`` scores; curation drops train questions the test split asks; the teacher is a real
OpenAI-compatible server over HTTP (``answer_server``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.answer_server import answer_server, teacher_args
from helpers.one_line import one_line_error
from helpers.own_data import choice_rows, number_rows, text_rows, write_jsonl, yes_no_rows
from helpers.paths import REPO

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


def plain_lm_eval(model: Path, tasks_dir: Path, task: str, cwd: Path) -> dict:
    out = cwd / "lm-eval-out"
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model}",
        "--include_path",
        str(tasks_dir),
        "--tasks",
        task,
        "--limit",
        "2",
        "--gen_kwargs",
        "max_gen_toks=4",
        "--output_path",
        str(out),
    ]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())


# ---------------------------------------------------------------------- end to end, one per answer type

E2E = {  # answer type: (rows, file name, extra options)
    "number": (number_rows(), "apples.jsonl", []),
    "choice": (
        choice_rows(),
        "pick.jsonl",
        ["--question_field", "q", "--answer_field", "a", "--choices_field", "options"],
    ),
    "yes_no": (yes_no_rows(), "parity.parquet", []),
    "text": (text_rows(), "items.csv", []),
}


def write_source(path: Path, rows: list[dict]) -> Path:
    import datasets

    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    dataset = datasets.Dataset.from_list(rows)
    dataset.to_parquet(str(path)) if path.suffix == ".parquet" else dataset.to_csv(str(path), index=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("answer_type", sorted(E2E))
def test_distill_own_dataset_end_to_end(answer_type, tiny_model, tmp_path, caplog):
    from fcot_plugin.pipeline.distill import distill
    from fcot_plugin.pipeline.settings import DistillArguments

    rows, file_name, extra = E2E[answer_type]
    source = write_source(tmp_path / file_name, rows)
    options = dict(zip(extra[::2], extra[1::2], strict=True))
    own = {key.lstrip("-"): value for key, value in options.items()}
    task = build_task(OwnDataArguments(dataset=str(source), answer_type=answer_type, **own))
    test_questions = {row["question"] for row in task.splits["test"]}
    train = task.splits["train"]
    answers = {row["question"]: row["answer"] for split in task.splits.values() for row in split}
    run_dir = tmp_path / "run"
    settings = dict(
        dataset=str(source),
        answer_type=answer_type,
        **own,
        student=str(tiny_model),
        run_dir=str(run_dir),
        epochs=1,
        batch_size=4,
        precision="fp32",
        max_gen_toks=8,
        eval_batch_size=4,
        eval_limit=2,
        baselines=False,
        device="cpu",
    )
    with answer_server(answers, wrong={train[0]["question"]}) as url:
        distill(DistillArguments(teacher=teacher_args(url), **settings))
    name = task.name
    stats = json.loads((run_dir / "stages" / "curate.json").read_text())["stats"]
    assert stats["correct"] == stats["rows"] == len(train) - 1 and stats["overlap"] == 0
    assert not test_questions & {row["question"] for row in train}
    samples = next((run_dir / "teacher").rglob("samples_*.jsonl")).read_text()
    assert get_answer_type(task.answer_type).trigger in samples  # Kojima's trigger of the type
    report = json.loads((run_dir / "report.json").read_text())
    assert any(row["key"] == "student" and row["n"] == 2 for row in report["rows"])
    dataset_card = (run_dir / "data" / "README.md").read_text()
    model_card = (run_dir / "student" / "README.md").read_text()
    for card in (dataset_card, model_card):
        assert "0 rows overlapping the test split removed" in card and str(source) in card
        assert "license: other" in card and "answer_type:" in card and "lm_eval:" in card
    assert f"--include_path {(run_dir / 'tasks').resolve()} --tasks fcot_{name}" in model_card
    if answer_type == "number":  # a second run reuses every stage; plain lm-eval scores the task from elsewhere
        caplog.set_level("INFO")
        with answer_server(answers) as url:
            distill(DistillArguments(teacher=teacher_args(url), **settings))
        assert caplog.text.count("done in an earlier run with the same settings and inputs, skipped") == 5
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        results = plain_lm_eval(run_dir / "student", run_dir / "tasks", f"fcot_{name}", elsewhere)
        assert results["n-samples"][f"fcot_{name}"]["effective"] == 2


@pytest.mark.slow
def test_planted_duplicates_of_test_questions_are_not_trained_on(tiny_model, tmp_path):
    from fcot_plugin.pipeline.distill import distill
    from fcot_plugin.pipeline.settings import DistillArguments

    folder = tmp_path / "planted"
    folder.mkdir()
    train, test = number_rows(10), number_rows(14)[10:]
    planted = [{"question": row["question"].upper() + "  ", "answer": row["answer"]} for row in test[:3]]
    write_jsonl(folder / "train.jsonl", train + planted)
    write_jsonl(folder / "test.jsonl", test)
    task = build_task(OwnDataArguments(dataset=str(folder), answer_type="number", test_split="test"))
    answers = {row["question"]: row["answer"] for split in task.splits.values() for row in split}
    run_dir = tmp_path / "run"
    with answer_server(answers) as url:
        distill(
            DistillArguments(
                dataset=str(folder),
                answer_type="number",
                test_split="test",
                teacher=teacher_args(url),
                student=str(tiny_model),
                run_dir=str(run_dir),
                epochs=1,
                batch_size=4,
                precision="fp32",
                max_gen_toks=8,
                eval_batch_size=4,
                eval_limit=2,
                baselines=False,
                device="cpu",
            )
        )
    stats = json.loads((run_dir / "stages" / "curate.json").read_text())["stats"]
    assert stats["overlap"] == 3 and stats["rows"] == 10
    assert "3 rows overlapping the test split removed" in (run_dir / "data" / "README.md").read_text()


# ---------------------------------------------------------------------- a Hub dataset id (the local test Hub)


@pytest.mark.slow
def test_hub_dataset_id_with_its_own_test_split_revision_and_license(hub, tmp_path, capsys):
    import datasets
    from huggingface_hub import DatasetCard, HfApi

    splits = {"train": yes_no_rows(10), "validation": yes_no_rows(14)[10:]}
    datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}).push_to_hub(
        "user/parity"
    )
    DatasetCard("---\nlicense: apache-2.0\n---\n# Parity\n").push_to_hub("user/parity", repo_type="dataset")
    out = tmp_path / "tasks"
    main(
        [
            "task",
            "--dataset",
            "user/parity",
            "--answer_type",
            "yes_no",
            "--test_split",
            "validation",
            "--out",
            str(out),
        ]
    )
    assert "fcot_parity (yes_no): 10 train and 4 test questions" in capsys.readouterr().out
    source = json.loads((out / "fcot_task.json").read_text())["provenance"]
    assert source["revision"] == HfApi().dataset_info("user/parity").sha and source["license"] == "apache-2.0"
    assert source["test"] == "the source's 'validation' split"
    assert [row["answer"] for row in map(json.loads, (out / "data" / "test.jsonl").read_text().splitlines())] == [
        "yes",
        "no",
        "yes",
        "no",
    ]


@pytest.mark.slow
def test_distill_hub_dataset_and_push_names_it_in_the_model_index(hub, tiny_model, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard, HfApi, ModelCard

    from fcot_plugin.pipeline.distill import distill
    from fcot_plugin.pipeline.settings import DistillArguments

    rows = [{**row, "answer": "yes" if row["answer"] else "no"} for row in yes_no_rows(14)]
    datasets.Dataset.from_list(rows).push_to_hub("user/parity")
    DatasetCard("---\nlicense: apache-2.0\n---\n# Parity\n").push_to_hub("user/parity", repo_type="dataset")
    revision = HfApi().dataset_info("user/parity").sha
    task = build_task(OwnDataArguments(dataset="user/parity", answer_type="yes_no"))
    answers = {row["question"]: row["answer"] for split in task.splits.values() for row in split}
    with answer_server(answers) as url:
        distill(
            DistillArguments(
                dataset="user/parity",
                answer_type="yes_no",
                teacher=teacher_args(url),
                student=str(tiny_model),
                run_dir=str(tmp_path / "run"),
                epochs=1,
                batch_size=4,
                precision="fp32",
                max_gen_toks=8,
                eval_batch_size=4,
                eval_limit=2,
                baselines=False,
                device="cpu",
                push_to_hub="user",
            )
        )
    name = f"{tiny_model.name}-fcot-parity"
    card = ModelCard.load(f"user/{name}")
    (result,) = card.data.eval_results
    assert (result.dataset_type, result.dataset_revision) == ("user/parity", revision)
    assert result.metric_name == "fcot_parity acc (first 2 questions)"
    data_card = DatasetCard.load(f"user/{name}-data", repo_type="dataset")
    for pushed in (card, data_card):
        assert pushed.data.license == "apache-2.0" and pushed.data.fcot["source"]["revision"] == revision
        assert "0 rows overlapping the test split removed" in pushed.text


@pytest.mark.slow
@pytest.mark.parametrize("student", ["t5_epochs", "lora_restart", "diverse"])
def test_distill_own_dataset_with_other_students(student, tiny_model, tiny_t5, tmp_path, caplog):
    """A T5 student with the epoch chosen on validation, a LoRA student run again with --restart, and diverse
    reasoning (D=2 at T=0.7)."""
    from fcot_plugin.pipeline.distill import distill
    from fcot_plugin.pipeline.settings import DistillArguments

    source = write_jsonl(tmp_path / "apples.jsonl", number_rows(16))
    task = build_task(OwnDataArguments(dataset=str(source), answer_type="number"))
    answers = {row["question"]: row["answer"] for split in task.splits.values() for row in split}
    settings = dict(
        dataset=str(source),
        answer_type="number",
        run_dir=str(tmp_path / "run"),
        batch_size=4,
        precision="fp32",
        max_gen_toks=8,
        eval_batch_size=4,
        eval_limit=2,
        baselines=False,
        device="cpu",
    )
    if student == "t5_epochs":
        settings.update(student=str(tiny_t5), epochs=2, validation_size=2)
    elif student == "lora_restart":
        settings.update(student=str(tiny_model), epochs=1, lora=True)
    else:
        settings.update(student=str(tiny_model), epochs=1, diverse=2)
    with answer_server(answers) as url:
        run_dir = distill(DistillArguments(teacher=teacher_args(url), **settings))
        if student == "lora_restart":
            caplog.set_level("INFO")
            distill(DistillArguments(teacher=teacher_args(url), restart=True, **settings))
            assert "--restart: earlier outputs moved to" in caplog.text
            assert (run_dir / "tasks" / "fcot_apples.yaml").is_file() and list((run_dir / ".previous").glob("*/tasks"))
    stages = {path.stem: json.loads(path.read_text()) for path in (run_dir / "stages").glob("*.json")}
    if student == "t5_epochs":
        assert [point["n"] for point in stages["train"]["selection"]["curve"]] == [2, 2]
    if student == "diverse":  # two samples of each train question, the same text from this teacher: one kept
        stats = stages["curate"]["stats"]
        assert stats["rationales"] == 2 * stats["questions"] and stats["duplicates"] == stats["questions"]
        assert stats["rows"] == stats["questions"]
    assert stages["evaluate"]["student"]["n"] == 2
