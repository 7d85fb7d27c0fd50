"""State files that survive a kill: atomic writes, readable failures, and complete checkpoints only.

A file is written to a temporary name in the same folder, flushed to disk and renamed over the old one, so a
reader sees the old file or the new one, never half of either. A file that is damaged anyway (a disk that
lied, a hand edit) is named in the error together with what to do about it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError


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
    except RecursionError:  # nested thousands deep
        raise FcotError(f"{path} is damaged (nested too deeply); {fix}") from None


def read_json_object(path: str | Path, fix: str, required: dict[str, type | tuple[type, ...]] | None = None) -> dict:
    """The JSON object in ``path``, its ``required`` keys of their types; anything else (``[1, 2, 3]``, a key of the
    wrong type) raises an :class:`FcotError` naming the file, what is wrong and ``fix``."""
    value = read_json(path, fix)
    if not isinstance(value, dict):
        raise FcotError(f"{path} is damaged (a JSON {type(value).__name__}, not an object); {fix}")
    for key, expected in (required or {}).items():
        if not isinstance(value.get(key), expected):
            raise FcotError(f"{path} is damaged ({key!r} is missing or not of the right type); {fix}")
    return value


#: The files a benchmark writes beside each other under one ``--output`` name
RESULT_SUFFIXES = (".json", ".md", ".png")


def result_file(output: str | Path, suffix: str) -> Path:
    """``<output><suffix>``: a benchmark's ``--output`` names its results without a suffix. A dot inside the name
    stays (``teacher_throughput_qwen2.5-coder-0.5b``); a ``.json``, ``.md`` or ``.png`` given anyway is replaced."""
    path = Path(output)
    if path.suffix in RESULT_SUFFIXES:
        path = path.with_suffix("")
    return path.with_name(path.name + suffix)
