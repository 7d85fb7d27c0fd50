"""fcot distill end to end on a tiny model, offline: artefacts, report, resume, and failures."""

from __future__ import annotations

import errno
import json
import os

import pytest
import yaml
from helpers.runs import tiny_args

from fcot_plugin.core.errors import FcotError
from fcot_plugin.curation.dataset import CurationError
from fcot_plugin.pipeline import distill as pipeline
from fcot_plugin.pipeline.distill import distill
from fcot_plugin.pipeline.run_folder import RunFolder, RunLock
from fcot_plugin.pipeline.stages import PipelineError, baseline_settings


def test_distill_end_to_end_then_resume(tiny_model, tmp_path, caplog):
    run_dir = tmp_path / "run"
    distill(tiny_args(tiny_model, run_dir))

    artefacts = [
        "config.json",
        "data/README.md",
        "data/dataset_dict.json",
        "train.yaml",
        "student/model.safetensors",
        "student/README.md",
        "report.md",
        "report.json",
        "accuracy.png",
    ]
    for artefact in artefacts:
        assert (run_dir / artefact).is_file(), artefact
    assert {path.stem for path in (run_dir / "stages").glob("*.json")} == {
        "teacher",
        "curate",
        "train",
        "evaluate",
        "report",
    }
    assert not list((run_dir / "data").rglob("cache-*.arrow"))  # training's datasets caches stay out of data/
    assert yaml.safe_load((run_dir / "train.yaml").read_text())["train_sampling_strategy"] == "group_by_length"
    assert "| `train_sampling_strategy` | `group_by_length` |" in (run_dir / "student" / "README.md").read_text()
    stats = RunFolder(run_dir).results("curate")["stats"]
    assert stats["questions"] == 12 and stats["rows"] == stats["correct"] <= 12

    # every accuracy in the report is the one in lm-eval's results file
    report = json.loads((run_dir / "report.json").read_text())
    ours = [row for row in report["rows"] if row["source"].startswith(("eval/", "baselines/"))]
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
    assert caplog.text.count("done in an earlier run with the same settings and inputs, skipped") == 5

    # a changed training setting re-trains from scratch (the old checkpoint is moved aside, never resumed) and
    # re-runs everything after training; the teacher, curation and the untrained student's baselines are reused
    old_weights = (run_dir / "student" / "model.safetensors").read_bytes()
    baseline_files = sorted((run_dir / "baselines").rglob("results_*.json"))
    assert [path.parent.parent.name for path in baseline_files] == ["zeroshot", "zscot"]
    caplog.clear()
    distill(tiny_args(tiny_model, run_dir, learning_rate=1e-3))
    assert caplog.text.count("skipped") == 2  # teacher, curate
    assert caplog.text.count("the untrained student was scored in an earlier run with the same settings") == 2
    assert sorted((run_dir / "baselines").rglob("results_*.json")) == baseline_files
    assert "train: settings changed (learning_rate: 0.0003 -> 0.001), running it again" in caplog.text
    assert "resuming from" not in caplog.text
    assert (run_dir / "student" / "model.safetensors").read_bytes() != old_weights
    assert yaml.safe_load((run_dir / "train.yaml").read_text())["learning_rate"] == 1e-3
    (previous,) = (run_dir / ".previous").iterdir()
    assert (previous / "student" / "model.safetensors").read_bytes() == old_weights
    assert not (previous / "baselines").exists()
    assert {row["name"] for row in json.loads((run_dir / "report.json").read_text())["rows"]} == {
        *pipeline_labels(),
        "teacher: text-davinci-002 zero-shot-CoT (released)",
    }
    assert json.loads((run_dir / "config.json").read_text())["learning_rate"] == 1e-3


def pipeline_labels() -> list[str]:
    from fcot_plugin.pipeline.report import ROW_LABELS

    return list(ROW_LABELS.values())


def test_a_baseline_is_reused_only_under_the_settings_it_was_scored_with(tiny_model, tmp_path):
    """Training settings do not touch the untrained student's scores; its own settings, or a cut-short run, do."""
    run = pipeline.Run(tiny_args(tiny_model, tmp_path / "run"))
    out = run.folder.eval_dir("zscot")
    assert out == run.dir / "baselines" / "zscot"
    (out / "lm_eval").mkdir(parents=True)
    (out / "lm_eval" / "results_2026.json").write_text('{"results": {}}')
    assert pipeline.scored_baseline(run, "zscot") is None  # no baseline.json: cut short, moved aside
    assert not out.exists() and (run.folder.previous_dir / run.stamp / "baselines" / "zscot" / "lm_eval").is_dir()

    (out / "lm_eval").mkdir(parents=True)
    (out / "lm_eval" / "results_2026.json").write_text('{"results": {}}')
    (out / "baseline.json").write_text(json.dumps(baseline_settings(run.settings)))
    for changed in ("learning_rate", "epochs", "seed"):  # training settings: reused
        run.settings[changed] = 7
        assert pipeline.scored_baseline(run, "zscot") == ({"results": {}}, out / "lm_eval" / "results_2026.json")
    run.settings["eval_limit"] = 2  # scored on 4 questions, asked for 2: scored again
    assert pipeline.scored_baseline(run, "zscot") is None and not out.exists()


