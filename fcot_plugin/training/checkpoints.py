"""Trainer checkpoints: which ones are complete, which files hold the weights, and what only a resume needs.

The one home of the ``checkpoint-N`` name rule; the pipeline's epoch selection and the trainers both read it here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def numbered_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` folder under ``output_dir``, oldest first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    return sorted(
        (int(match[1]), path) for path in folder.iterdir() if path.is_dir() and (match := CHECKPOINT.match(path.name))
    )


def epoch_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """``(epoch, checkpoint folder)`` for every finished epoch, in order (the epoch read from its trainer state)."""
    found = []
    for _, path in numbered_checkpoints(output_dir):
        if (path / "trainer_state.json").is_file():
            found.append((round(json.loads((path / "trainer_state.json").read_text())["epoch"]), path))
    return found


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` under ``output_dir`` that has its ``trainer_state.json``.

    A process killed while saving leaves a checkpoint without it; transformers' ``get_last_checkpoint``
    would pick that one and fail on every later run. It is skipped (and left for the user to look at).
    """
    for _, path in reversed(numbered_checkpoints(output_dir)):
        if (path / "trainer_state.json").is_file():
            return str(path)
    return None


# Files of a checkpoint that hold the weights (full model, shards, or a LoRA adapter); the rest is the same.
WEIGHT_FILE = re.compile(r"^(model|adapter_model|pytorch_model)([-.].*)?\.(safetensors|bin)(\.index\.json)?$")
#: what only a training resumed *from that checkpoint* reads: AdamW and LR-schedule state (DeepSpeed: global_step*/)
RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "global_step*")


def drop_resume_state(checkpoint: str | Path) -> list[str]:
    """Delete a checkpoint's optimizer and scheduler state, keeping its weights; returns the names deleted.

    AdamW state is twice the weights (1 GB of a SmolLM2-135M checkpoint's 1.6 GB). DeepSpeed's ``global_step*/``
    goes only where the checkpoint also holds its weights as files (under ZeRO-3 without gathered weights that
    folder *is* the weights).
    """
    checkpoint = Path(checkpoint)
    has_weights = any(path.is_file() and WEIGHT_FILE.match(path.name) for path in checkpoint.iterdir())
    deleted = []
    for pattern in RESUME_ONLY:
        for path in sorted(checkpoint.glob(pattern)):
            if path.is_dir():
                if not has_weights:
                    continue
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            deleted.append(path.name)
    return deleted
