"""fcot distill --epochs N end to end: the epoch chosen on validation, both test numbers reported, and an interrupted
selection resumed (the unit tests: tests/pipeline/test_epoch_selection.py)."""

from __future__ import annotations

import json
import re

import pytest
from helpers.runs import tiny_args

from fcot_plugin.curation.responses import teacher_responses
from fcot_plugin.pipeline import validation
from fcot_plugin.pipeline.distill import distill
from fcot_plugin.pipeline.run_folder import RunFolder
from fcot_plugin.tasks.registry import load_rows


@pytest.mark.slow
def test_epochs_are_chosen_on_validation_and_both_test_numbers_are_reported(tiny_model, tmp_path, caplog, monkeypatch):
    run_dir = tmp_path / "run"
    caplog.set_level("INFO")
    distill(tiny_args(tiny_model, run_dir, epochs=3, validation_size=3, validation_seed=7, baselines=False))
    folder = RunFolder(run_dir)

    # the slice: seeded, recorded, drawn from the train split, never trained on, disjoint from the test split
    recorded = json.loads((run_dir / "data" / "validation.json").read_text())
    held_out = set(recorded["sample_index"])
    assert len(held_out) == 3 and recorded["validation_seed"] == 7 and recorded["pool"] == 12
    responses, _ = teacher_responses("coin_flip", "paper", question_limit=12)
    assert held_out == set(validation.carve({item.sample_index for item in responses}, 3, 7))
    from datasets import load_from_disk

    trained = set(load_from_disk(str(run_dir / "data"))["train"]["sample_index"])
    assert trained and not trained & held_out
    train_questions = {row["sample_index"]: row["question"] for row in load_rows("coin_flip", "train")}
    test_questions = {row["question"] for row in load_rows("coin_flip", "test")}
    rows = [json.loads(line) for line in (run_dir / "data" / "validation.jsonl").read_text().splitlines()]
    assert all(train_questions[row["sample_index"]] == row["question"] for row in rows)
    assert not {row["question"] for row in rows} & test_questions
    assert folder.results("curate")["stats"]["held_out"] == 3

    # one validation score per epoch, each lm-eval'd on the 3 held-out questions; the chosen one is the argmax
    selection = folder.results("train")["selection"]
    curve = selection["curve"]
    assert [entry["epoch"] for entry in curve] == [1, 2, 3] and {entry["n"] for entry in curve} == {3}
    best = max(entry["accuracy"] for entry in curve)
    assert selection["chosen_epoch"] == next(entry["epoch"] for entry in curve if entry["accuracy"] == best)
    assert selection["last_epoch"] == 3
    assert len(re.findall(r"validation: epoch \d/3 accuracy [\d.]+ on 3 held-out questions", caplog.text)) == 3
    for entry in curve:
        (results_file,) = (run_dir / "validation" / f"epoch-{entry['epoch']}").rglob("results_*.json")
        assert json.loads(results_file.read_text())["results"]["fcot_coin_flip"]["acc,fcot"] == entry["accuracy"]
    checkpoints = {path.name for path in (run_dir / "student").glob("checkpoint-*")}
    assert len(checkpoints) == len({selection["chosen_epoch"], 3})  # the others were deleted
    kept = list((run_dir / "student").glob("checkpoint-*"))
    assert all((path / "model.safetensors").is_file() and not (path / "optimizer.pt").exists() for path in kept)
    assert f"epoch {selection['chosen_epoch']} of 3" in (run_dir / "student" / "README.md").read_text()

    # the report: both test numbers, labelled, and the per-epoch plot
    report = json.loads((run_dir / "report.json").read_text())
    names = {row["key"]: row["name"] for row in report["rows"] if row["source"].startswith("eval/")}
    assert names == {
        "student": f"student, Fine-tune-CoT (ours), validation-chosen epoch ({selection['chosen_epoch']})",
        "student_last": "student, Fine-tune-CoT (ours), last epoch (3)",
    }
    markdown = (run_dir / "report.md").read_text()
    assert all(f"| {name} | test |" in markdown for name in names.values())
    assert [entry["accuracy"] for entry in report["epochs"]["curve"]] == [entry["accuracy"] for entry in curve]
    assert (
        run_dir / "epochs.png"
    ).stat().st_size > 1000 and "![validation accuracy per epoch](epochs.png)" in markdown

    # a new validation size carves a new slice: curation and everything after it run again. (Here the last epoch
    # wins, as a trained student's curve may: one test evaluation, reported under both labels.)
    caplog.clear()
    monkeypatch.setattr(validation, "choose", lambda curve: curve[-1])
    distill(tiny_args(tiny_model, run_dir, epochs=3, validation_size=2, validation_seed=7, baselines=False))
    assert "curate: settings changed (validation_size: 3.0 -> 2.0), running it again" in caplog.text
    assert caplog.text.count("skipped") == 1  # the teacher only
    assert len(json.loads((run_dir / "data" / "validation.json").read_text())["sample_index"]) == 2
    assert {entry["n"] for entry in RunFolder(run_dir).results("train")["selection"]["curve"]} == {2}
    rows = {row["key"]: row for row in json.loads((run_dir / "report.json").read_text())["rows"]}
    assert rows["student"]["name"].endswith("validation-chosen epoch (3)") and rows["student_last"]["name"].endswith(
        "last epoch (3)"
    )
    assert (
        rows["student"]["accuracy"] == rows["student_last"]["accuracy"]
        and not (run_dir / "eval/student_last").exists()
    )
    assert len(list((run_dir / "student").glob("checkpoint-*"))) == 1  # the last, which is also the chosen


@pytest.mark.slow
def test_an_interrupted_selection_resumes_without_scoring_an_epoch_twice(tiny_model, tmp_path, monkeypatch):
    from fcot_plugin.pipeline import scoring  # every student evaluation goes through its scorer

    run_dir = tmp_path / "run"
    real_run_lm_eval = scoring.run_lm_eval
    calls = []

    def interrupted_at_epoch_two(*args, **kwargs):
        calls.append(kwargs["output_path"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_lm_eval(*args, **kwargs)

    args = tiny_args(tiny_model, run_dir, train_limit=8, epochs=2, validation_size=2, baselines=False)
    monkeypatch.setattr(scoring, "run_lm_eval", interrupted_at_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        distill(args)
    assert set(RunFolder(run_dir).stage_records()) == {"teacher", "curate"}

    monkeypatch.setattr(scoring, "run_lm_eval", real_run_lm_eval)
    distill(args)
    selection = RunFolder(run_dir).results("train")["selection"]
    assert [entry["epoch"] for entry in selection["curve"]] == [1, 2]
    assert len(list((run_dir / "validation" / "epoch-1").rglob("results_*.json"))) == 1  # reused, not repeated
    assert (run_dir / "report.md").is_file()
