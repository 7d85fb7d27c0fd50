"""State files that survive a kill: atomic writes, readable failures, and complete checkpoints only.

A file is written to a temporary name in the same folder, flushed to disk and renamed over the old one, so a
reader sees the old file or the new one, never half of either. A file that is damaged anyway (a disk that
lied, a hand edit) is named in the error together with what to do about it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fcot_plugin.errors import FcotError

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via temp file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8", errors="surrogateescape"))


def write_json_atomic(path: str | Path, value: Any) -> Path:
    return write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def read_json(path: str | Path, fix: str) -> Any:
    """The JSON in ``path``; a damaged file raises an :class:`FcotError` naming it and ``fix``."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 text"
        raise FcotError(f"{path} is damaged ({reason}); {fix}") from None


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` under ``output_dir`` that has its ``trainer_state.json``.

    A process killed while saving leaves a checkpoint without it; transformers' ``get_last_checkpoint``
    would pick that one and fail on every later run. It is skipped (and left for the user to look at).
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    numbered = sorted(
        (
            (int(match[1]), path)
            for path in folder.iterdir()
            if path.is_dir() and (match := _CHECKPOINT.match(path.name))
        ),
        reverse=True,
    )
    for _, path in numbered:
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
