"""TRL ModelConfig PEFT flags: LoRA options are applied, contradictions and impossible quantisation are one line."""

from __future__ import annotations

import re

import pytest

from fcot_plugin.core.errors import FcotError
from fcot_plugin.training import model_options
from fcot_plugin.training.model_options import check_model_options
from fcot_plugin.training.sft import main, make_parser


def parse(tmp_path, *extra: str):
    return make_parser().parse_args_into_dataclasses(
        [
            "--model_name_or_path",
            str(tmp_path / "no-model"),
            "--dataset_name",
            str(tmp_path / "no-data"),
            "--task",
            "coin_flip",
            "--output_dir",
            str(tmp_path / "out"),
            "--use_cpu",
            "true",
            *extra,
        ]
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lora_r", "8"], "lora_r=8: LoRA options with a full-weights config (use_peft is false) would be ignored"),
        (
            ["--lora_target_modules", "q_proj", "v_proj", "--use_dora"],
            "lora_target_modules=['q_proj', 'v_proj'], use_dora=True: LoRA options with a full-weights config",
        ),
        (["--load_in_4bit"], "load_in_4bit: quantised weights cannot be fully fine-tuned; add use_peft: true"),
        (["--use_peft", "--bnb_4bit_quant_type", "fp4"], "bnb_4bit_quant_type='fp4': 4-bit options without load_in_4"),
        (["--merge_adapter", "true"], "merge_adapter merges a LoRA adapter and this config trains full weights"),
    ],
)
def test_lora_flags_that_would_be_ignored_are_refused_before_anything_loads(tmp_path, flags, message):
    with pytest.raises(FcotError, match=rf"^{re.escape(message)}"):
        main(*parse(tmp_path, *flags))  # refused before the (missing) dataset or model is touched
    assert not (tmp_path / "out").exists()


def test_qlora_without_cuda_is_one_line(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _, _, model_args = parse(tmp_path, "--use_peft", "--load_in_4bit")
    with pytest.raises(
        FcotError, match=r"^load_in_4bit needs bitsandbytes on a CUDA GPU and this machine has no CUDA"
    ):
        check_model_options(model_args)


def test_qlora_without_bitsandbytes_is_one_line(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    find_spec = model_options.importlib.util.find_spec
    monkeypatch.setattr(
        model_options.importlib.util, "find_spec", lambda name: None if name == "bitsandbytes" else find_spec(name)
    )
    _, _, model_args = parse(tmp_path, "--use_peft", "--load_in_8bit")
    with pytest.raises(FcotError, match=r"^load_in_8bit needs .* bitsandbytes is not installed \(pip install"):
        check_model_options(model_args)


def test_lora_and_applied_options_pass(tmp_path):
    _, _, model_args = parse(tmp_path, "--dtype", "bfloat16", "--attn_implementation", "sdpa", "--model_revision", "v")
    check_model_options(model_args)
    _, _, model_args = parse(tmp_path, "--use_peft", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj")
    check_model_options(model_args)
