"""Student SFT: ``main(script_args, training_args, model_args)``, called by ``recipes/sft.py``.

TRL's ``SFTTrainer`` on a curated prompt/completion dataset (loss on the completion only, EOS appended by
TRL), launched with ``accelerate`` under any config in ``ds_configs/``. The student's model card is
fcot's (base model, data, format, hyper-parameters, results), written on save and pushed with it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fcot_plugin.errors import FcotError
from fcot_plugin.sft_config import CARD_OPTIMISATION, FcotScriptArguments, FcotSFTConfig

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("prompt", "completion")
CARD_HYPERPARAMETERS = (
    *CARD_OPTIMISATION,
    "max_length",
    "completion_only_loss",
    "train_sampling_strategy",
    "bf16",
    "seed",
)


# ---------------------------------------------------------------------- inputs


def load_training_dataset(script_args: FcotScriptArguments):
    """The train split from a folder written by ``fcot curate`` (or any saved dataset) or a Hub id."""
    import datasets

    name = script_args.dataset_name
    if not name:
        raise FcotError("dataset_name is required: a folder written by `fcot curate` or a Hub dataset id")
    path = Path(name).expanduser()
    try:
        saved_by_datasets = (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()
        if path.is_dir() and saved_by_datasets:
            loaded = datasets.load_from_disk(str(path), keep_in_memory=True)  # no cache files in the data folder
        else:
            loaded = datasets.load_dataset(name, name=script_args.dataset_config)
    except Exception as error:  # the datasets library raises many types; say which source failed
        raise FcotError(
            f"could not load the training dataset {name!r}: {error}. Pass a folder written by `fcot curate` "
            f"or a Hub dataset id"
        ) from error
    split = script_args.dataset_train_split
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise FcotError(
                f"dataset {name!r} has no split {split!r} (splits: {list(loaded)}); set dataset_train_split"
            )
        loaded = loaded[split]
    missing = [column for column in REQUIRED_COLUMNS if column not in loaded.column_names]
    if missing:
        raise FcotError(
            f"dataset {name!r} has no {', '.join(missing)} column (columns: {loaded.column_names}); "
            f"Fine-tune-CoT training needs prompt/completion rows, as written by `fcot curate`"
        )
    return loaded.select_columns(list(REQUIRED_COLUMNS))


def check_causal_lm(model_name_or_path: str, trust_remote_code: bool = False) -> None:
    """Fail before training when the student is not a decoder-only causal LM (TRL's ``SFTTrainer`` path)."""
    from fcot_plugin.architectures import kind_of, load_config

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


# ---------------------------------------------------------------------- model card


def hyperparameters(training_args: FcotSFTConfig, world_size: int) -> dict[str, Any]:
    values = {name: getattr(training_args, name) for name in CARD_HYPERPARAMETERS}
    values["total_train_batch_size"] = (
        training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * world_size
    )
    return values


def choose_attention(training_args: FcotSFTConfig) -> None:
    """Eager attention for bf16 training on CPU, where the config left the kernel unset.

    Measured on a 2-core AMX CPU with SmolLM2-135M: sdpa's CPU kernel spends ~20% of a bf16 step in its
    backward; eager attention (plain matmuls) makes the step ~12% faster, with the same loss. fp32 showed no
    difference, and GPUs keep sdpa. Padding-free batches (TRL's ``padding_free``) gave nothing on the CPU
    and lost on a GPU, so batches stay padded (benchmarks/results/).
    """
    from fcot_plugin.precision import training_device

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

    from fcot_plugin.hub import model_card

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
                hyperparameters=hyperparameters(self.args, self.accelerator.num_processes),
            )
            card.save(os.path.join(self.args.output_dir, "README.md"))

    return FcotSFTTrainer


