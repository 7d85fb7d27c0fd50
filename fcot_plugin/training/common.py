"""What both trainers share, so causal and encoder-decoder students load, resume, save and get cards alike.

The training data (``prompt``/``completion`` rows), the card's hyper-parameters, optimizer state pruned as
checkpoints are saved, and :func:`train_and_save`: train (resuming), save or push with fcot's card, merge LoRA.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.training.config import FcotScriptArguments

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("prompt", "completion")
# What a student's model card lists of its optimisation, whichever trainer ran it; each adds its length limits.
CARD_OPTIMISATION = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "optim",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
)
CARD_RUN = ("bf16", "seed")


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


def card_hyperparameters(args: Any, length_fields: tuple[str, ...], world_size: int) -> dict[str, Any]:
    """The card's hyper-parameters: the optimisation, the trainer's own length limits, precision and seed."""
    values = {name: getattr(args, name) for name in (*CARD_OPTIMISATION, *length_fields, *CARD_RUN)}
    values["total_train_batch_size"] = args.per_device_train_batch_size * args.gradient_accumulation_steps * world_size
    return values


def stale_resume_state_pruner():
    """A callback that keeps optimizer state in the newest checkpoint only, as each checkpoint is saved.

    Epoch selection keeps every epoch's checkpoint until validation has scored it, and AdamW state is twice the
    weights: 20 epochs of SmolLM2-135M would hold 32 GB, of a 1.7B student 400 GB. A resumed training reads the
    newest complete checkpoint only (``last_complete_checkpoint``), and ``on_save`` runs once that one is
    written, so the older checkpoints' optimizer and scheduler state can go then; their weights stay.
    """
    from transformers import TrainerCallback

    from fcot_plugin.training.checkpoints import drop_resume_state

    class DropStaleResumeState(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            newest = f"checkpoint-{state.global_step}"
            for path in Path(args.output_dir).glob("checkpoint-*"):
                if path.is_dir() and path.name != newest:
                    drop_resume_state(path)

    return DropStaleResumeState()


def train_and_save(
    trainer, tokenizer, script_args: FcotScriptArguments, model_args, kind: str, trust_remote_code: bool
) -> Path:
    """Train (resuming from the last complete checkpoint), then save or push the student with fcot's card and
    merge a LoRA adapter on request. One function for both architectures, so their students save alike."""
    from fcot_plugin.training.adapters import lora_summary, save_merged
    from fcot_plugin.training.architectures import architecture_label
    from fcot_plugin.training.checkpoints import last_complete_checkpoint, mark_training, training_record

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
    if trainer.is_world_process_zero():  # what the checkpoints are of: another task never resumes from them
        mark_training(
            args.output_dir, training_record(script_args.task, script_args.dataset_name, script_args.dataset_format)
        )
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
    leave_process_group()
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
