"""The run folder's parts on their own: lock, atomic state files, complete checkpoints, fingerprints, moving aside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import read_json, write_json_atomic
from fcot_plugin.pipeline import stages
from fcot_plugin.pipeline.run_folder import RunFolder, RunLock
from fcot_plugin.pipeline.stages import StageRunner, fingerprint, outputs_digest, record_stage
from fcot_plugin.training.checkpoints import last_complete_checkpoint


def test_a_held_lock_names_its_holder_and_a_dead_one_is_taken_over(tmp_path):
    run = RunFolder(tmp_path)
    with RunLock(run):
        holder = json.loads(run.lock_file.read_text())
        assert holder["pid"] == os.getpid() and holder["command"]
        with pytest.raises(FcotError, match=rf"in use by another fcot run \(pid {os.getpid()} on {holder['host']}"):
            RunLock(run).acquire()
    assert not run.lock_file.exists()

    # a run that was killed leaves its lock file behind, but not its lock
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run.lock_file.write_text(json.dumps({"pid": int(dead.stdout), "host": holder["host"], "command": "fcot distill"}))
    lock = RunLock(run).acquire()
    assert lock.taken_over["pid"] == int(dead.stdout) and lock.taken_over["alive"] is False
    assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()
    lock.release()


def test_the_lock_records_no_token(tmp_path, monkeypatch):
    monkeypatch.setattr(
        sys, "argv", ["fcot", "distill", "--teacher", "pretrained=x,token=hf_abcdefghijklmnopqrstuvwxyz"]
    )
    with RunLock(RunFolder(tmp_path)):
        assert "hf_abc" not in RunFolder(tmp_path).lock_file.read_text()


def test_atomic_writes_leave_no_temporary_files_and_damage_is_named(tmp_path):
    write_json_atomic(tmp_path / "state.json", {"a": 1})
    write_json_atomic(tmp_path / "state.json", {"a": 2})
    assert [path.name for path in tmp_path.iterdir()] == ["state.json"]
    assert read_json(tmp_path / "state.json", "fix") == {"a": 2}
    (tmp_path / "state.json").write_text('{"a": ')
    with pytest.raises(FcotError, match=r"state\.json is damaged \(Expecting value\); delete it"):
        read_json(tmp_path / "state.json", "delete it")


def test_a_checkpoint_cut_short_is_skipped(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-10-copy").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_fingerprints_follow_settings_and_upstream_outputs(tmp_path):
    run = RunFolder(tmp_path)
    settings = {"task": "coin_flip", "train_limit": 4, "teacher": "pretrained=x,token=secret1", "epochs": 1.0}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.json").write_text("[1]")
    record_stage(run, "curate", fingerprint(run, "curate", settings), settings, {"rows": 1})
    train = fingerprint(run, "train", settings)
    assert fingerprint(run, "train", {**settings, "teacher": "pretrained=x,token=secret2"}) == train  # a new token
    assert fingerprint(run, "train", {**settings, "epochs": 2.0}) != train
    (tmp_path / "data" / "README.md").write_text("a card: not an output that changes the data")
    assert outputs_digest(run, "curate") == run.stage_record("curate")["fcot_stage"]["outputs"]
    (tmp_path / "data" / "rows.json").write_text("[1, 2]")
    assert outputs_digest(run, "curate") != run.stage_record("curate")["fcot_stage"]["outputs"]
    record_stage(run, "curate", fingerprint(run, "curate", settings), settings, {"rows": 2})
    assert fingerprint(run, "train", settings) != train  # curation ran again: training follows
    assert "secret" not in (tmp_path / "stages" / "curate.json").read_text()


def test_a_stage_killed_and_resumed_records_the_seconds_of_both_attempts(tmp_path, monkeypatch):
    """A kill -9 writes nothing, so the started marker's heartbeat is what keeps the first attempt's time."""
    settings = {"task": "coin_flip", "teacher": "pretrained=x"}
    killed = textwrap.dedent(
        f"""
        import time
        from fcot_plugin.pipeline import stages
        stages.HEARTBEAT_SECONDS = 0.2
        runner = stages.StageRunner(stages.RunFolder({str(tmp_path)!r}), {settings!r}, "first")
        runner.run(1, "teacher", lambda: time.sleep(60) or {{}})
        """
    )
    first = subprocess.Popen([sys.executable, "-c", killed])
    marker = tmp_path / "stages" / "teacher.started.json"
    deadline = time.monotonic() + 60
    while not (marker.is_file() and json.loads(marker.read_text()).get("seconds", 0) >= 1.0):
        assert time.monotonic() < deadline and first.poll() is None, "the stage's clock never reached 1 s"
        time.sleep(0.1)
    first.kill()
    first.wait()
    assert not (tmp_path / "stages" / "teacher.json").exists()

    monkeypatch.setattr(stages, "HEARTBEAT_SECONDS", 0.05)
    results = StageRunner(RunFolder(tmp_path), settings, "second").run(1, "teacher", lambda: {"responses": 3})
    record = RunFolder(tmp_path).stage_record("teacher")
    assert results["seconds"] >= 1.0 and record["seconds"] == results["seconds"]
    assert record["fcot_stage"]["attempts"] == 2 and not marker.exists()


def test_an_interrupted_stage_leaves_its_exact_time_for_the_next_attempt(tmp_path):
    settings = {"task": "coin_flip", "teacher": "pretrained=x"}

    def interrupted() -> dict:
        time.sleep(0.3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        StageRunner(RunFolder(tmp_path), settings, "first").run(1, "teacher", interrupted)
    marker = json.loads((tmp_path / "stages" / "teacher.started.json").read_text())
    assert marker["attempts"] == 1 and 0.3 <= marker["seconds"] < 5  # written on the way out, not at a heartbeat

    marker["seconds"] = "edited by hand"  # not a number: counted as nothing, not a traceback
    (tmp_path / "stages" / "teacher.started.json").write_text(json.dumps(marker))
    results = StageRunner(RunFolder(tmp_path), settings, "second").run(1, "teacher", dict)
    assert 0 <= results["seconds"] < 5
    assert RunFolder(tmp_path).stage_record("teacher")["fcot_stage"]["attempts"] == 2


def test_moving_aside_keeps_the_lock_and_earlier_moves(tmp_path):
    run = RunFolder(tmp_path)
    run.mark()
    for name in ("config.json", "student/model.safetensors", "stages/train.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    with RunLock(run):
        moved = run.move_everything_aside("first")
        assert moved == tmp_path / ".previous" / "first" and run.lock_file.is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == [".fcot-folder.json", ".previous"]
    assert (moved / "student" / "model.safetensors").read_text() == "student/model.safetensors"
    assert run.move_everything_aside("second") is None  # nothing left to move
