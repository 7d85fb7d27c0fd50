"""The 28 failures of the safety audit (issue #31), each refused in one line before anything is paid for.

Grouped by class: data loss in the user's folders, secrets by shape, silent wrong results, tracebacks, and a
misleading message. Every case runs the command as a user would (in-process, through its entry point), checks the
one ``<prog>: error:`` line, and where files are at stake that the user's files are all still there.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.one_line import one_line_error
from helpers.paths import REPO
from helpers.scripts import sft_recipe

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.cli.fcot_eval import main as eval_main
from fcot_plugin.core.command_line import exit_with_one_line
from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.folders import MARKER
from fcot_plugin.pipeline.run_folder import RunFolder, RunLock
from fcot_plugin.pipeline.stages import record_stage, student_weights

CURATE = ["curate", "--task", "coin_flip", "--samples", "paper"]
DISTILL = ["distill", "--task", "coin_flip", "--device", "cpu"]
USER_FILES = {"precious.txt": "the user's own", "notes/plan.md": "more of it"}


def plant(folder: Path) -> Path:
    for name, text in USER_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def intact(folder: Path) -> None:
    for name, text in USER_FILES.items():
        assert (folder / name).read_text() == text, f"{folder / name} changed"
    assert not (folder / ".previous").exists() and not (folder / MARKER).exists()


# ---------------------------------------------------------------------- 1-3: data loss in the user's own folders


@pytest.mark.parametrize("where", ["''", ".", "$HOME", "cwd"])
@pytest.mark.parametrize(
    ("command", "flag", "expected"),
    [(CURATE, ["--overwrite"], "--out"), (DISTILL, ["--restart"], "--run_dir")],
    ids=["curate --overwrite", "distill --restart"],
)
def test_the_current_folder_home_and_empty_paths_are_refused(
    capsys, tmp_path, monkeypatch, where, command, flag, expected
):
    """1 and 3: ``--out '' --overwrite`` deleted the current folder; ``--run_dir '' --restart`` moved it aside."""
    plant(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = {"''": "", ".": ".", "$HOME": str(tmp_path), "cwd": os.getcwd()}[where]
    option = "--out" if command is CURATE else "--run_dir"
    line = one_line_error(capsys, fcot, [*command, option, path, *flag], "fcot", expected)
    assert "empty" in line or "current folder" in line or "home folder" in line
    intact(tmp_path)


def test_overwrite_replaces_only_what_curate_wrote(capsys, tmp_path):
    """2: ``--overwrite`` deleted any existing --out folder, whatever it held."""
    theirs = plant(tmp_path / "theirs")
    one_line_error(capsys, fcot, [*CURATE, "--out", str(theirs), "--overwrite"], "fcot", "holds files fcot did not")
    intact(theirs)
    data = tmp_path / "data"
    fcot([*CURATE, "--out", str(data)])
    plant(data)  # the user adds files to a folder fcot made: they are theirs
    fcot([*CURATE, "--out", str(data), "--overwrite"])
    assert (data / "dataset_dict.json").is_file() and (data / "README.md").is_file()
    for name, text in USER_FILES.items():
        assert (data / name).read_text() == text


def test_one_commands_folder_is_not_another_commands_output(capsys, tmp_path):
    """``--overwrite`` replaces what ``fcot curate`` wrote, never a run folder's stages (also fcot's files)."""
    run = RunFolder(tmp_path / "run")
    run.mark()
    (run.path / "config.json").write_text('{"task": "coin_flip"}')
    argv = [*CURATE, "--out", str(run.path), "--overwrite"]
    one_line_error(capsys, fcot, argv, "fcot", "was made by fcot distill, not fcot curate")
    assert (run.path / "config.json").is_file()


def test_restart_moves_only_what_distill_wrote(tmp_path):
    """3: ``--restart`` moved every file of the folder into .previous/."""
    run = RunFolder(tmp_path / "run")
    run.mark()
    plant(run.path)
    for name in ("config.json", "stages/train.json", "student/model.safetensors"):
        (run.path / name).parent.mkdir(parents=True, exist_ok=True)
        (run.path / name).write_text("{}")
    with RunLock(run):
        moved = run.move_everything_aside("t")
    assert sorted(path.name for path in moved.iterdir()) == ["config.json", "stages", "student"]
    for name, text in USER_FILES.items():
        assert (run.path / name).read_text() == text


# ---------------------------------------------------------------------- 4-5: secrets by shape

PASSWORD = "S3cretPW0rd"
URL_TEACHER = f"base=local-completions,base_url=http://alice:{PASSWORD}@127.0.0.1:9/v1/completions,model=m"
BASIC = "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
JSON_TEACHER = json.dumps(
    {
        "base": "local-completions",
        "base_url": "http://127.0.0.1:9/v1/completions",
        "model": "m",
        "header": {"Authorization": f"Basic {BASIC}", "X-Custom-Auth": "xyzzy-plugh-42"},
        "model_kwargs": {"deeper": {"client_secret": "n3sted-s3cret"}},
    }
)
PLANTED = (PASSWORD, BASIC, "xyzzy-plugh-42", "n3sted-s3cret")


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in PLANTED:
            assert secret not in text, f"{secret} in {text[:300]}"


def files_text(folder: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("teacher", [URL_TEACHER, JSON_TEACHER], ids=["url-password", "auth-header"])
def test_a_planted_password_reaches_no_record(tmp_path, monkeypatch, teacher):
    """4-5: a URL password and an Authorization header leaked to config.json, the stage records, lm-eval's results,
    the lock, the 'in use' error, the dataset card and the cache key."""
    from fcot_plugin.core.command_line import settings_parser
    from fcot_plugin.core.secrets import scrub_files
    from fcot_plugin.curation.dataset import CurationResult, CurationStats, curation_summary
    from fcot_plugin.curation.responses import TeacherInfo
    from fcot_plugin.hub.cards import dataset_card
    from fcot_plugin.pipeline.distill import Run
    from fcot_plugin.pipeline.settings import DistillArguments
    from fcot_plugin.teacher.cache import entry_key
    from fcot_plugin.teacher.spec import TeacherSpec, text_arguments

    monkeypatch.setattr(sys, "argv", ["fcot", "distill", "--teacher", teacher])
    run_dir = tmp_path / "run"
    (args,) = settings_parser(DistillArguments).parse_args_into_dataclasses(
        ["--task", "coin_flip", "--teacher", teacher, "--run_dir", str(run_dir), "--device", "cpu"]
    )
    run = Run(args)
    run.prepare()
    try:
        with pytest.raises(FcotError) as in_use:
            RunLock(run.folder).acquire()
        record_stage(run.folder, "teacher", "f", run.settings, {"teacher": teacher, "source": "x"})
        results = run_dir / "teacher" / "results.json"
        results.parent.mkdir()
        results.write_text(json.dumps({"config": {"model_args": teacher}}))
        scrub_files(run_dir / "teacher", [])
        teacher_info = TeacherInfo(name=teacher, files=[teacher])
        summary = curation_summary(CurationResult("coin_flip", "fcot", [], CurationStats(), teacher_info))
        card = str(dataset_card(summary))
        key = json.dumps(text_arguments(TeacherSpec.parse(teacher).arguments))
        no_secret_in(files_text(run_dir), str(in_use.value), card, json.dumps(summary), key)
        assert "***@127.0.0.1:9" in (run_dir / "config.json").read_text() or teacher is JSON_TEACHER
    finally:
        run.close()
    assert entry_key(1, "p", {}, 0, json.loads(key)) == entry_key(1, "p", {}, 0, json.loads(key))


def test_a_planted_password_reaches_no_terminal_line(capsys, tmp_path):
    """4-5: the secret was on stderr; every error line is redacted by structure."""
    bad = JSON_TEACHER.replace('"model": "m"', '"model": "m", "answer_max_gen_toks": "many"')
    for teacher in (f"{URL_TEACHER},answer_max_gen_toks=-3", bad):
        argv = [*DISTILL, "--teacher", teacher, "--run_dir", str(tmp_path / "run")]
        no_secret_in(one_line_error(capsys, fcot, argv, "fcot", "answer_max_gen_toks"))
    with pytest.raises(SystemExit):
        exit_with_one_line("prog", lambda: (_ for _ in ()).throw(FcotError(f"at {URL_TEACHER}: {JSON_TEACHER}")), 0)
    err = capsys.readouterr().err
    no_secret_in(err)
    assert "http://***@127.0.0.1:9/v1/completions" in err


# ---------------------------------------------------------------------- 6-14: silent wrong results


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--learning_rate", "1e400"], "--learning_rate must be a finite number > 0, got inf"),
        (
            ["--teacher", "pretrained=x", "--teacher_temperature", "inf"],
            "--teacher_temperature must be a finite number >= 0, got inf",
        ),
        (["--teacher", '{"pretrained": "x", "answer_max_gen_toks": -3}'], "answer_max_gen_toks must be >= 1, got -3"),
        (["--epochs", "inf"], "--epochs must be a finite number > 0, got inf"),
        (["--seed", "99999999999"], "--seed must be between 0 and 4294967295, got 99999999999"),
        (["--validation_size", "nan"], "--validation_size must be a finite number >= 0, got nan"),
    ],
)
def test_distill_numbers_refused_at_parse_time(capsys, tmp_path, argv, expected):
    """6, 8, 9, 15, 16: accepted, then NaN weights or a traceback after the teacher was paid."""
    one_line_error(capsys, fcot, [*DISTILL, "--run_dir", str(tmp_path / "run"), *argv], "fcot", expected)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--learning_rate", "inf"], "--learning_rate must be a finite number > 0, got inf"),
        (["--weight_decay", "nan"], "--weight_decay must be a finite number, got nan"),
        (["--seed", "99999999999"], "--seed must be between 0 and 4294967295"),
    ],
)
def test_sft_numbers_refused_at_parse_time(capsys, tmp_path, argv, expected):
    """7: ``recipes/sft.py --learning_rate inf`` trained NaN weights."""
    base = ["--task", "coin_flip", "--dataset_name", "x", "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"]
    one_line_error(capsys, sft_recipe().main, [*base, *argv], "sft.py", expected)
    assert not (tmp_path / "out").exists()


def test_fcot_eval_metadata_infinity(capsys, tiny_model):
    """10: ``--metadata '{"fcot_temperature": Infinity}'`` was accepted."""
    argv = [
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model}",
        "--tasks",
        "fcot_coin_flip_teacher",
        "--metadata",
        '{"fcot_temperature": Infinity}',
    ]
    one_line_error(capsys, eval_main, argv, "fcot-eval", "fcot_temperature must be a finite number >= 0, got inf")


def test_benchmark_nan_epochs(capsys, tmp_path):
    """11: ``benchmarks/eval_speed.py --train_epochs nan`` passed its range check."""
    from helpers.scripts import benchmark

    argv = ["--train_epochs", "nan", "--vllm", "false", "--output", str(tmp_path / "out")]
    one_line_error(capsys, benchmark("eval_speed"), argv, "eval_speed.py", "--train_epochs must be a finite number")


def test_new_weights_of_the_same_size_and_time_are_a_new_student(tmp_path):
    """12: the student's fingerprint was size and mtime; new weights with the old mtime skipped training."""
    student, run = tmp_path / "student", RunFolder(tmp_path / "run")
    run.path.mkdir()
    student.mkdir()
    weights = student / "model.safetensors"
    weights.write_bytes(b"a" * 4096)
    (student / "config.json").write_text("{}")
    before = student_weights(str(student), run)
    assert student_weights(str(student), run) == before  # unchanged: the cached digest
    stat = weights.stat()
    with open(weights, "r+b") as handle:  # new content in place: same size, same inode
        handle.write(b"b" * 4096)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old modification time
    assert student_weights(str(student), run) != before


