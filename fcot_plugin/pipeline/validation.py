"""Choosing the epoch without the test set: a seeded validation slice of the train split, and the epoch best on it.

``fcot distill --epochs N`` holds a few train questions out of curation (never trained on), keeps one checkpoint
per epoch, scores each on the held-out questions with the student's own lm-eval task and answer rules, and
installs the best epoch (ties: the earliest) as the run's student. The slice is written to the run folder's
``data/`` (``validation.json``: ids, seed and size; ``validation.jsonl``: the questions as lm-eval reads them
through ``--metadata '{"fcot_data": ...}'``), so it is recorded and fingerprinted with the curated data.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import read_json, write_json_atomic, write_text_atomic
from fcot_plugin.core.folders import mark_folder
from fcot_plugin.training.checkpoints import WEIGHT_FILE, drop_resume_state

# A fractional validation_size takes at most this many questions: every epoch is scored on all of them.
VALIDATION_CAP = 200
IDS_FILE = "validation.json"
ROWS_FILE = "validation.jsonl"


def validation_count(size: float, pool: int) -> int:
    """Questions to hold out of ``pool``: a fraction (0 < size < 1, at most VALIDATION_CAP) or a count."""
    if size <= 0:
        return 0
    count = min(VALIDATION_CAP, max(1, round(size * pool))) if size < 1 else int(size)
    if count >= pool:
        raise FcotError(
            f"validation_size {size:g} holds out {count} of the {pool} train questions and leaves none to train "
            f"on; pass a smaller --validation_size (or 0 to train on every question and keep the last epoch)"
        )
    return count


def carve(question_ids: Iterable[int], size: float, seed: int) -> list[int]:
    """The held-out question ids: a seeded sample of the train questions (same seed and pool: same slice)."""
    pool = sorted(set(question_ids))
    count = validation_count(size, len(pool))
    return sorted(random.Random(seed).sample(pool, count)) if count else []


def write_validation(data_dir: Path, rows: list[dict[str, Any]], size: float, seed: int, pool: int) -> None:
    """Record the slice beside the curated data: ids (with how they were drawn) and the questions themselves."""
    ids = [row["sample_index"] for row in rows]
    write_json_atomic(
        data_dir / IDS_FILE,
        {"validation_size": size, "validation_seed": seed, "pool": pool, "questions": len(ids), "sample_index": ids},
    )
    write_text_atomic(data_dir / ROWS_FILE, "".join(json.dumps(row) + "\n" for row in rows))
    mark_folder(data_dir, "fcot distill", [IDS_FILE, ROWS_FILE])  # written by fcot: --restart may move them


def held_out_ids(data_dir: Path) -> list[int]:
    """The sample indices a run held out (empty when it selected no epoch)."""
    path = Path(data_dir) / IDS_FILE
    if not path.is_file():
        return []
    return read_json(path, "pass --restart to carve the validation slice again")["sample_index"]


def choose(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch with the best validation accuracy; a tie goes to the earliest (fewer epochs, same evidence)."""
    best = max(entry["accuracy"] for entry in curve)
    return next(entry for entry in curve if entry["accuracy"] == best)


def install(checkpoint: Path, student_dir: Path) -> list[str]:
    """Copy a checkpoint's weights over the student's (config, tokenizer and card stay); returns the files."""
    copied = []
    for path in sorted(checkpoint.iterdir()):
        if path.is_file() and WEIGHT_FILE.match(path.name):
            staging = student_dir / f".{path.name}.partial"
            shutil.copyfile(path, staging)
            staging.replace(student_dir / path.name)
            copied.append(path.name)
    if not copied:
        raise FcotError(f"{checkpoint} holds no model weights; pass --restart to train again")
    return copied


def prune(checkpoints: list[tuple[int, Path]], keep: set[int]) -> None:
    """Delete the epoch checkpoints not in ``keep`` and the optimizer state of those kept (the chosen, the last).

    Training is over when this runs, so only the weights, tokenizer and trainer state of the kept epochs are
    worth their disk.
    """
    for epoch, path in checkpoints:
        if epoch not in keep:
            shutil.rmtree(path)
            continue
        drop_resume_state(path)


def selection_markdown(curve: list[dict[str, Any]], chosen: int, last: int) -> str:
    """The card's note on which epoch the weights are, with the validation curve behind the choice."""
    scores = ", ".join(f"{entry['epoch']}: {100 * entry['accuracy']:.2f}" for entry in curve)
    return (
        f"## Epoch selection\n\nThese weights are epoch {chosen} of {last}, the best on a validation slice of "
        f"{curve[0]['n']} train questions held out of training (`fcot distill`; ties go to the earliest epoch). "
        f"Validation accuracy (%) by epoch: {scores}. The test set played no part in the choice.\n"
    )
