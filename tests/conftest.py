from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Everything runs offline, on the CPU, with no telemetry: the tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

sys.path.insert(0, str(Path(__file__).parent))


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