def test_sft_needs_an_output_dir_and_never_resumes_another_task(capsys, tmp_path, tiny_model):
    """13-14: without --output_dir, sft.py wrote to ./trainer_output/, and a second task resumed the first's
    checkpoint."""
    from fcot_plugin.training.checkpoints import check_training_output, mark_training, training_record

    base = ["--task", "coin_flip", "--dataset_name", "x", "--use_cpu", "true"]
    one_line_error(capsys, sft_recipe().main, base, "sft.py", "output_dir is required")
    out = tmp_path / "out"
    mark_training(out, training_record("coin_flip", str(tmp_path / "data-a"), "fcot"))
    (out / "checkpoint-2").mkdir()
    (out / "checkpoint-2" / "trainer_state.json").write_text("{}")
    check_training_output(str(out), training_record("coin_flip", str(tmp_path / "data-a"), "fcot"))  # resumes
    with pytest.raises(FcotError, match=r"holds checkpoints of another training \(task 'coin_flip', not 'gsm8k'"):
        check_training_output(str(out), training_record("gsm8k", str(tmp_path / "data-a"), "fcot"))
    theirs = plant(tmp_path / "theirs")
    argv = [*base, "--model_name_or_path", str(tiny_model), "--output_dir", str(theirs)]
    one_line_error(capsys, sft_recipe().main, argv, "sft.py", "holds files fcot did not write")
    intact(theirs)


