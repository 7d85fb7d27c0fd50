"""Encoder-decoder (T5) students through the same recipe, lm-eval tasks and `fcot distill`, on a tiny random T5."""

from __future__ import annotations

import pickle

import pytest
from helpers.scripts import sft_recipe
from transformers import AutoTokenizer

from fcot_plugin.core.errors import FcotError
from fcot_plugin.training.architectures import student_kind

pytestmark = pytest.mark.curated("coin_flip", rows=16)  # the `curated` fixture (tests/conftest.py)


def test_t5_is_a_seq2seq_student_and_lm_eval_detects_it(tiny_t5, tiny_model):
    from lm_eval.models.huggingface import HFLM

    assert student_kind(str(tiny_t5)) == "seq2seq" and student_kind(str(tiny_model)) == "causal"
    assert HFLM(pretrained=str(tiny_t5), device="cpu").backend == "seq2seq"  # lm-eval 0.4.13 finds it by itself


def test_seq2seq_student_on_the_causal_only_path_is_one_line(tiny_t5):
    from fcot_plugin.training.causal import check_causal_lm

    with pytest.raises(FcotError, match=r"is an encoder-decoder model \(T5ForConditionalGeneration\) and this path"):
        check_causal_lm(str(tiny_t5))


def test_seq2seq_config_reuses_the_paper_hyperparameters(tmp_path):
    from fcot_plugin.training.seq2seq import FcotSeq2SeqConfig

    _, sft, _ = (
        sft_recipe()
        .make_parser()
        .parse_args_into_dataclasses(
            ["--model_name_or_path", "x", "--output_dir", str(tmp_path), "--use_cpu", "true", "--bf16", "false"]
        )
    )
    config = FcotSeq2SeqConfig.from_sft_config(sft)
    assert (config.learning_rate, config.per_device_train_batch_size, config.num_train_epochs) == (3e-4, 8, 20.0)
    assert config.optim == "adamw_torch_fused" and config.output_dir == str(tmp_path) and config.use_cpu
    assert (config.max_source_length, config.max_target_length) == (512, 512)  # the paper's 512 + 512
    config.hub_token = "hf_secret"
    assert b"hf_secret" not in pickle.dumps(config)  # training_args.bin is pushed with the model
    sft.packing = True
    with pytest.raises(FcotError, match=r"^packing=True: SFTTrainer options that an encoder-decoder student"):
        FcotSeq2SeqConfig.from_sft_config(sft)


def test_seq2seq_labels_are_the_completion_and_eos_only(tiny_t5, curated, tmp_path):
    import datasets

    from fcot_plugin.training.seq2seq import FcotSeq2SeqConfig, tokenize

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    rows = datasets.load_from_disk(str(curated))["train"].select(range(2))
    args = FcotSeq2SeqConfig(output_dir=str(tmp_path), max_source_length=512, max_target_length=16)
    encoded = tokenize(rows, tokenizer, args)
    for row, features in zip(rows, encoded, strict=True):
        assert tokenizer.decode(features["input_ids"]) == row["prompt"]  # the encoder sees the prompt only
        assert features["labels"][-1] == tokenizer.eos_token_id and len(features["labels"]) == 16  # truncated
        full = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        assert features["labels"][:-1] == full[:15]  # the decoder learns the completion, from its start
