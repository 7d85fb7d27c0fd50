"""A real ``transformers serve`` process on a free loopback port: the OpenAI-compatible teacher of the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    from tiny_models import build_tiny_llama

    return sampling_model(build_tiny_llama(path.with_name(path.name + "-source")), path)


@contextmanager
def transformers_serve(model: Path, log: Path, port: int | None = None, timeout: float = 180) -> Iterator[str]:
    """Start ``transformers serve <model>`` on 127.0.0.1 (a free port by default); yield its completions URL."""
    port = port or free_port()
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model),
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "warning"]  # fmt: skip
    with log.open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                    break
            except requests.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve did not start in {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1/completions"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
