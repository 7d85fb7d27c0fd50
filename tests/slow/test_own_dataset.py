"""``fcot task`` and ``fcot distill --dataset`` end to end on a user's own data: local files, a Hub dataset id, other
students, planted duplicates of test questions (the checks of the data: tests/tasks/test_own_dataset.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.answer_server import answer_server, teacher_args
from helpers.own_data import choice_rows, number_rows, text_rows, write_jsonl, yes_no_rows
from helpers.paths import REPO

from fcot_plugin.cli.fcot import main
from fcot_plugin.pipeline.settings import OwnDataArguments
from fcot_plugin.tasks.answer_types import get_answer_type
from fcot_plugin.tasks.own_data import build_task


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
                push_to_hub=True,
                hub_model_id=f"user/{tiny_model.name}-fcot-parity",
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
