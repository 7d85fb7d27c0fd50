"""Score a student (local folder or Hub id) with its lm-eval task and record the result in its model card."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from fcot_plugin.harness.runner import accuracy
from fcot_plugin.pipeline.settings import EvaluateArguments, split_server_args
from fcot_plugin.tasks.names import student_task

logger = logging.getLogger(__name__)


def evaluate_student(args: EvaluateArguments) -> tuple[float, dict[str, Any]]:
    """Accuracy of the student on its task's test split, and lm-eval's results."""
    from fcot_plugin.core.precision import resolve_precision
    from fcot_plugin.pipeline.scoring import make_scorer

    name = student_task(args.task, args.dataset_format)
    precision = resolve_precision(args.precision, args.device)
    log_file = (
        Path(args.output_path) / f"eval-{args.eval_engine}.log"
        if args.output_path
        else Path(tempfile.gettempdir()) / f"fcot-eval-{args.eval_engine}-{os.getpid()}.log"
    )
    server_args = split_server_args(args.vllm_server_args)
    with make_scorer(
        args.eval_engine, precision.torch_dtype_name, args.batch_size, log_file, args.device, server_args
    ) as scorer:
        results = scorer.score(
            args.model,
            name,
            max_gen_toks=args.max_gen_toks,
            limit=args.limit,
            output_path=args.output_path,
            device=args.device,
        )
    return accuracy(results, name), results


def write_result_to_card(args: EvaluateArguments, value: float) -> str:
    """Add (or replace) the fcot result in the student's card, locally or on the Hub; returns where."""
    from huggingface_hub import ModelCard

    from fcot_plugin.hub.cards import eval_result, with_eval_result
    from fcot_plugin.hub.push import push_files

    local = Path(args.model).expanduser()
    if local.is_dir():
        card_path = local / "README.md"
        card = ModelCard.load(card_path) if card_path.is_file() else ModelCard("---\n---\n")
    else:
        card = ModelCard.load(args.model)
    card.data.model_name = card.data.model_name or args.model
    result = eval_result(args.task, value, limit=args.limit, dataset_format=args.dataset_format)
    card = with_eval_result(card, result, args.task, args.dataset_format)
    if local.is_dir():
        card.save(card_path)
        return str(card_path)
    push_files(
        args.model,
        {"README.md": str(card).encode()},
        commit_message=f"Add {student_task(args.task, args.dataset_format)} results",
    )
    return args.model


def main(args: EvaluateArguments) -> dict[str, Any]:
    """Evaluate; update the local card, or the Hub card with --push_to_hub (token checked first)."""
    from fcot_plugin.hub.push import require_hub_token
    from fcot_plugin.pipeline.preflight import check_model_folder, check_vllm_scoring, check_writable

    check_model_folder(args.model, "--model")  # before lm-eval turns a typo into a long traceback
    if args.eval_engine == "vllm":
        from fcot_plugin.training.adapters import adapter_base

        check_vllm_scoring(args.model, lora=adapter_base(args.model) is not None)
    if args.output_path:
        check_writable(args.output_path, "--output_path")
    local = Path(args.model).expanduser().is_dir()
    if not local and args.push_to_hub:
        require_hub_token()
    value, _ = evaluate_student(args)
    if local or args.push_to_hub:
        where = write_result_to_card(args, value)
    else:
        where = "not written (a Hub model: pass --push_to_hub to update its card)"
    summary = {"model": args.model, "task": args.task, "accuracy": value, "card": where}
    print(json.dumps(summary, indent=2))
    return summary
