"""The suite's shared fixtures, each defined once: tiny models, curated datasets, a local Hub, the embedded student,
a vLLM server, the embedded teacher's GGUF and llama.cpp's server. Helpers that are not fixtures live in
``tests/helpers/``.

A module picks a fixture's variant with a marker (registered in pyproject.toml), as pytest's docs show::

    pytestmark = pytest.mark.curated("multiarith", rows=16)  # the module's `curated` dataset
    pytestmark = pytest.mark.hub(orgs={"team": "write"}, restrict_writes=True)  # the accounts of its `hub`
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Everything runs offline, on the CPU, with no telemetry: the tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

sys.path.insert(0, str(Path(__file__).parent))  # `from helpers.serving import ...`, wherever the test module lives


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama with its tokenizer, saved as a normal Hugging Face folder."""
    from helpers.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A tiny random T5 (encoder-decoder) with the same offline tokenizer, saved as a normal folder."""
    from helpers.tiny_models import build_tiny_t5

    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def curated_dataset(tmp_path_factory) -> Callable[..., Path]:
    """``make(task, rows)``: the first ``rows`` rows (all with ``None``) of the paper's Fine-tune-CoT set for ``task``,
    saved as ``fcot curate`` saves it; made once per session for each task and size (the tests only read it)."""
    from fcot_plugin.curation.dataset import curate, save_dataset

    made: dict[tuple[str, int | None], Path] = {}

    def make(task: str = "coin_flip", rows: int | None = 16) -> Path:
        if (task, rows) not in made:
            result = curate(task, "paper")
            result.rows = result.rows[:rows]
            made[task, rows] = save_dataset(result, tmp_path_factory.mktemp("data") / f"{task}_fcot")
        return made[task, rows]

    return make


@pytest.fixture(scope="module")
def curated(request, curated_dataset) -> Path:
    """A small curated dataset for training: 16 Coin Flip rows, or what the module's ``curated`` marker asks."""
    marker = request.node.get_closest_marker("curated")
    return curated_dataset(*marker.args, **marker.kwargs) if marker else curated_dataset()


@pytest.fixture
def hub(request, tmp_path, monkeypatch):
    """A fresh local Hub (``helpers/hub_server.py``) that every client talks to for this test; the module's ``hub``
    marker passes its accounts to ``LocalHub``. The test fails if the hub hit an internal error."""
    from helpers.hub_server import local_hub_session

    marker = request.node.get_closest_marker("hub")
    with local_hub_session(tmp_path, monkeypatch, **(marker.kwargs if marker else {})) as session:
        yield session
    assert not session.hub.errors, "\n".join(session.hub.errors)


@pytest.fixture
def local_hub(hub):
    """The ``LocalHub`` behind ``hub``: its request log, injected faults and repo heads."""
    return hub.hub


@pytest.fixture(scope="session")
def student() -> Path:
    """The embedded SmolLM2-135M-Instruct student (converted once from the installed GGUF)."""
    from fcot_plugin.training.students import EMBEDDED_STUDENT, resolve_student

    return Path(resolve_student(EMBEDDED_STUDENT))


@pytest.fixture(scope="session")
def vllm_env() -> Path:
    """The python of ``make vllm``'s environment; a test that needs it skips, saying why, where there is none."""
    from fcot_plugin.core.errors import FcotError
    from fcot_plugin.serving.vllm import vllm_python

    try:
        return vllm_python()
    except FcotError as error:
        pytest.skip(f"vLLM is not installed: {error}")


@pytest.fixture(scope="module")
def vllm_server(vllm_env, student, tmp_path_factory) -> Iterator:
    """One vLLM server on the embedded student for a module's runs (module scope: it stops before the next
    module's tests start)."""
    from fcot_plugin.serving.served import served_model

    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with served_model(student, "vllm", log, max_model_len=2048, kv_cache_gib=1) as served:
        yield served


@pytest.fixture(scope="session")
def teacher_gguf() -> Path:
    """The embedded 0.5B teacher's GGUF in fcot's cache; a test that needs it skips, saying how to get it."""
    from fcot_plugin.teacher import embedded

    teacher = embedded.TEACHERS["0.5b"]
    if not embedded.gguf_is_checked(teacher):
        pytest.skip("the 0.5B teacher's GGUF is not in fcot's cache: run `make teacher TEACHERS=0.5b GGUF_ONLY=1`")
    return embedded.gguf_path(teacher)


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """``$FCOT_LLAMA_SERVER``, else fcot's build of ``llama-server`` for this CPU (``make teacher``); a test that
    needs it skips, saying why, where there is none."""
    from fcot_plugin.core.errors import FcotError
    from fcot_plugin.serving.llamacpp import llama_server

    try:
        return llama_server()
    except FcotError as error:
        pytest.skip(f"llama.cpp's server is not built: {error}")


def _closed(stream) -> bool:
    while stream is not None:
        if getattr(stream, "closed", False):
            return True
        stream = getattr(stream, "wrapped", None)  # fcot's RedactingStream around a captured stream
    return False


@pytest.fixture(autouse=True)
def _no_handler_on_a_closed_stream():
    """A command run under capsys may leave a logging handler (lm-eval's) on that test's captured stderr; once
    pytest closes it, the next log line would print logging's own "--- Logging error ---" traceback."""
    yield
    import logging

    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in list(getattr(logger, "handlers", ())):
            if isinstance(handler, logging.StreamHandler) and _closed(handler.stream):
                logger.removeHandler(handler)
