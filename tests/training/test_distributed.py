"""recipes/sft.py under every shipped accelerate config, on CPU, as a user launches it (see ds_configs/README.md)."""

from __future__ import annotations

import json
import sys

import pytest
from helpers.paths import REPO

sys.path.insert(0, str(REPO / "ds_configs"))
from validate_ds_configs import validate_ds_config  # noqa: E402


@pytest.mark.parametrize("name", ["zero2.json", "zero3.json"])
def test_deepspeed_json_passes_deepspeeds_own_parser(name):
    parsed = validate_ds_config(REPO / "ds_configs" / name, bf16=True, gradient_accumulation_steps=2)
    assert parsed.zero_optimization_stage == int(name[4])
    assert parsed.bfloat16_config.enabled and parsed.gradient_accumulation_steps == 2
    if name == "zero3.json":
        assert parsed.zero_config.gather_16bit_weights_on_model_save  # save_model() writes model.safetensors


def test_a_broken_deepspeed_config_is_rejected():
    config = json.loads((REPO / "ds_configs" / "zero2.json").read_text())
    config["zero_optimization"]["stage"] = 7
    with pytest.raises(Exception, match="stage"):
        validate_ds_config(config)
