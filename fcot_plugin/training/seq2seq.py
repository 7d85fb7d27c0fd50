"""Encoder-decoder students (T5, Flan-T5): transformers' ``Seq2SeqTrainer`` behind the recipe and ``fcot distill``.

TRL's ``SFTTrainer`` has no encoder-decoder path. Here the prompt ``{question} ###`` is the encoder input and the
completion `` {rationale} --> {answer}`` + EOS the decoder target, so the loss is on the completion only, as in the
decoder-only recipe. ``fcot_plugin.training.sft.main`` sends a seq2seq student here after parsing the same
``FcotSFTConfig``; its Trainer fields (the paper's hyper-parameters, precision, DeepSpeed, output and Hub settings)
are carried over into :class:`FcotSeq2SeqConfig` rather than restated.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import Seq2SeqTrainingArguments

from fcot_plugin.core.errors import FcotError
from fcot_plugin.training.common import (
    card_hyperparameters,
    load_training_dataset,
    stale_resume_state_pruner,
    train_and_save,
)
from fcot_plugin.training.config import FcotScriptArguments, FcotSFTConfig, TokenFreePickle
from fcot_plugin.training.defaults import PAPER_RECIPE

logger = logging.getLogger(__name__)

# The encoder-decoder trainer's length limits, on its card beside the shared optimisation fields.
CARD_LENGTHS = ("max_source_length", "max_target_length")
# SFTConfig options with no meaning for Seq2SeqTrainer: set away from their default they would be ignored.
SFT_ONLY = {"packing": False, "padding_free": False, "assistant_only_loss": False, "completion_only_loss": True}


@dataclass
class FcotSeq2SeqConfig(TokenFreePickle, Seq2SeqTrainingArguments):
    """``Seq2SeqTrainingArguments`` for an encoder-decoder student, built from the recipe's ``FcotSFTConfig``.

    Every Trainer field comes from that config (:meth:`from_sft_config`), so the paper's numbers live in one
    place; the only seq2seq fields split its ``max_length`` (paper: 512 + 512) between encoder and decoder.
    """

    max_source_length: int = field(default=512, metadata={"help": "prompt (encoder) tokens; paper: 512"})
    max_target_length: int = field(default=512, metadata={"help": "completion (decoder) tokens; paper: 512"})

    @classmethod
    def from_sft_config(cls, sft: FcotSFTConfig) -> FcotSeq2SeqConfig:
        """The Trainer fields of ``sft`` (already validated and resolved) plus half of its ``max_length`` each."""
        changed = [
            f"{name}={getattr(sft, name)!r}" for name, default in SFT_ONLY.items() if getattr(sft, name) != default
        ]
        if changed:
            raise FcotError(
                f"{', '.join(changed)}: SFTTrainer options that an encoder-decoder student (Seq2SeqTrainer) does not "
                f"use; remove {'it' if len(changed) == 1 else 'them'}"
            )
        shared = {
            f.name: getattr(sft, f.name)
            for f in fields(Seq2SeqTrainingArguments)
            if f.init and hasattr(sft, f.name) and f.name != "gradient_checkpointing"  # alias of the field below
        }
        half = (sft.max_length or PAPER_RECIPE.max_length) // 2
        return cls(**shared, max_source_length=half, max_target_length=half)


def tokenize(dataset, tokenizer, args: FcotSeq2SeqConfig):
    """prompt → ``input_ids``/``attention_mask``, completion + EOS → ``labels`` (truncated, EOS kept last)."""
    eos = tokenizer.eos_token_id

    def encode(row: dict[str, str]) -> dict[str, list[int]]:
        source = tokenizer(row["prompt"], truncation=True, max_length=args.max_source_length)
        labels = tokenizer(text_target=row["completion"], add_special_tokens=False)["input_ids"]
        labels = labels[: args.max_target_length - 1] + [eos]
        return {"input_ids": source["input_ids"], "attention_mask": source["attention_mask"], "labels": labels}

    return dataset.map(encode, remove_columns=dataset.column_names, keep_in_memory=True)


def make_trainer_class():
    """``Seq2SeqTrainer`` whose model card is fcot's (imported lazily)."""
    from transformers import Seq2SeqTrainer

    from fcot_plugin.hub.cards import model_card

    class FcotSeq2SeqTrainer(Seq2SeqTrainer):
        fcot_card_fields: dict[str, Any] = {}

        def create_model_card(self, *_, **__):
            if not self.is_world_process_zero():
                return
            fields_ = self.fcot_card_fields
            args = self.args
            values = card_hyperparameters(args, CARD_LENGTHS, self.accelerator.num_processes)
            card = model_card(model_name=self.hub_model_id or args.output_dir, hyperparameters=values, **fields_)
            card.save(os.path.join(args.output_dir, "README.md"))

    return FcotSeq2SeqTrainer


def load_student(model_args, trust_remote_code: bool):
    """The encoder-decoder model, wrapped in a LoRA adapter when ``use_peft`` (task type SEQ_2_SEQ_LM)."""
    from accelerate import PartialState
    from transformers import AutoModelForSeq2SeqLM
    from trl import get_peft_config, get_quantization_config

    quantization_config = get_quantization_config(model_args)
    model = AutoModelForSeq2SeqLM.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
        **(
            {"quantization_config": quantization_config, "device_map": {"": PartialState().local_process_index}}
            if quantization_config is not None
            else {}
        ),
    )
    peft_config = get_peft_config(model_args)
    if peft_config is None:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    if model_args.lora_task_type == "CAUSAL_LM":  # TRL's default, meant for decoder-only models
        peft_config.task_type = "SEQ_2_SEQ_LM"
    if quantization_config is not None:
        model = prepare_model_for_kbit_training(model)
    return get_peft_model(model, peft_config)


def train(script_args: FcotScriptArguments, sft_args: FcotSFTConfig, model_args) -> Path:
    """Train an encoder-decoder student; returns its output folder (model, tokenizer, card)."""
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq, set_seed

    args = FcotSeq2SeqConfig.from_sft_config(sft_args)
    set_seed(args.seed)
    dataset = load_training_dataset(script_args)
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision, trust_remote_code=sft_args.trust_remote_code
    )
    if tokenizer.eos_token_id is None:
        raise FcotError(
            f"the tokenizer of {model_args.model_name_or_path} has no EOS token; the student must learn "
            f"to stop, so set eos_token in its tokenizer_config.json"
        )
    model = load_student(model_args, sft_args.trust_remote_code)
    with args.main_process_first(desc="tokenizing"):
        train_dataset = tokenize(dataset, tokenizer, args)
    logger.info("encoder-decoder student %s, %d training rows", model_args.model_name_or_path, len(train_dataset))

    trainer = make_trainer_class()(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        callbacks=[stale_resume_state_pruner()],
    )
    return train_and_save(trainer, tokenizer, script_args, model_args, "seq2seq", sft_args.trust_remote_code)