def test_interrupted_evaluation_resumes_where_it_stopped(tiny_model, tmp_path, monkeypatch):
    from fcot_plugin.pipeline import scoring  # every student evaluation goes through its scorer

    run_dir = tmp_path / "run"
    real_run_lm_eval = scoring.run_lm_eval
    calls = []

    def interrupted_after_first(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_lm_eval(*args, **kwargs)

    monkeypatch.setattr(scoring, "run_lm_eval", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        distill(tiny_args(tiny_model, run_dir))
    done = set(RunFolder(run_dir).stage_records())
    assert done == {"teacher", "curate", "train"}  # evaluate did not finish: no marker, no report
    assert not (run_dir / "report.md").exists()

    calls.clear()
    monkeypatch.setattr(scoring, "run_lm_eval", real_run_lm_eval)
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
    assert set(RunFolder(tmp_path / "run").stage_records()) == {"teacher"}


def test_a_teacher_without_usable_rationales_stops_at_curation(tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    args = tiny_args(
        tiny_model, run_dir, teacher=f"pretrained={tiny_model},answer_max_gen_toks=2", train_limit=3, diverse=2
    )
    with pytest.raises(CurationError, match="none of 6 teacher rationales for 3 questions had a correct answer"):
        distill(args)
    assert set(RunFolder(run_dir).stage_records()) == {"teacher"}  # the paid-for part is kept
    assert sorted((run_dir / "teacher").rglob("samples_fcot_coin_flip_teacher_*.jsonl"))
    assert not (run_dir / "data").exists()


def test_the_teacher_is_never_paid_twice(tiny_model, tmp_path, caplog, capsys):
    """An identical re-run after a later failure reuses the teacher; a changed teacher setting re-runs the teacher
    stage through the same cache, generating only what is new; --restart keeps the old cache in .previous/."""
    run_dir = tmp_path / "run"
    teacher = f"pretrained={tiny_model},answer_max_gen_toks=2"
    args = {"teacher": teacher, "train_limit": 3, "diverse": 2}
    with pytest.raises(CurationError):
        distill(tiny_args(tiny_model, run_dir, **args))
    assert "cache: rationales 0 reused, 6 generated; answers 0 reused, 6 generated" in capsys.readouterr().out
    caplog.set_level("INFO")
    with pytest.raises(CurationError):  # the same command again: the teacher is not run at all
        distill(tiny_args(tiny_model, run_dir, **args))
    assert "teacher: done in an earlier run with the same settings and inputs, skipped" in caplog.text
    assert "cache:" not in capsys.readouterr().out

    with pytest.raises(CurationError):  # D 2 -> 3 on 4 questions: 6 responses reused, the new ones generated
        distill(tiny_args(tiny_model, run_dir, **{**args, "diverse": 3, "train_limit": 4}))
    out = capsys.readouterr().out
    assert "cache: rationales 6 reused, 6 generated; answers 6 reused, 6 generated" in out
    with pytest.raises(CurationError):  # another port, concurrency or timeout is the same teacher: skipped
        operational = f"{teacher},batch_size=2,max_batch_size=4"
        distill(tiny_args(tiny_model, run_dir, **{**args, "diverse": 3, "train_limit": 4, "teacher": operational}))
    assert "cache:" not in capsys.readouterr().out
    with pytest.raises(CurationError):
        distill(tiny_args(tiny_model, run_dir, **args, restart=True))
    assert "cache: rationales 0 reused, 6 generated" in capsys.readouterr().out
    assert list((run_dir / ".previous").glob("*/teacher-cache.sqlite"))


def test_new_weights_at_the_same_path_are_a_new_student(tiny_model, tmp_path, caplog):
    import shutil

    from safetensors.torch import load_file, save_file

    student = tmp_path / "student-copy"
    shutil.copytree(tiny_model, student)
    run_dir = tmp_path / "run"
    args = {"student": str(student), "baselines": False}
    distill(tiny_args(tiny_model, run_dir, **args))
    weights = student / "model.safetensors"
    tensors = {name: tensor * 0.5 for name, tensor in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    caplog.set_level("INFO")
    distill(tiny_args(tiny_model, run_dir, **args))
    assert "train: settings changed (student_weights:" in caplog.text


def test_a_new_teacher_setting_is_one_teacher_run_and_restart_starts_clean(tiny_model, tmp_path, caplog):
    """The audit's case: D 4 -> 2 must curate the new samples only; --restart must move everything aside."""
    import helpers.oracle  # noqa: F401  registers the fcot-test-oracle teacher

    run_dir = tmp_path / "run"
    args = {"teacher": "base=fcot-test-oracle", "train_limit": 4, "eval_limit": 2, "baselines": False}
    distill(tiny_args(tiny_model, run_dir, diverse=4, **args))
    assert RunFolder(run_dir).results("curate")["stats"]["rationales"] == 16

    caplog.set_level("INFO")
    distill(tiny_args(tiny_model, run_dir, diverse=2, **args))
    assert "teacher: settings changed (diverse: 4 -> 2), running it again" in caplog.text
    assert RunFolder(run_dir).results("curate")["stats"]["rationales"] == 8  # not 8 + 16
    assert len(list((run_dir / "teacher").rglob("samples_*.jsonl"))) == 1
    assert "D=2" in (run_dir / "report.md").read_text()

    caplog.clear()
    distill(tiny_args(tiny_model, run_dir, diverse=2, restart=True, **args))
    assert "--restart: earlier outputs moved to" in caplog.text and "skipped" not in caplog.text
    first, second = sorted((run_dir / ".previous").iterdir())
    assert {path.name for path in second.iterdir()} >= {"config.json", "stages", "teacher", "data", "student", "eval"}
    # run 2 moved the D=4 teacher run and everything made from it, stage by stage (its settings stayed current)
    assert {path.name for path in first.iterdir()} == {
        "teacher",
        "data",
        "train.yaml",
        "student",
        "eval",
        "stages",
        "report.md",
        "report.json",
        "report.html",
        "accuracy.png",
    }
    assert sorted(path.stem for path in (run_dir / "stages").glob("*.json")) == sorted(
        ["teacher", "curate", "train", "evaluate", "report"]
    )


def test_a_new_teacher_budget_reruns_the_teacher_and_every_later_stage(tiny_model, tmp_path, caplog):
    """--teacher_max_gen_toks changes the rationales, so it is one of the teacher stage's settings."""
    import helpers.oracle  # noqa: F401  registers the fcot-test-oracle teacher

    run_dir = tmp_path / "run"
    args = {"teacher": "base=fcot-test-oracle", "train_limit": 4, "eval_limit": 2, "baselines": False}
    distill(tiny_args(tiny_model, run_dir, **args))
    caplog.set_level("INFO")
    distill(tiny_args(tiny_model, run_dir, teacher_max_gen_toks=64, **args))
    assert "teacher: settings changed (teacher_max_gen_toks: None -> 64), running it again" in caplog.text
    for stage in ("curate", "train", "evaluate", "report"):
        assert f"{stage}: an earlier stage ran again or changed, running it again" in caplog.text
    assert "skipped" not in caplog.text


def test_a_damaged_stage_record_is_named_with_the_fix(tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    RunFolder(run_dir).mark()
    (run_dir / "stages").mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    (run_dir / "stages" / "teacher.json").write_text('{"source": "pa')  # cut short
    with pytest.raises(FcotError, match=r"stages/teacher\.json is damaged .*pass --restart"):
        distill(tiny_args(tiny_model, run_dir))
    assert not (run_dir / ".fcot.lock").exists()  # the lock went with the failed run


def test_a_second_run_on_a_locked_folder_stops_at_once(tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(RunFolder(run_dir)):
        with pytest.raises(FcotError, match=rf"{run_dir} is in use by another fcot run \(pid {os.getpid()} on "):
            distill(tiny_args(tiny_model, run_dir))
    assert sorted(path.name for path in run_dir.iterdir()) == []  # nothing written, and the lock file is gone


def test_shuffled_training_batches_on_request(tiny_model, tmp_path):
    """--train_sampling_strategy random trains as fcot did before length grouping (and says so in train.yaml)."""
    run = pipeline.Run(tiny_args(tiny_model, tmp_path / "run", train_sampling_strategy="random"))
    assert pipeline.training_config(run, str(tiny_model))["train_sampling_strategy"] == "random"
