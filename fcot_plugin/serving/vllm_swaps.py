"""One vLLM server for many models of one architecture: the first model starts it, each later one is swapped into
it in place (vLLM's own ``reload_weights`` through ``POST /collective_rpc``, a few seconds against the tens of
seconds of a new server's start-up). Tied-embedding models are served untied
(:mod:`~fcot_plugin.serving.swappable_weights`), so a swap replaces the output head too."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from fcot_plugin.serving.endpoint import EngineError, ServedModel, model_name
from fcot_plugin.serving.served import served_model
from fcot_plugin.serving.swappable_weights import swappable_view

logger = logging.getLogger(__name__)

#: seconds a weight swap may take: far above a small model's swap (benchmarks/results/design_measurements.md)
SWAP_TIMEOUT = 600.0


def swap_weights(served: ServedModel, weights: str | os.PathLike) -> float:
    """Load ``weights`` (a folder or Hub id of the served architecture) into the running vLLM server, in place,
    and empty its prefix cache, so no answer reuses attention state computed by the previous weights. Needs a
    server started with ``weight_swaps=True``; nothing may be in flight. Returns the seconds it took."""
    import requests

    if served.engine != "vllm":
        raise EngineError(f"only vllm swaps weights in a running server, not {served.engine}")
    root = served.base_url.rsplit("/v1/", 1)[0]
    path = model_name(weights)
    started = time.monotonic()
    try:
        answer = requests.post(
            f"{root}/collective_rpc",
            timeout=SWAP_TIMEOUT,
            json={"method": "reload_weights", "kwargs": {"weights_path": path}},
        )
        if answer.status_code == 404:
            raise EngineError("the vLLM server has no /collective_rpc: start it with weight_swaps=True")
        if not answer.ok:
            raise EngineError(
                f"vLLM could not load {path} into the served model (HTTP {answer.status_code}): it must hold "
                f"safetensors weights of the same architecture; see {served.log_file}"
            )
        deadline = time.monotonic() + 60
        while not requests.post(f"{root}/reset_prefix_cache", timeout=60).json().get("success"):
            if time.monotonic() > deadline:  # pragma: no cover - only while requests are in flight
                raise EngineError(f"vLLM did not empty its prefix cache after loading {path}; see {served.log_file}")
            time.sleep(0.5)
    except requests.exceptions.RequestException as error:
        raise EngineError(
            f"the vLLM server stopped answering while loading {path} ({type(error).__name__}); see {served.log_file}"
        ) from None
    return time.monotonic() - started


class SwappingServer:
    """A vLLM server whose weights follow :meth:`load`: the first call starts it, later calls swap weights in.

    ``served_name`` is what the server calls the model, whichever weights it holds; ``server_options`` go to
    :func:`~fcot_plugin.serving.served.served_model`. ``close`` stops it; it is a context manager too.
    """

    def __init__(self, log_file: str | Path, served_name: str, **server_options: object) -> None:
        self.log_file = Path(log_file)
        self.served_name = served_name
        self.server_options = server_options
        self._stack = ExitStack()
        self.served: ServedModel | None = None
        self.loaded: str | None = None
        self.start_up_seconds: float | None = None  #: from the first call until the server answered
        self.swap_seconds: list[float] = []  #: each weight swap, in order

    def load(self, path: str) -> ServedModel:
        """The server, holding the weights of ``path`` (a folder or Hub id) now."""
        if self.served is None:
            started = time.monotonic()
            self._views = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="fcot-vllm-views-")))
            server = served_model(
                self._view(path),
                "vllm",
                self.log_file,
                served_name=self.served_name,
                weight_swaps=True,
                **self.server_options,
            )
            self.served = self._stack.enter_context(server)
            self.start_up_seconds = time.monotonic() - started
        elif path != self.loaded:
            started = time.monotonic()
            swap_weights(self.served, self._view(path))
            self.swap_seconds.append(time.monotonic() - started)
            logger.info("vllm: swapped in the weights of %s (%.1f s)", path, self.swap_seconds[-1])
        self.loaded = path
        return self.served

    def _view(self, path: str) -> str:
        """The folder the server loads ``path`` from (untied when tied); earlier views go, as the server holds
        their weights already."""
        for old in self._views.iterdir():
            shutil.rmtree(old, ignore_errors=True)
        return str(swappable_view(path, self._views / str(len(self.swap_seconds))))

    def close(self) -> None:
        self._stack.close()
        self.served = self.loaded = None

    def __enter__(self) -> SwappingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
