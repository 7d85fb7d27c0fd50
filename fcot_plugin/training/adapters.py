"""LoRA students (peft): what an adapter folder is trained from, how lm-eval loads it, and merging on request.

A LoRA run saves only the adapter (``adapter_config.json`` + ``adapter_model.safetensors``); the base model is named
inside ``adapter_config.json``. lm-eval's ``hf`` model loads the pair with ``pretrained=<base>,peft=<adapter>``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError

ADAPTER_CONFIG = "adapter_config.json"
MERGED_DIR = "merged"  # <output_dir>/merged: the base model with the adapter merged in (merge_adapter: true)


def _adapter_config(model: str | Path) -> Path | None:
    """``adapter_config.json`` of a local folder or Hub repo; ``None`` for a full model (or an unreachable Hub)."""
    local = Path(model).expanduser()
    if local.exists():
        return local / ADAPTER_CONFIG if (local / ADAPTER_CONFIG).is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(str(model), ADAPTER_CONFIG))
    except (EntryNotFoundError, LocalEntryNotFoundError, HFValidationError, OSError):
        return None  # not an adapter, or offline: lm-eval then loads `model` itself and names any problem


def adapter_base(model: str | Path) -> str | None:
    """The base model an adapter (local folder or Hub repo) was trained from; ``None`` for a full model."""
    config_file = _adapter_config(model)
    if config_file is None:
        return None
    base = json.loads(config_file.read_text()).get("base_model_name_or_path")
    if not base:
        raise FcotError(
            f"{config_file} names no base_model_name_or_path; save the adapter with peft's save_pretrained"
        )
    return base


def lm_eval_model_args(model: str | Path, dtype: str) -> str:
    """lm-eval ``hf`` model args for a full model folder/Hub id, or ``pretrained=<base>,peft=<adapter>``."""
    base = adapter_base(model)
    if base is None:
        return f"pretrained={model},dtype={dtype}"
    return f"pretrained={base},peft={model},dtype={dtype}"


def lora_summary(model_args) -> dict[str, Any] | None:
    """The LoRA settings a card states, from TRL's ``ModelConfig`` (``None`` for full fine-tuning)."""
    if not model_args.use_peft:
        return None
    names = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "use_rslora", "use_dora")
    quantised = "4-bit" if model_args.load_in_4bit else "8-bit" if model_args.load_in_8bit else None
    return {name: getattr(model_args, name) for name in names} | {"quantised_base": quantised}


def save_merged(adapter_dir: str | Path, kind: str, dtype: str | None = None) -> Path:
    """Reload the base in full precision with the adapter, merge, save to ``<adapter_dir>/merged``; returns it.

    The base is loaded afresh (not the trained, possibly 4/8-bit, model in memory), so a QLoRA adapter merges
    into full-precision weights.
    """
    from peft import AutoPeftModelForCausalLM, AutoPeftModelForSeq2SeqLM
    from transformers import AutoTokenizer

    adapter_dir = Path(adapter_dir)
    loader = AutoPeftModelForSeq2SeqLM if kind == "seq2seq" else AutoPeftModelForCausalLM
    merged = loader.from_pretrained(str(adapter_dir), dtype=dtype or "float32").merge_and_unload()
    target = adapter_dir / MERGED_DIR
    shutil.rmtree(target, ignore_errors=True)
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(target)
    return target