# ---------------------------------------------------------------------- 15-27: tracebacks


@pytest.mark.parametrize(
    ("teacher", "expected"),
    [
        ('{"pretrained": 5}', "'pretrained' must be a string, got 5 (int)"),
        ('{"pretrained": "x", "answer_max_gen_toks": "many"}', "'answer_max_gen_toks' must be a whole number"),
        ('{"base": "local-completions", "num_concurrent": "many"}', "'num_concurrent' must be a whole number"),
    ],
)
def test_json_teacher_type_errors_name_the_key(capsys, tmp_path, teacher, expected):
    """17-19: wrong value types in a JSON teacher were tracebacks."""
    one_line_error(capsys, fcot, [*DISTILL, "--teacher", teacher, "--run_dir", str(tmp_path / "r")], "fcot", expected)


def test_a_damaged_model_config_is_one_line(capsys, tmp_path):
    """20-21: a teacher folder with a damaged config.json, and ``fcot evaluate`` on it."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("[1, 2, 3]")
    (model / "model.safetensors").write_bytes(b"")
    argv = [*DISTILL, "--teacher", f"pretrained={model}", "--run_dir", str(tmp_path / "run")]
    one_line_error(capsys, fcot, argv, "fcot", f"{model / 'config.json'} is damaged (a JSON list, not an object)")
    argv = ["evaluate", "--model", str(model), "--task", "coin_flip"]
    one_line_error(capsys, fcot, argv, "fcot", f"{model / 'config.json'} is damaged (a JSON list, not an object)")


@pytest.mark.parametrize("text", ["[1,2,3]", '{"fcot_stage": [1]}', '{"fcot_stage": {"settings": 3}}', '"x"'])
def test_a_stage_record_of_the_wrong_type_names_restart(text, tmp_path):
    """22: a stage record that is valid JSON of the wrong type was a traceback."""
    run = RunFolder(tmp_path)
    run.stages_dir.mkdir()
    run.stage_file("teacher").write_text(text)
    with pytest.raises(FcotError, match=r"teacher\.json is damaged .*pass --restart"):
        run.stage_record("teacher")
    run.config_file.write_text(text)
    with pytest.raises(FcotError, match=r"config\.json is damaged .*pass --restart"):
        run.config()


class _NoChoices(BaseHTTPRequestHandler):
    def _answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._answer({"data": [{"id": "m"}]})

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer({"unexpected": True})

    def log_message(self, *args) -> None:
        pass


def test_a_server_answer_without_choices_is_one_line(capsys):
    """23: ``KeyError: 'choices'`` from a server that answers JSON of another shape."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoChoices)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://alice:{PASSWORD}@127.0.0.1:{server.server_address[1]}/v1/completions"
        model_args = (
            f"base=local-completions,base_url={url},model=m,tokenized_requests=False,max_retries=1,"
            "tokenizer_backend=None"
        )
        argv = ["--model", "zscot", "--model_args", model_args, "--tasks", "fcot_coin_flip_teacher", "--limit", "1"]
        line = one_line_error(capsys, eval_main, argv, "fcot-eval", "answered without the field 'choices'")
    finally:
        server.shutdown()
    assert f"http://***@127.0.0.1:{server.server_address[1]}/v1/completions" in line
    no_secret_in(line)


