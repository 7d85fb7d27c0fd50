"""Decoder-only students: TRL's ``SFTTrainer`` with the loss on the completion only (EOS appended by TRL).

Its loss skips the positions the loss ignores (:func:`compact_completion_loss`), and its model card is fcot's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.training.common import (
    card_hyperparameters,
    load_training_dataset,
    stale_resume_state_pruner,
    train_and_save,
)
from fcot_plugin.training.config import FcotScriptArguments, FcotSFTConfig

logger = logging.getLogger(__name__)

# The causal trainer's length limits and loss settings, on its card beside the shared optimisation fields.
CARD_LENGTHS = ("max_length", "completion_only_loss", "train_sampling_strategy")


def check_causal_lm(model_name_or_path: str, trust_remote_code: bool = False) -> None:
    """Fail before training when the student is not a decoder-only causal LM (TRL's ``SFTTrainer`` path)."""
    from fcot_plugin.training.architectures import kind_of, load_config

    config = load_config(model_name_or_path, trust_remote_code)
    architectures = ", ".join(config.architectures or []) or "no architecture"
    kind = kind_of(config)
    if kind == "seq2seq":
        raise FcotError(
            f"{model_name_or_path} is an encoder-decoder model ({architectures}) and this path takes decoder-only "
            f"causal LMs; train it with recipes/sft.py or fcot distill, which use Seq2SeqTrainer for T5-like students"
        )
    if kind is None:
        raise FcotError(
            f"{model_name_or_path} is a {config.model_type} model ({architectures}), not a causal LM: this recipe "
            f"trains decoder-only students (e.g. GPT-2, Llama, Qwen, SmolLM)"
        )


def choose_attention(training_args: FcotSFTConfig) -> None:
    """Eager attention for bf16 training on CPU, where the config left the kernel unset.

    sdpa's CPU kernel spends a large part of a bf16 step in its backward; eager attention (plain matmuls) is
    faster there with the same loss. fp32 shows no difference, and GPUs keep sdpa. Padding-free batches (TRL's
    ``padding_free``) gave nothing on the CPU and lost on a GPU, so batches stay padded
    (benchmarks/results/design_measurements.md).
    """
    from fcot_plugin.core.precision import training_device

    kwargs = training_args.model_init_kwargs = dict(training_args.model_init_kwargs or {})
    if (
        training_device(training_args.use_cpu) == "cpu"
        and training_args.bf16
        and kwargs.get("attn_implementation") is None
    ):
        kwargs["attn_implementation"] = "eager"


# Above this many (trained tokens x vocabulary) logits, TRL's chunked head saves memory worth its cost:
# 2**27 fp32 elements is 512 MiB per copy (e.g. 2,700 trained tokens of a 49k vocabulary).
COMPACT_LOSS_MAX_LOGITS = 2**27


def accepts_logits_to_keep(model) -> bool:
    """Whether the model's forward can project a boolean mask of positions (transformers >= 5 causal LMs)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(type(base).forward).parameters


def compact_completion_loss(trainer, model, inputs: dict[str, Any], num_items_in_batch=None):
    """Mean next-token NLL over the trained positions, logging TRL's ``entropy``/``mean_token_accuracy``."""
    import torch
    import torch.nn.functional as F

    labels = inputs["labels"]
    next_labels = labels[:, 1:]
    trained = next_labels != -100
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = trained  # position p predicts token p + 1
    model_inputs = {key: value for key, value in inputs.items() if key != "labels"}
    logits = model(**model_inputs, use_cache=False, logits_to_keep=keep).logits.float()  # (trained tokens, vocab)
    targets = next_labels[trained]
    count = targets.numel() if num_items_in_batch is None else num_items_in_batch
    loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(count).clamp(min=1)
    if trainer.args.average_tokens_across_devices and num_items_in_batch is not None:
        loss = loss * (trainer.accelerator.num_processes // trainer.get_tp_size())  # as TRL and Trainer do

    mode = "train" if model.training else "eval"
    metrics, gather = trainer._metrics[mode], trainer.accelerator.gather_for_metrics
    with torch.no_grad():
        log_probs = torch.log_softmax(logits, dim=-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        correct = logits.argmax(-1) == targets
        num_valid = gather(torch.as_tensor(targets.numel(), device=logits.device)).sum()
        entropy_sum, num_correct = gather(entropy.sum()).sum(), gather(correct.sum()).sum()
    metrics["entropy"].append((entropy_sum / num_valid).item() if num_valid > 0 else 0.0)
    metrics["mean_token_accuracy"].append((num_correct / num_valid).item() if num_valid > 0 else 0.0)
    if mode == "train":
        tokens = inputs["attention_mask"].sum() if "attention_mask" in inputs else inputs["position_ids"].size(1)
        trainer._total_train_tokens += gather(torch.as_tensor(tokens)).sum().item() // trainer._tp_size
    metrics["num_tokens"] = [trainer._total_train_tokens]
    return loss


def make_trainer_class():
    """``SFTTrainer`` whose model card is fcot's (imported lazily: TRL is heavy)."""
    from trl import SFTTrainer

    from fcot_plugin.hub.cards import model_card

    class FcotSFTTrainer(SFTTrainer):
        fcot_card_fields: dict[str, Any] = {}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """TRL's loss, computed without scoring the positions the loss ignores, where TRL would.

            TRL 1.16 always routes the loss through its fused LM head. Off Triton devices (the CPU) that head
            projects *every* position onto the vocabulary, prompt and padding included, and recomputes the
            projection in backward; on GPUs its chunked kernels cost more launches than a small student's
            whole step. Here the model's own ``logits_to_keep`` mask projects only the positions whose next
            token is trained on, once. Same loss, same logged metrics. TRL's path is kept wherever this one
            would change behaviour or memory: logits over ``COMPACT_LOSS_MAX_LOGITS`` elements (large batches
            or vocabularies), other loss types, custom loss functions, MoE aux losses.
            """
            if not self._fcot_compact_loss(model, return_outputs, inputs.get("labels")):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return compact_completion_loss(self, model, inputs, num_items_in_batch)

        def _fcot_compact_loss(self, model, return_outputs: bool, labels=None) -> bool:
            args = self.args
            unwrapped = self.accelerator.unwrap_model(model)
            if labels is not None:  # the (trained tokens x vocab) logits must fit; else TRL's chunked head
                vocab = unwrapped.get_output_embeddings().weight.shape[0]
                if int((labels[:, 1:] != -100).sum()) * vocab > COMPACT_LOSS_MAX_LOGITS:
                    return False
            return (
                not return_outputs
                and args.loss_type == "nll"
                and self.compute_loss_func is None
                and self.label_smoother is None
                and not self.aux_loss_enabled
                and accepts_logits_to_keep(unwrapped)
            )

        def create_model_card(self, model_name=None, dataset_name=None, tags=None, **_):
            if not self.is_world_process_zero():
                return
            fields = self.fcot_card_fields
            card = model_card(
                model_name=self.hub_model_id or self.args.output_dir,
                architecture=fields["architecture"],
                lora=fields["lora"],
                base_model=fields["base_model"],
                task=fields["task"],
                dataset=fields["dataset"],
                dataset_format=fields["dataset_format"],
                hyperparameters=card_hyperparameters(self.args, CARD_LENGTHS, self.accelerator.num_processes),
            )
            card.save(os.path.join(self.args.output_dir, "README.md"))

    return FcotSFTTrainer


def train(script_args: FcotScriptArguments, training_args: FcotSFTConfig, model_args) -> Path:
    """Train a decoder-only student; returns its output folder (model, tokenizer, card)."""
    from transformers import AutoTokenizer, set_seed
    from trl import get_peft_config, get_quantization_config

    set_seed(training_args.seed)

    # ------------------------------------------------------------ data, tokenizer, model
    dataset = load_training_dataset(script_args)
    check_causal_lm(model_args.model_name_or_path, training_args.trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }
    choose_attention(training_args)
    logger.info(
        "student %s, %d training rows from %s", model_args.model_name_or_path, len(dataset), script_args.dataset_name
    )

    # ------------------------------------------------------------ trainer
    trainer_class = make_trainer_class()
    trainer = trainer_class(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),  # None unless use_peft: then only a LoRA adapter is trained and saved
        quantization_config=get_quantization_config(model_args),  # QLoRA; check_model_options made sure it can run
        callbacks=[stale_resume_state_pruner()],
    )
    return train_and_save(trainer, tokenizer, script_args, model_args, "causal", training_args.trust_remote_code)
