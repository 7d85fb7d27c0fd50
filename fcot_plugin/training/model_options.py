"""TRL ``ModelConfig`` options: LoRA (peft) and 4/8-bit loading are applied, contradictions are refused.

``recipes/sft.py`` parses TRL's whole ``ModelConfig``. ``fcot_plugin.training.sft`` applies ``use_peft`` and the
``lora_*`` options through TRL's ``get_peft_config`` and ``load_in_4bit``/``load_in_8bit`` through
``get_quantization_config``. Each combination that would be silently ignored or cannot run on this machine is one
``FcotError`` naming the fix: LoRA options with a full-weights config, bitsandbytes options without quantisation,
quantisation without LoRA, and quantisation without bitsandbytes and a CUDA GPU.
"""

from __future__ import annotations

import importlib.util
from dataclasses import MISSING, fields
from typing import Any

from fcot_plugin.core.errors import FcotError

LORA_OPTIONS = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "lora_target_parameters",
    "lora_modules_to_save",
    "lora_task_type",
    "use_rslora",
    "use_dora",
)
QUANTISATION_OPTIONS = ("load_in_4bit", "load_in_8bit")
BNB_4BIT_OPTIONS = ("bnb_4bit_quant_type", "use_bnb_nested_quant", "bnb_4bit_quant_storage")


def _default(field: Any) -> Any:
    return field.default_factory() if field.default_factory is not MISSING else field.default


def _changed(model_args: Any, names: tuple[str, ...]) -> list[str]:
    """``name=value`` for each option in ``names`` set away from TRL's default."""
    from trl import ModelConfig

    defaults = {field.name: _default(field) for field in fields(ModelConfig)}
    return [
        f"{name}={getattr(model_args, name)!r}"
        for name in names
        if name in defaults and getattr(model_args, name, defaults[name]) != defaults[name]
    ]


def quantisation_unavailable() -> str | None:
    """Why 4/8-bit loading cannot run here (bitsandbytes needs a CUDA GPU), or ``None`` when it can."""
    import torch

    if not torch.cuda.is_available():
        return "this machine has no CUDA GPU"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    return None


def check_model_options(model_args: Any) -> None:
    """Raise one ``FcotError`` for ``ModelConfig`` options that would be ignored or cannot work on this machine."""
    lora = _changed(model_args, LORA_OPTIONS)
    if lora and not model_args.use_peft:
        raise FcotError(
            f"{', '.join(lora)}: LoRA options with a full-weights config (use_peft is false) would be ignored; "
            f"add use_peft: true (--use_peft) to train a LoRA adapter, or remove them"
        )
    bnb = _changed(model_args, BNB_4BIT_OPTIONS)
    if bnb and not model_args.load_in_4bit:
        raise FcotError(
            f"{', '.join(bnb)}: 4-bit options without load_in_4bit would be ignored; add it or remove them"
        )
    quantised = [name for name in QUANTISATION_OPTIONS if getattr(model_args, name)]
    if quantised:
        if not model_args.use_peft:
            raise FcotError(
                f"{quantised[0]}: quantised weights cannot be fully fine-tuned; add use_peft: true (QLoRA) or drop it"
            )
        reason = quantisation_unavailable()
        if reason:
            raise FcotError(
                f"{quantised[0]} needs bitsandbytes on a CUDA GPU and {reason}; remove it to train the LoRA adapter "
                f"on full-precision weights"
            )
