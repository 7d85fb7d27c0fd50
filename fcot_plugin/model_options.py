"""TRL ``ModelConfig`` options that fcot's student SFT does not apply yet: refused, never silently ignored.

``recipes/sft.py`` parses TRL's whole ``ModelConfig`` (so ``--help`` and recipes look like TRL's), but
``fcot_plugin.train`` trains full weights from ``model_name_or_path``: PEFT/LoRA and 4/8-bit loading are
not wired in. Any of those options set away from TRL's default is an error naming each one.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from fcot_plugin.errors import FcotError

APPLIED = ("model_name_or_path", "model_revision", "dtype", "attn_implementation")


def _default(field: Any) -> Any:
    return field.default_factory() if field.default_factory is not MISSING else field.default


def check_model_options(model_args: Any) -> None:
    """Raise one ``FcotError`` listing every ``ModelConfig`` option that is set but would be ignored."""
    from trl import ModelConfig

    ignored = [
        f"{field.name}={getattr(model_args, field.name)!r}"
        for field in fields(ModelConfig)
        if field.name not in APPLIED and getattr(model_args, field.name, _default(field)) != _default(field)
    ]
    if ignored:
        raise FcotError(
            f"{', '.join(ignored)}: fcot's SFT trains full weights and does not apply PEFT/LoRA or 4/8-bit "
            f"loading yet; remove {'this option' if len(ignored) == 1 else 'these options'}"
        )
