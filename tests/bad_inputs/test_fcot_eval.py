"""``fcot-eval`` (lm-eval with fcot's tasks): bad lm-eval arguments and unknown tasks are one line; the corrected
arguments pass fcot's checks."""

from __future__ import annotations

import pytest
from helpers.one_line import one_line_error

from fcot_plugin.cli.fcot_eval import main as eval_main

TEACHER = ["--tasks", "fcot_coin_flip_teacher"]


@pytest.mark.parametrize(
    ("argv", "fixed", "expected"),
    [
        (
            ["--tasks", "multiarith"],
            ["--tasks", "fcot_multiarith"],
            "unknown task 'multiarith': fcot tasks carry the fcot_ prefix, did you mean",
        ),
        (
            [*TEACHER, "--metadata", "{fcot_samples: 2"],
            [*TEACHER, "--metadata", '{"fcot_samples": 1}'],
            "--metadata is not JSON",
        ),
        (
            [*TEACHER, "--metadata", '{"fcot_samples": "four"}'],
            [*TEACHER, "--metadata", '{"fcot_samples": 1}'],
            "fcot_samples must be a whole number >= 1, got 'four'",
        ),
        (
            [*TEACHER, "--metadata", '{"fcot_samples": 2, "fcot_temperature": 0}'],
            [*TEACHER, "--metadata", '{"fcot_samples": 2, "fcot_temperature": 0.7}'],
            "identical greedy rationales",
        ),
        (
            [*TEACHER, "--metadata", '{"fcot_samples": 2}'],
            [*TEACHER, "--metadata", '{"fcot_samples": 1}'],
            'add "fcot_temperature"',
        ),
        (
            ["--model", "hf", "--model_args", "pretrained=/no/such/model", "--tasks", "fcot_coin_flip"],
            ["--model", "hf", "--model_args", "pretrained={model}", "--tasks", "fcot_coin_flip"],
            "--model_args pretrained '/no/such/model' does not exist",
        ),
        (
            ["--model", "zscot", "--model_args", "base=zscot,pretrained=gpt2", *TEACHER],
            ["--model", "zscot", "--model_args", "base=hf,pretrained={model}", *TEACHER],
            "zscot cannot wrap itself",
        ),
    ],
)
def test_fcot_eval_bad_arguments(capsys, tiny_model, argv, fixed, expected):
    from fcot_plugin.cli.fcot_eval import fcot_task_names
    from fcot_plugin.pipeline.preflight import check_lm_eval_arguments

    one_line_error(capsys, eval_main, argv, "fcot-eval", expected)
    check_lm_eval_arguments([arg.replace("{model}", str(tiny_model)) for arg in fixed], fcot_task_names())  # fixed


def test_fcot_eval_a_task_found_nowhere(capsys, tiny_model):
    from fcot_plugin.cli.fcot_eval import main as eval_main

    argv = ["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "fcto_coin_flip", "--limit", "1"]
    line = one_line_error(capsys, eval_main, argv, "fcot-eval", "unknown task 'fcto_coin_flip' (neither fcot's nor")
    assert "did you mean: fcot_coin_flip" in line
