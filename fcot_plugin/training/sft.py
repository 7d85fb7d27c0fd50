"""Student SFT: :func:`cli`, the command line behind ``recipes/sft.py`` and ``python -m fcot_plugin.train`` (which
``fcot distill --launcher accelerate`` launches), and :func:`main`, the training itself.

Parses the recipe's three configs with ``TrlParser``, checks what can be checked before training, and hands the
student to its trainer: decoder-only to TRL's ``SFTTrainer`` (:mod:`~fcot_plugin.training.causal`),
encoder-decoder to transformers' ``Seq2SeqTrainer`` (:mod:`~fcot_plugin.training.seq2seq`). Launch with
``accelerate`` under any config in ``ds_configs/`` (``-m fcot_plugin.train`` from an installed package).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from fcot_plugin.core.errors import FcotError
from fcot_plugin.training.config import FcotScriptArguments, FcotSFTConfig


def make_parser():
    """``TrlParser`` over the recipe's three configs: ``--config x.yaml`` plus CLI overrides."""
    from trl import ModelConfig, TrlParser

    from fcot_plugin.core.command_line import settings_parser

    return settings_parser((FcotScriptArguments, FcotSFTConfig, ModelConfig), base=TrlParser)


def cli(argv: list[str] | None = None, prog: str = "sft.py") -> Path:
    """The SFT command line: ``--config x.yaml`` plus overrides, then :func:`main`. A bad option or input ends with
    one line, ``<prog>: error: ...``; ``--debug`` (or ``FCOT_DEBUG=1``) shows the traceback."""
    from fcot_plugin.core.command_line import debug_requested, exit_with_one_line, parse_or_fail
    from fcot_plugin.core.secrets import guard_terminal

    debug, argv = debug_requested(sys.argv[1:] if argv is None else argv)
    guard_terminal(argv)  # no token from the recipe, the command line or the environment reaches the terminal
    parser = make_parser()
    parser.prog = prog

    def parse() -> tuple:
        return parse_or_fail(parser, lambda: parser.parse_args_and_config(argv))

    configs = exit_with_one_line(prog, parse, debug)
    return exit_with_one_line(prog, lambda: main(*configs), debug)


def main(script_args: FcotScriptArguments, training_args: FcotSFTConfig, model_args) -> Path:
    """Train a student; returns the output folder (a normal Hugging Face model folder with its card)."""
    from fcot_plugin.core.numbers import check_ranges
    from fcot_plugin.hub.push import require_hub_token
    from fcot_plugin.training.architectures import student_kind
    from fcot_plugin.training.checkpoints import check_training_output, training_record
    from fcot_plugin.training.model_options import check_model_options

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for arguments in (script_args, training_args, model_args):
        check_ranges(arguments)  # every float finite (lora_dropout: nan too), every int 64-bit
    check_model_options(model_args)  # LoRA/quantisation flags are applied below, or refused in one line
    if script_args.merge_adapter and not model_args.use_peft:
        raise FcotError("merge_adapter merges a LoRA adapter and this config trains full weights; add use_peft: true")
    if script_args.task is None:
        raise FcotError("task is required (e.g. task: multiarith): it names the student's lm-eval task and card")
    if training_args.push_to_hub:
        if not training_args.hub_model_id:
            raise FcotError("push_to_hub needs hub_model_id (e.g. hub_model_id: my-org/gpt2-fcot-multiarith)")
        require_hub_token(training_args.hub_token)  # before any training, so nothing is half-pushed
    record = training_record(script_args.task, script_args.dataset_name, script_args.dataset_format)
    check_training_output(training_args.output_dir, record)  # the user's folders, another task's checkpoints
    if student_kind(model_args.model_name_or_path, training_args.trust_remote_code) == "seq2seq":
        from fcot_plugin.training.seq2seq import train as train_seq2seq  # T5, Flan-T5: transformers' Seq2SeqTrainer

        return train_seq2seq(script_args, training_args, model_args)
    from fcot_plugin.training.causal import train as train_causal  # TRL's SFTTrainer

    return train_causal(script_args, training_args, model_args)
