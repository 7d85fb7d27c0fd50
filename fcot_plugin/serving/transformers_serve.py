"""``transformers serve`` (fcot's own environment, extra ``transformers[serving]``): OpenAI-compatible, answers one
request at a time, loads folders, Hub ids and GGUF files."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence

from fcot_plugin.serving.endpoint import HOST, EngineError

NUM_CONCURRENT = 1  # requests in flight: it answers one at a time


def check_installed() -> None:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        raise EngineError("`transformers serve` needs transformers[serving]: pip install 'transformers[serving]'")


def command(model: str, port: int, *, dtype: str, device: str | None, extra_args: Sequence[str] = ()) -> list[str]:
    """The server's command line (this interpreter)."""
    line = [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", HOST]
    line += ["--port", str(port), "--device", device or "auto", "--dtype", dtype, "--log-level", "warning"]
    return line + list(extra_args)


def environment(threads: int) -> dict[str, str]:
    """This environment with the thread count."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}
