"""benchmarks/plan.py: the sizing arithmetic, its inputs checked in one line, and its token table reproducible."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.paths import REPO

from fcot_plugin.core.errors import FcotError

sys.path.insert(0, str(REPO / "benchmarks"))
from plan import TASK_TOKENS, PlanArguments, plan, zero_stage  # noqa: E402


def run_plan(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "benchmarks/plan.py", *arguments], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_plan_example_prints_the_teacher_and_student_tables():
    result = run_plan(
        "--task",
        "gsm8k",
        "--teacher_params",
        "70e9",
        "--student_params",
        "1.5e9",
        "--gpus",
        "8",
        "--diverse",
        "8",
        "--teacher_tokens_per_second",
        "3543",
        "--mfu",
        "0.25",
    )
    assert result.returncode == 0, result.stderr
    assert "| gsm8k | 7,473 | 8 |" in result.stdout and "| gsm8k | 8 | 1.5B | 8 |" in result.stdout
    assert "ZeRO-2" in result.stdout and "MFU 0.25 (assumed)" in result.stdout


def test_plan_arithmetic():
    args = PlanArguments(
        task="gsm8k",
        diverse=[8],
        teacher_params=70e9,
        teacher_tokens_per_second=3543.0,
        student_params=[1.5e9],
        gpus=[8],
        mfu=0.25,
    )
    result = plan(args)
    stats = TASK_TOKENS["gsm8k"]
    (teacher,) = result["teacher"]["rows"]
    generated = 7473 * 8 * (stats["rationale"] + stats["answer"])
    assert teacher["generated_tokens"] == pytest.approx(generated)
    assert teacher["hours"] == pytest.approx(generated / 3543 / 3600)
    assert result["teacher"]["gpus_per_server"] == 4  # a 70B teacher: the published figure's tp=4 server
    (student,) = result["training"]["rows"]
    tokens = 7473 * 8 * stats["kept"] * stats["row"] * 20
    assert student["hours"] == pytest.approx(6 * 1.5e9 * tokens / (8 * 989e12 * 0.25) / 3600)
    # published throughput when none is given
    assert plan(PlanArguments(task="coin_flip", teacher_params=7e9))["teacher"]["tokens_per_second"] == 8088.35


def test_plan_zero_stage_follows_the_16_bytes_per_parameter_arithmetic():
    args = PlanArguments()  # 80 GB GPUs, 75% of them for model states: 60 GB
    assert zero_stage(1.5e9, 1, args) == ("ZeRO-2", pytest.approx(24.0))  # 16 x 1.5 GB on one GPU
    assert zero_stage(7e9, 8, args) == ("ZeRO-2", pytest.approx(14 + 98 / 8))  # 2 x 7 + 14 x 7 / 8
    assert zero_stage(7e9, 2, args) == ("ZeRO-3", pytest.approx(56.0))  # ZeRO-2 would need 63 GB
    assert zero_stage(7e9, 1, args)[0].startswith("does not fit")  # 112 GB of model states


def test_plan_question_counts_are_the_shipped_train_splits():
    from fcot_plugin.tasks.registry import AQUA_TRAIN_ROWS, data_dir, load_rows

    assert len(TASK_TOKENS) == 12
    for task, stats in TASK_TOKENS.items():
        if task == "aqua":  # the paper's 10,000-row sample of AQuA's 97,467 train rows, rebuilt from the Hub
            sample = json.loads((data_dir() / "aqua" / "split_default.json").read_text())["train"]
            assert stats["questions"] == len(sample) == 10_000 and AQUA_TRAIN_ROWS == 97_467
        else:
            assert stats["questions"] == len(load_rows(task, "train")), task


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mfu": 40.0}, "--mfu must be in (0, 1]"),
        ({"gpus": [0]}, "--gpus must be between 1 and 100000"),
        ({"diverse": [0]}, "--diverse must be between 1 and 1024"),
        ({"task": "nope"}, "--task 'nope': choose all or one of"),
        ({"teacher_params": 30e9}, "no published vLLM throughput for a 30B teacher"),
        ({"teacher_tokens_per_second": -5.0}, "--teacher_tokens_per_second must be above 0"),
        ({"memory_fraction": 2.0}, "--memory_fraction must be in (0, 1]"),
        ({"keep_fraction": 0.0}, "--keep_fraction must be in (0, 1]"),
    ],
)
def test_plan_refuses_bad_input_with_the_flag_named(settings, message):
    with pytest.raises(FcotError) as error:
        plan(PlanArguments(**settings))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_plan_bad_input_is_one_line_on_the_command_line():
    result = run_plan("--mfu", "40")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "plan.py: error: --mfu must be in (0, 1] (a fraction, e.g. 0.25), got 40.0"
    ]
