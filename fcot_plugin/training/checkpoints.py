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
#: What a saved tokenizer of any kind writes: one of these in a folder means it holds a tokenizer
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "spiece.model",
    "vocab.json",
    "vocab.txt",
)


def has_tokenizer(folder: Path) -> bool:
    """Whether ``folder`` holds a saved tokenizer (one of the files any kind of tokenizer writes)."""
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


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


MADE_BY = "sft.py"


def training_record(task: str | None, dataset: str | None, dataset_format: str) -> dict[str, str | None]:
    """What a training output folder was made for: the task, the dataset (a local one by absolute path)."""
    local = Path(dataset).expanduser() if dataset else None
    return {
        "task": task,
        "dataset": str(local.resolve()) if local is not None and local.exists() else dataset,
        "dataset_format": dataset_format,
    }


def check_training_output(output_dir: str, record: dict[str, str | None]) -> Path:
    """Before training: ``output_dir`` is safe to write (:func:`~fcot_plugin.core.folders.check_output_folder`) and
    holds no checkpoint of another task or dataset, which the trainer would resume from (see :func:`mark_training`).
    """
    from fcot_plugin.core.errors import FcotError
    from fcot_plugin.core.folders import check_output_folder, read_marker

    folder = check_output_folder(output_dir, "output_dir", made_by=MADE_BY)
    recorded = (read_marker(folder) or {}).get("training") if folder.is_dir() else None
    if recorded and recorded != record and last_complete_checkpoint(folder):
        changed = ", ".join(
            f"{key} {recorded.get(key)!r}, not {value!r}"
            for key, value in record.items()
            if recorded.get(key) != value
        )
        raise FcotError(
            f"output_dir {folder} holds checkpoints of another training ({changed}), which this one would resume "
            f"from; pass another output_dir, or delete its checkpoint-* folders to start over"
        )
    return folder


def mark_training(output_dir: str | Path, record: dict[str, str | None]) -> None:
    """Record in ``output_dir``'s marker what its checkpoints are of, as training starts."""
    from fcot_plugin.core.folders import mark_folder

    mark_folder(output_dir, MADE_BY, training=record)
