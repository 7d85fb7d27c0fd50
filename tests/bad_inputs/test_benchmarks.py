"""``benchmarks/*.py``: each script refuses bad arguments in one line before it writes anything."""

from __future__ import annotations

import pytest
from helpers.one_line import one_line_error
from helpers.scripts import benchmark


@pytest.mark.parametrize(
    ("script", "argv", "expected"),
    [
        ("sft_throughput", ["--task", "coinflip"], "unknown fcot task 'coinflip'"),
        ("sft_throughput", ["--task", "aqua"], "the paper released no teacher rationales for 'aqua'"),
        ("sft_throughput", ["--student", "./no/such/model"], "--student './no/such/model' does not exist"),
        ("sft_throughput", ["--steps", "0"], "--steps must be >= 1, got 0"),
        ("sft_throughput", ["--warmup_steps", "-1"], "--warmup_steps must be >= 0, got -1"),
        ("sft_throughput", ["--fcot_overrides", "{bad"], "--fcot_overrides is not JSON"),
        ("sft_throughput", ["--fcot_overrides", '{"paddingfree": false}'], "not options: ['paddingfree']"),
        ("sft_throughput", ["--fcot_overrides", "[1]"], "must be a JSON object of FcotSFTConfig options"),
        ("sft_throughput", ["--precision", "fp16"], "unknown precision 'fp16'"),
        ("eval_speed", ["--student", "/no/such/student"], "--student '/no/such/student' does not exist"),
        ("eval_speed", ["--task", "coinflip"], "unknown fcot task 'coinflip'"),
        ("eval_speed", ["--device", "tpu"], "--device must be cpu or cuda, got 'tpu'"),
        ("eval_speed", ["--limit", "0"], "--limit must be >= 1, got 0"),
        ("eval_speed", ["--train_epochs", "0"], "--train_epochs must be > 0, got 0.0"),
        ("teacher_throughput", ["--model", "./no/such/model"], "--model './no/such/model' does not exist"),
        ("teacher_throughput", ["--num_concurrent", "0"], "--num_concurrent must be >= 1, got 0"),
        ("teacher_throughput", ["--limit", "ten"], "--limit: invalid int value: 'ten'"),
        ("paper_table", ["--tasks", "aqua"], "no teacher rationales for 'aqua'"),
        ("seed_spread", ["--tables", "/no/such/table.json"], "/no/such/table.json: not a table paper_table.py wrote"),
    ],
)
def test_benchmark_scripts_bad_arguments(capsys, tmp_path, script, argv, expected):
    one_line_error(capsys, benchmark(script), [*argv, "--output", str(tmp_path / "out")], f"{script}.py", expected)
    assert not any(tmp_path.iterdir())  # refused before anything was written