def _raises(error: BaseException):
    def function():
        raise error

    return function


def test_a_full_disk_while_safetensors_saves_is_one_line(capsys):
    """24: ``SafetensorError`` from a full disk while the student is saved."""
    from safetensors import SafetensorError

    error = SafetensorError(
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space" })'
    )
    with pytest.raises(SystemExit):
        exit_with_one_line("prog", _raises(error), debug=False)
    assert capsys.readouterr().err.startswith("prog: error: the disk is full; free some space")


LONG = "x" * 300


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([*CURATE, "--out", "{loop}/data"], "a symbolic link loop"),
        ([*CURATE, "--out", "{loop}"], "a symbolic link loop"),
        ([*DISTILL, "--run_dir", f"{{tmp}}/{LONG}"], "a part of the path is 300 bytes"),
        ([*DISTILL, "--run_dir", "{tmp}/run", "--student", f"{{tmp}}/{LONG}"], "too long"),
        ([*CURATE, "--out", f"{{tmp}}/{LONG}/data"], "a part of the path is 300 bytes"),
        ([*DISTILL, "--run_dir", "/proc/fcot-x"], "--run_dir: no such file or folder (/proc/fcot-x)"),
    ],
    ids=["loop-inside", "loop", "run_dir-long", "student-long", "out-long", "proc"],
)
def test_impossible_paths_are_one_line(capsys, tmp_path, argv, expected):
    """25-27: a symlink loop as --out, a part over 255 characters, ``--run_dir /proc/x``."""
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    argv = [arg.format(loop=tmp_path / "loop-a", tmp=tmp_path) for arg in argv]
    one_line_error(capsys, fcot, argv, "fcot", expected)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["loop-a", "loop-b"]


