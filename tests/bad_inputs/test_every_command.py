"""What holds for every command: the real console scripts exit non-zero with one line; ``--debug`` brings the
traceback back; a bug keeps its traceback; Ctrl-C, a full disk and an unwritable path are one line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from helpers.paths import REPO, SFT_RECIPE

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.core.command_line import exit_with_one_line


def test_console_scripts_exit_non_zero_with_one_line(tmp_path):
    result = subprocess.run(
        ["fcot", "distill", "--task", "coin_flip", "--epochs", "three"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "fcot: error: argument --epochs: invalid float value: 'three' (see fcot distill --help)"
    ]
    result = subprocess.run(
        [sys.executable, str(SFT_RECIPE), "--num_train_epochs", "three"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "sft.py: error: argument --num_train_epochs/--num-train-epochs: invalid float value: 'three' "
        "(see sft.py --help)"
    )
    train = "fcot_plugin.train"
    for entry_point, prog in (([str(SFT_RECIPE)], "sft.py"), (["-m", train], f"python -m {train}")):
        result = subprocess.run(  # both run fcot_plugin.training.sft.cli, as does fcot distill's accelerate launch
            [sys.executable, *entry_point, "--bogus", "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=300,
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            f"{prog}: error: Some specified arguments are not used by the HfArgumentParser: ['--bogus']"
        )
        assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    argv = ["distill", "--task", "coin_flip", "--student", "/no/such/student", "--run_dir", str(tmp_path / "r")]
    with pytest.raises(ValueError, match="does not exist"):
        fcot([*argv, "--debug"])
    monkeypatch.setenv("FCOT_DEBUG", "1")
    with pytest.raises(ValueError, match="does not exist"):
        fcot(argv)


def test_only_fcot_errors_become_one_line(monkeypatch, tmp_path):
    """A bug (any other exception) keeps its traceback: the CLI does not hide every ValueError."""
    from fcot_plugin.pipeline import distill as pipeline

    def bug(args):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(pipeline, "main", bug)
    with pytest.raises(ValueError, match="a bug, not bad input"):
        fcot(["distill", "--task", "coin_flip", "--run_dir", str(tmp_path / "r")])


def raising(error: BaseException):
    def function():
        raise error

    return function


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        (KeyboardInterrupt(), 130, "prog: interrupted; what finished is kept, and the same command carries on"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/data/run/student"),
            1,
            "prog: error: the disk is full (/data/run/student); free some space and run the same command again",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/data/run/student"),
            1,
            "prog: error: permission denied (/data/run/student); make it writable and run the same command again",
        ),
        (OSError(errno.EROFS, "Read-only file system", "/ro"), 1, "prog: error: read-only file system (/ro)"),
    ],
)
def test_ctrl_c_a_full_disk_and_an_unwritable_path_are_one_line(capsys, error, code, expected):
    with pytest.raises(SystemExit) as exit_info:
        exit_with_one_line("prog", raising(error), debug=False)
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.strip() == expected or (err.count("\n") == 1 and err.startswith(expected)), err
    assert exit_with_one_line("prog", lambda: 7, debug=False) == 7  # the corrected run goes through


def test_every_os_error_is_one_line_and_debug_keeps_its_traceback(capsys):
    with pytest.raises(SystemExit):
        exit_with_one_line("prog", raising(FileNotFoundError(errno.ENOENT, "gone", "/proc/x")), debug=False)
    assert capsys.readouterr().err.strip() == (
        "prog: error: no such file or folder (/proc/x); pass a path in a folder that exists and can hold files"
    )
    with pytest.raises(FileNotFoundError):
        exit_with_one_line("prog", raising(FileNotFoundError(errno.ENOENT, "gone", "/x")), debug=True)


LEFTOVER_TASKS = """
import asyncio, gc, logging, sys
from fcot_plugin.core.command_line import exit_with_one_line
from fcot_plugin.core.errors import FcotError

logging.basicConfig(level=logging.INFO)


async def request(n):
    if n:
        await asyncio.sleep(0.05)
    raise RuntimeError(f"Session is closed ({n})")


async def batch():  # lm-eval's API models (tqdm's gather): the first failure ends the wait, the rest run on
    tasks = [asyncio.ensure_future(request(n)) for n in range(3)]
    try:
        for done in asyncio.as_completed(tasks):
            await done
    finally:
        await asyncio.sleep(0.2)


def teacher():
    try:
        asyncio.run(batch())
    except RuntimeError:
        pass
    gc.collect()
    raise FcotError("the teacher server answered HTTP 400 (Bad Request)")


exit_with_one_line("prog", teacher, debug=sys.argv[1] == "debug")
"""


@pytest.mark.parametrize("debug", [False, True])
def test_requests_left_over_by_a_failed_batch_add_no_traceback(tmp_path, debug):
    """The line that says what failed is all a user sees; ``--debug`` keeps asyncio's own records."""
    import subprocess
    import sys

    script = tmp_path / "leftover.py"
    script.write_text(LEFTOVER_TASKS)
    mode = "debug" if debug else "plain"
    run = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    if debug:
        assert "Task exception was never retrieved" in run.stderr and "Traceback" in run.stderr
    else:
        assert run.stderr.strip() == "prog: error: the teacher server answered HTTP 400 (Bad Request)", run.stderr
