"""fcot distill end to end on a tiny model, offline: artefacts, report, resume, and failures."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from fcot_plugin import pipeline
from fcot_plugin.cli import main as fcot
from fcot_plugin.configs import DistillArguments
from fcot_plugin.curate import CurationError
from fcot_plugin.pipeline import PipelineError, distill


def tiny_args(tiny_model: Path, run_dir: Path, **overrides) -> DistillArguments:
    settings = {
        "task": "coin_flip",
        "student": str(tiny_model),
        "run_dir": str(run_dir),
        "train_limit": 12,
        "eval_limit": 4,
        "epochs": 1,
        "batch_size": 4,
        "bf16": False,
        "max_gen_toks": 8,
        "eval_batch_size": 4,
        "device": "cpu",
    }
    return DistillArguments(**{**settings, **overrides})


def test_distill_end_to_end_then_resume(tiny_model, tmp_path, caplog):
    run_dir = tmp_path / "run"
    distill(tiny_args(tiny_model, run_dir))

    artefacts = ["config.json", "data/README.md", "data/dataset_dict.json", "train.yaml", "student/model.safetensors",
                 "student/README.md", "report.md", "report.json", "accuracy.png"]  # fmt: skip
    for artefact in artefacts:
        assert (run_dir / artefact).is_file(), artefact
    assert {path.stem for path in (run_dir / "stages").glob("*.json")} == {"teacher", "curate", "train", "evaluate",
                                                                           "report"}  # fmt: skip
    stats = json.loads((run_dir / "stages" / "curate.json").read_text())["stats"]
    assert stats["questions"] == 12 and stats["rows"] == stats["correct"] <= 12

    # every accuracy in the report is the one in lm-eval's results file
    report = json.loads((run_dir / "report.json").read_text())
    ours = [row for row in report["rows"] if row["source"].startswith("eval/")]
    assert {row["name"] for row in ours} == set(pipeline_labels())
    for row in ours:
        results = json.loads((run_dir / row["source"]).read_text())
        (task,) = results["results"]
        assert row["accuracy"] == results["results"][task]["acc,fcot"] and row["n"] == 4
        assert f"| {row['name']} | test | {100 * row['accuracy']:.2f} | 4 |" in (run_dir / "report.md").read_text()
    teacher = next(row for row in report["rows"] if row["name"].startswith("teacher"))
    assert teacher["accuracy"] == pytest.approx(0.9, abs=0.1)  # text-davinci-002 on the coin_flip test split
    assert any(row["method"] == "fine-tune-cot" for row in report["paper"])
    assert "first 4 test questions" in (run_dir / "report.md").read_text()

    # a second run finds every stage done and repeats nothing
    before = {path.name: path.stat().st_mtime_ns for path in (run_dir / "stages").glob("*.json")}
    caplog.set_level("INFO")
    distill(tiny_args(tiny_model, run_dir))
    assert before == {path.name: path.stat().st_mtime_ns for path in (run_dir / "stages").glob("*.json")}
    assert caplog.text.count("done in an earlier run, skipped") == 5

    # other settings in the same folder are refused; --restart redoes everything
    with pytest.raises(PipelineError, match=r"other settings \(epochs: 1 -> 2\).*--restart"):
        distill(tiny_args(tiny_model, run_dir, epochs=2))


def pipeline_labels() -> list[str]:
    from fcot_plugin.report import ROW_LABELS

    return list(ROW_LABELS.values())


def test_interrupted_evaluation_resumes_where_it_stopped(tiny_model, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real_run_lm_eval = pipeline.run_lm_eval
    calls = []

    def interrupted_after_first(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_lm_eval(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run_lm_eval", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        distill(tiny_args(tiny_model, run_dir))
    done = {path.stem for path in (run_dir / "stages").glob("*.json")}
    assert done == {"teacher", "curate", "train"}  # evaluate did not finish: no marker, no report
    assert not (run_dir / "report.md").exists()

    calls.clear()
    monkeypatch.setattr(pipeline, "run_lm_eval", real_run_lm_eval)
    distill(tiny_args(tiny_model, run_dir))
    student_results = sorted((run_dir / "eval" / "student").rglob("results_*.json"))
    assert len(student_results) == 1  # the finished student evaluation was reused, not repeated
    assert (run_dir / "report.md").is_file()


def test_disk_full_during_curation_keeps_the_run_consistent(tiny_model, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "data"))

    monkeypatch.setattr(pipeline, "save_dataset", no_space)
    with pytest.raises(PipelineError, match=r"disk is full \(stage curate.*run the same command again"):
        distill(tiny_args(tiny_model, tmp_path / "run"))
    assert {path.stem for path in (tmp_path / "run" / "stages").glob("*.json")} == {"teacher"}


def test_a_teacher_without_usable_rationales_stops_at_curation(tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    args = tiny_args(tiny_model, run_dir, teacher=f"pretrained={tiny_model},answer_max_gen_toks=2",
                     train_limit=3, diverse=2)  # fmt: skip
    with pytest.raises(CurationError, match="none of 6 teacher rationales for 3 questions had a correct answer"):
        distill(args)
    assert {path.stem for path in (run_dir / "stages").glob("*.json")} == {"teacher"}  # the paid-for part is kept
    assert sorted((run_dir / "teacher").rglob("samples_fcot_coin_flip_teacher_*.jsonl"))
    assert not (run_dir / "data").exists()


@pytest.mark.slow
def test_training_through_accelerate_and_deepspeed(tiny_model, tmp_path):
    config = Path(__file__).parent.parent / "ds_configs" / "zero2.yaml"
    run_dir = distill(tiny_args(tiny_model, tmp_path / "run", launcher="accelerate", accelerate_config=str(config),
                                num_processes=1, baselines=False))  # fmt: skip
    assert (run_dir / "student" / "model.safetensors").is_file()
    assert "student, Fine-tune-CoT (ours)" in (run_dir / "report.md").read_text()


def test_bad_arguments_are_clear_messages(tmp_path):
    with pytest.raises(SystemExit, match="unknown fcot task 'coinflip'"):
        fcot(["distill", "--task", "coinflip"])
    with pytest.raises(SystemExit, match="released rationales are greedy"):
        fcot(["distill", "--task", "coin_flip", "--diverse", "4"])
    with pytest.raises(SystemExit, match="the paper released no teacher rationales for 'gsm8k'"):
        fcot(["distill", "--task", "gsm8k", "--run_dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()
    with pytest.raises(SystemExit, match="cannot load the student '/no/such/student'"):
        fcot(["distill", "--task", "coin_flip", "--student", "/no/such/student", "--run_dir", str(tmp_path / "r")])