@pytest.mark.parametrize(
    ("number", "expected"),
    [(errno.EROFS, "--run_dir: read-only file system ("), (errno.EACCES, "--run_dir: permission denied (")],
)
def test_an_unwritable_run_dir_is_one_line(capsys, tmp_path, monkeypatch, number, expected):
    """28: an unwritable path that is not a permission error (a read-only file system) was a traceback."""
    from fcot_plugin.core import folders

    def refuse(prefix, dir):  # noqa: A002
        raise OSError(number, os.strerror(number), str(Path(dir) / prefix))

    monkeypatch.setattr(folders.tempfile, "mkdtemp", refuse)
    one_line_error(capsys, fcot, [*DISTILL, "--run_dir", str(tmp_path / "run")], "fcot", expected)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- misleading


def test_an_empty_samples_file_says_it_is_empty(capsys, tmp_path):
    """An empty samples file got "none of 0 teacher rationales had a correct answer... use a stronger teacher"."""
    samples = tmp_path / "samples_fcot_coin_flip_teacher_2026.jsonl"
    samples.write_text("")
    line = one_line_error(
        capsys,
        fcot,
        ["curate", "--task", "coin_flip", "--samples", str(samples), "--out", str(tmp_path / "data")],
        "fcot",
        "",
    )
    assert "empty" in line and "stronger teacher" not in line
    assert REPO.is_dir()
