"""The smallest ``fcot distill`` run the tests make: Coin Flip, a tiny student, one epoch, on the CPU."""

from __future__ import annotations

from pathlib import Path

from fcot_plugin.pipeline.settings import DistillArguments

#: The same small run's options on ``fcot distill``'s command line (after the task, student and run folder)
SMALL_RUN = [
    "--eval_limit",
    "2",
    "--epochs",
    "1",
    "--batch_size",
    "4",
    "--max_gen_toks",
    "8",
    "--eval_batch_size",
    "4",
    "--device",
    "cpu",
    "--precision",
    "fp32",
    "--baselines",
    "false",
]


def tiny_args(tiny_model: Path, run_dir: Path, **overrides) -> DistillArguments:
    settings = {
        "task": "coin_flip",
        "student": str(tiny_model),
        "run_dir": str(run_dir),
        "train_limit": 12,
        "eval_limit": 4,
        "epochs": 1,
        "batch_size": 4,
        "precision": "fp32",
        "max_gen_toks": 8,
        "eval_batch_size": 4,
        "device": "cpu",
    }
    return DistillArguments(**{**settings, **overrides})
