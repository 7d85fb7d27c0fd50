"""``recipes/sft.py``: bad arguments, recipe files, datasets, models and numbers out of range are one line, with
nothing written; the corrected arguments parse."""

from __future__ import annotations

import pytest
from helpers.one_line import one_line_error
from helpers.paths import REPO
from helpers.scripts import sft_recipe

from fcot_plugin.cli.fcot import main as fcot


def sft_fails(capsys, argv: list[str], expected: str) -> str:
    return one_line_error(capsys, sft_recipe().main, argv, "sft.py", expected)


RECIPE = str(REPO / "recipes" / "SmolLM2-135M-Instruct" / "sft" / "config_fcot.yaml")


@pytest.mark.parametrize(
    ("argv", "fixed", "expected"),
    [
        (
            ["--num_train_epochs", "three"],
            ["--num_train_epochs", "3"],
            "--num-train-epochs: invalid float value: 'three' (see sft.py --help)",
        ),
        (
            ["--config", "/no/such/recipe.yaml"],
            ["--config", RECIPE],
            "No such file or directory: '/no/such/recipe.yaml'",
        ),
        (["--task", "coinflip"], ["--task", "coin_flip"], "unknown fcot task 'coinflip'"),
        (
            ["--dataset_name", "x", "--model_name_or_path", "y"],
            ["--dataset_name", "x", "--model_name_or_path", "y", "--task", "multiarith"],
            "task is required (e.g. task: multiarith)",
        ),
    ],
)
def test_sft_bad_arguments(capsys, tmp_path, argv, fixed, expected):
    common = ["--output_dir", str(tmp_path / "out"), "--use_cpu", "true"]
    sft_fails(capsys, [*argv, *common], expected)
    assert not (tmp_path / "out").exists()
    script_args, _, _ = sft_recipe().make_parser().parse_args_and_config([*fixed, *common])  # the fix parses
    assert not (tmp_path / "out").exists()


def test_sft_bad_recipe_files(capsys, tmp_path):
    recipe = f"task: coin_flip\nuse_cpu: true\noutput_dir: {tmp_path / 'out'}\nlearning_rat: 0.1\n"
    (tmp_path / "unknown.yaml").write_text(recipe)
    sft_fails(
        capsys, ["--config", str(tmp_path / "unknown.yaml")], "Unknown arguments from config file: ['--learning_rat'"
    )
    (tmp_path / "broken.yaml").write_text("task: coin_flip\n  learning_rate: [\n")
    sft_fails(capsys, ["--config", str(tmp_path / "broken.yaml")], "mapping values are not allowed here")


def test_sft_missing_dataset_and_model(capsys, tmp_path, tiny_model):
    base = ["--task", "coin_flip", "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"]
    sft_fails(
        capsys,
        [*base, "--dataset_name", str(tmp_path / "nope"), "--model_name_or_path", str(tiny_model)],
        f"could not load the training dataset '{tmp_path / 'nope'}'",
    )
    fcot(["curate", "--task", "coin_flip", "--samples", "paper", "--out", str(tmp_path / "data")])
    sft_fails(
        capsys,
        [*base, "--dataset_name", str(tmp_path / "data"), "--model_name_or_path", str(tmp_path / "m")],
        f"cannot load the student '{tmp_path / 'm'}'",
    )
    sft_fails(
        capsys,
        [
            *base,
            "--dataset_name",
            str(tmp_path / "data"),
            "--model_name_or_path",
            str(tiny_model),
            "--push_to_hub",
            "true",
        ],
        "push_to_hub needs hub_model_id",
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("bad", "fixed", "expected"),
    [
        (["--num_train_epochs", "-2"], ["--num_train_epochs", "2"], "num_train_epochs must be > 0 (or set max_steps)"),
        (["--learning_rate", "0"], ["--learning_rate", "3e-4"], "learning_rate must be > 0, got 0.0"),
        (
            ["--per_device_train_batch_size", "0"],
            ["--per_device_train_batch_size", "2"],
            "per_device_train_batch_size must be >= 1, got 0",
        ),
        (
            ["--gradient_accumulation_steps", "0"],
            ["--gradient_accumulation_steps", "2"],
            "gradient_accumulation_steps must be >= 1, got 0",
        ),
    ],
)
def test_sft_numbers_out_of_range(capsys, tmp_path, tiny_model, bad, fixed, expected):
    base = [
        "--task",
        "coin_flip",
        "--model_name_or_path",
        str(tiny_model),
        "--dataset_name",
        "x",
        "--output_dir",
        str(tmp_path / "out"),
        "--use_cpu",
        "true",
        "--report_to",
        "none",
    ]
    one_line_error(capsys, sft_recipe().main, [*base, *bad], "sft.py", expected)
    assert not (tmp_path / "out").exists()
    sft_recipe().make_parser().parse_args_and_config([*base, *fixed])
