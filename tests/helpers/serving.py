"""A real ``transformers serve`` process on a free loopback port: the OpenAI-compatible teacher of the tests."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fcot_plugin.serving.endpoint import free_port
from fcot_plugin.serving.served import served_model

__all__ = [
    "build_served_model",
    "cache_rows",
    "free_port",
    "killed_once_cached",
    "sampling_model",
    "transformers_serve",
]


def sampling_model(source: Path, target: Path) -> Path:
    """``source`` (weights linked, not copied) with ``do_sample: true`` in its generation config.

    ``transformers serve`` samples only when the model's generation config says so (a request's temperature
    alone does not switch sampling on), as for most released chat models; temperature 0 stays greedy.
    """
    from transformers import GenerationConfig

    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.name != "generation_config.json":
            (target / path.name).symlink_to(path.resolve())
    config = GenerationConfig.from_pretrained(source)
    config.do_sample = True
    config.save_pretrained(target)
    return target


def build_served_model(path: Path) -> Path:
    """The tests' tiny Llama, sampling (see :func:`sampling_model`)."""
    from helpers.tiny_models import build_tiny_llama

    return sampling_model(build_tiny_llama(path.with_name(path.name + "-source")), path)


@contextmanager
def transformers_serve(model: Path, log: Path, port: int | None = None, timeout: float = 180) -> Iterator[str]:
    """Start ``transformers serve <model>`` on 127.0.0.1 (a free port by default); yield its completions URL.

    :func:`fcot_plugin.serving.served.served_model` with the ``transformers`` engine, on the CPU, in the model's
    own dtype; the server's process group is stopped when the block ends.
    """
    with served_model(
        model, "transformers", log, port=port, dtype="auto", device="cpu", start_timeout=timeout, progress=None
    ) as served:
        yield served.base_url


def cache_rows(path: Path) -> dict[str, tuple[int, str]]:
    """The teacher cache's entries, read as another process would (empty while the file is being created)."""
    if not path.is_file():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return {key: (stage, text) for key, stage, text in db.execute("SELECT key, stage, text FROM responses")}
    except sqlite3.OperationalError:  # no table yet, or locked for a moment
        return {}


def killed_once_cached(command: list[str], cwd: Path, cache: Path, responses: int, timeout: float) -> int:
    """Run ``command`` in ``cwd`` and SIGKILL it as soon as ``cache`` holds ``responses`` responses (a teacher killed
    mid-run); returns its exit code, ``-SIGKILL`` unless it finished first."""
    run = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        if len(cache_rows(cache)) >= responses:
            run.send_signal(signal.SIGKILL)
            break
        time.sleep(0.1)
    return run.wait()
