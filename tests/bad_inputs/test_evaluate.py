"""``fcot evaluate``: a missing model, an unknown engine and numbers out of range are one line; the corrected
arguments parse."""

from __future__ import annotations

import pytest
from helpers.one_line import one_line_error

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.core.command_line import settings_parser
from fcot_plugin.pipeline.settings import EvaluateArguments


def test_evaluate_missing_model(capsys, tmp_path):
    one_line_error(
        capsys,
        fcot,
        ["evaluate", "--model", str(tmp_path / "nope"), "--task", "coin_flip"],
        "fcot",
        f"--model '{tmp_path / 'nope'}' does not exist",
    )


def test_evaluate_eval_engine_unknown(capsys, tiny_model):
    base = ["--model", str(tiny_model), "--task", "coin_flip"]
    expected = "unknown --eval_engine 'sglang'; choose one of: hf-regroup, hf, vllm"
    one_line_error(capsys, fcot, ["evaluate", *base, "--eval_engine", "sglang"], "fcot", expected)
    for engine in ("hf-regroup", "hf", "vllm"):
        settings_parser(EvaluateArguments).parse_args_into_dataclasses([*base, "--eval_engine", engine])


@pytest.mark.parametrize(
    ("bad", "fixed", "expected"),
    [
        (["--limit", "0"], ["--limit", "2"], "--limit must be >= 1, got 0"),
        (["--batch_size", "0"], ["--batch_size", "8"], "--batch_size must be >= 1, got 0"),
        (["--max_gen_toks", "-1"], ["--max_gen_toks", "8"], "--max_gen_toks must be >= 1, got -1"),
    ],
)
def test_evaluate_numbers_out_of_range(capsys, tiny_model, bad, fixed, expected):
    base = ["--model", str(tiny_model), "--task", "coin_flip"]
    one_line_error(capsys, fcot, ["evaluate", *base, *bad], "fcot", expected)
    settings_parser(EvaluateArguments).parse_args_into_dataclasses([*base, *fixed])
