"""A short ``recipes/sft.py`` run on the CPU: the shipped SmolLM2 recipe on MultiArith, 24 steps, checkpoints at 12."""

from __future__ import annotations

from pathlib import Path

from helpers.paths import REPO


def recipe_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(REPO / "recipes" / "SmolLM2-135M-Instruct" / "sft" / "config_fcot.yaml"),
        "--model_name_or_path",
        str(model),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--learning_rate",
        "3e-3",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "24",
        "--logging_steps",
        "4",
        "--save_strategy",
        "steps",
        "--save_steps",
        "12",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--report_to",
        "none",
        "--task",
        "multiarith",
        *extra,
    ]
