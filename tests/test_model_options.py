"""TRL ModelConfig options that fcot's SFT does not apply (PEFT/LoRA, 4/8-bit) are refused with one line."""

from __future__ import annotations

import re

import pytest

from fcot_plugin.errors import FcotError
from fcot_plugin.model_options import check_model_options
from fcot_plugin.train import main, make_parser


def parse(tmp_path, *extra: str):
    return make_parser().parse_args_into_dataclasses([
        "--model_name_or_path", str(tmp_path / "no-model"), "--dataset_name", str(tmp_path / "no-data"),
        "--task", "coin_flip", "--output_dir", str(tmp_path / "out"), "--use_cpu", "true", *extra,
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--use_peft"], "use_peft=True"),
        (["--load_in_4bit"], "load_in_4bit=True"),
        (["--load_in_8bit", "--lora_r", "8"], "lora_r=8, load_in_8bit=True"),
        (["--lora_target_modules", "q_proj", "v_proj"], "lora_target_modules=['q_proj', 'v_proj']"),
    ],
)
def test_ignored_model_options_are_refused_before_anything_loads(tmp_path, flags, named):
    with pytest.raises(FcotError, match=rf"^{re.escape(named)}: fcot's SFT trains full weights .* remove th"):
        main(*parse(tmp_path, *flags))  # refused before the (missing) dataset or model is touched
    assert not (tmp_path / "out").exists()


def test_applied_options_pass(tmp_path):
    _, _, model_args = parse(tmp_path, "--dtype", "bfloat16", "--attn_implementation", "sdpa", "--model_revision", "v")
    check_model_options(model_args)