def stale_resume_state_pruner():
    """A callback that keeps optimizer state in the newest checkpoint only, as each checkpoint is saved.

    Epoch selection keeps every epoch's checkpoint until validation has scored it, and AdamW state is twice the
    weights: 20 epochs of SmolLM2-135M would hold 32 GB, of a 1.7B student 400 GB. A resumed training reads the
    newest complete checkpoint only (``last_complete_checkpoint``), and ``on_save`` runs once that one is
    written, so the older checkpoints' optimizer and scheduler state can go then; their weights stay.
    """
    from transformers import TrainerCallback

    from fcot_plugin.state import drop_resume_state

    class DropStaleResumeState(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            newest = f"checkpoint-{state.global_step}"
            for path in Path(args.output_dir).glob("checkpoint-*"):
                if path.is_dir() and path.name != newest:
                    drop_resume_state(path)

    return DropStaleResumeState()


# ---------------------------------------------------------------------- main


def make_parser():
    """``TrlParser`` over the recipe's three configs: ``--config x.yaml`` plus CLI overrides."""
    from trl import ModelConfig, TrlParser

    return TrlParser((FcotScriptArguments, FcotSFTConfig, ModelConfig))


def main(script_args: FcotScriptArguments, training_args: FcotSFTConfig, model_args) -> Path:
    """Train a student; returns the output folder (a normal Hugging Face model folder with its card)."""
    from transformers import AutoTokenizer, set_seed
    from trl import get_peft_config, get_quantization_config

    from fcot_plugin.architectures import student_kind
    from fcot_plugin.hub import require_hub_token
    from fcot_plugin.model_options import check_model_options

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    check_model_options(model_args)  # LoRA/quantisation flags are applied below, or refused in one line
    if script_args.merge_adapter and not model_args.use_peft:
        raise FcotError("merge_adapter merges a LoRA adapter and this config trains full weights; add use_peft: true")
    if script_args.task is None:
        raise FcotError("task is required (e.g. task: multiarith): it names the student's lm-eval task and card")
    if training_args.push_to_hub:
        if not training_args.hub_model_id:
            raise FcotError("push_to_hub needs hub_model_id (e.g. hub_model_id: my-org/gpt2-fcot-multiarith)")
        require_hub_token(training_args.hub_token)  # before any training, so nothing is half-pushed
    if student_kind(model_args.model_name_or_path, training_args.trust_remote_code) == "seq2seq":
        from fcot_plugin.train_seq2seq import main as train_seq2seq  # T5, Flan-T5: transformers' Seq2SeqTrainer

        output_dir = train_seq2seq(script_args, training_args, model_args)
        leave_process_group()
        return output_dir
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
    output_dir = train_and_save(trainer, tokenizer, script_args, model_args, "causal", training_args.trust_remote_code)
    leave_process_group()
    return output_dir


def train_and_save(
    trainer, tokenizer, script_args: FcotScriptArguments, model_args, kind: str, trust_remote_code: bool
) -> Path:
    """Train (resuming from the last complete checkpoint), then save or push the student with fcot's card and
    merge a LoRA adapter on request. One function for both architectures, so their students save alike."""
    from fcot_plugin.adapters import lora_summary, save_merged
    from fcot_plugin.architectures import architecture_label
    from fcot_plugin.state import last_complete_checkpoint

    args = trainer.args
    trainer.fcot_card_fields = {
        "architecture": architecture_label(model_args.model_name_or_path, trust_remote_code),
        "lora": lora_summary(model_args),
        "base_model": model_args.model_name_or_path,
        "task": script_args.task,
        "dataset": script_args.dataset_name,
        "dataset_format": script_args.dataset_format,
    }
    last_checkpoint = None
    if os.path.isdir(args.output_dir) and args.resume_from_checkpoint is None:
        last_checkpoint = last_complete_checkpoint(args.output_dir)  # skips one cut short by a kill
    if last_checkpoint:
        logger.info("resuming from %s", last_checkpoint)
    train_result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint or last_checkpoint)
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    trainer.model.generation_config.eos_token_id = tokenizer.eos_token_id
    trainer.model.config.use_cache = True  # training may have turned it off; generation wants it
    if args.push_to_hub:  # saves, writes the card and uploads both as one commit
        trainer.push_to_hub(commit_message="Fine-tune-CoT student")
    else:
        trainer.save_model(args.output_dir)
        trainer.create_model_card()
    # trainer.end() destroys the process group at once; a rank that does not save (any but 0) would get there
    # while rank 0 still writes the student, and tearing its group down mid-save aborted it now and then
    # ("terminate called without an active exception"). So every rank waits here first.
    trainer.accelerator.wait_for_everyone()
    if hasattr(trainer, "end"):
        trainer.end()
    if script_args.merge_adapter and model_args.use_peft and trainer.is_world_process_zero():
        logger.info("merged model saved to %s", save_merged(args.output_dir, kind, model_args.dtype))
    return Path(args.output_dir)


def leave_process_group() -> None:
    """Under ``accelerate launch`` with several processes: wait for every rank, then destroy the process group
    if ``trainer.end()`` (transformers versions that have it) has not already.

    Ranks other than 0 write no weights and reach the end first; exiting while DeepSpeed's communication threads
    still run aborted one ("terminate called without an active exception") after a successful ZeRO-3 run, and
    the launcher then failed the whole run. PyTorch asks for ``destroy_process_group()`` before exit. A single
    process (world size 1, e.g. the pipeline's in-process runs) keeps its group: accelerate caches its state.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":  # `accelerate launch -m fcot_plugin.train --config ...` works from an installed wheel
    main(*make_parser().parse_args_and_config())
