"""Score a student (local folder or Hub id) with its lm-eval task and record the result in its model card."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fcot_plugin.configs import EvaluateArguments
from fcot_plugin.task_dir import task_name

logger = logging.getLogger(__name__)
METRIC = "acc,fcot"
# The lm-eval model fcot generates with from a local or Hub checkpoint: lm-eval's hf, regrouping unfinished answers
# every few tokens (fcot_plugin.hf_regroup); same answers, far less time spent on rows that have already ended.
LOCAL_MODEL = "hf-regroup"


def run_lm_eval(
    model: str,
    model_args: str,
    tasks: list[str],
    *,
    limit: int | None = None,
    batch_size: int | str = 16,
    gen_kwargs: str | None = None,
    output_path: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """``simple_evaluate`` over fcot tasks only (fast indexing); results and samples saved like the CLI.

    lm-eval records the model args verbatim; any token in them is scrubbed from the files it wrote.
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    import fcot_plugin.lm_eval_hooks  # noqa: F401  registers --model zscot and hf-regroup (fcot_plugin.zscot)
    from fcot_plugin.secrets import redact, scrub_files, secret_values
    from fcot_plugin.task_dir import task_config_dir

    tracker = EvaluationTracker(output_path=str(output_path)) if output_path else None
    results = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=tasks,
        task_manager=TaskManager(include_path=str(task_config_dir()), include_defaults=False, metadata=metadata),
        limit=limit,
        batch_size=batch_size,
        gen_kwargs=gen_kwargs,
        log_samples=tracker is not None,
        evaluation_tracker=tracker,
        device=device,
    )
    if tracker is not None:
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for name in results["configs"]:
            tracker.save_results_samples(task_name=name, samples=samples[name])
        scrub_files(output_path, secret_values([model_args]))
    return redact(results)


def accuracy(results: dict[str, Any], name: str) -> float:
    return float(results["results"][name][METRIC])


def question_count(results: dict[str, Any], name: str) -> int:
    return int(results["n-samples"][name]["effective"])


def newest_results(results_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """The newest lm-eval results file under ``results_dir`` (as written by :func:`run_lm_eval`), if any."""
    files = sorted(Path(results_dir).rglob("results_*.json"))
    return (json.loads(files[-1].read_text()), files[-1]) if files else None


def evaluate_student(args: EvaluateArguments) -> tuple[float, dict[str, Any]]:
    """Accuracy of the student on its task's test split, and lm-eval's results."""
    from fcot_plugin.adapters import lm_eval_model_args
    from fcot_plugin.precision import resolve_precision

    name = task_name(args.task, "student" if args.dataset_format == "fcot" else "vanilla")
    precision = resolve_precision(args.precision, args.device)
    results = run_lm_eval(
        LOCAL_MODEL,
        lm_eval_model_args(args.model, precision.torch_dtype_name),  # a LoRA folder: pretrained=<base>,peft=<it>
        [name],
        limit=args.limit,
        batch_size=args.batch_size,
        gen_kwargs=f"max_gen_toks={args.max_gen_toks}" if args.max_gen_toks else None,
        output_path=args.output_path,
        device=args.device,
    )
    return accuracy(results, name), results


def write_result_to_card(args: EvaluateArguments, value: float) -> str:
    """Add (or replace) the fcot result in the student's card, locally or on the Hub; returns where."""
    from huggingface_hub import ModelCard

    from fcot_plugin.hub import eval_result, push_files, with_eval_result

    local = Path(args.model).expanduser()
    if local.is_dir():
        card_path = local / "README.md"
        card = ModelCard.load(card_path) if card_path.is_file() else ModelCard("---\n---\n")
    else:
        card = ModelCard.load(args.model)
    card.data.model_name = card.data.model_name or args.model
    card = with_eval_result(card, eval_result(args.task, value, limit=args.limit), args.task)
    if local.is_dir():
        card.save(card_path)
        return str(card_path)
    push_files(args.model, {"README.md": str(card).encode()}, commit_message=f"Add fcot_{args.task} results")
    return args.model


def main(args: EvaluateArguments) -> dict[str, Any]:
    """Evaluate; update the local card, or the Hub card with --push_to_hub (token checked first)."""
    from fcot_plugin.hub import require_hub_token
    from fcot_plugin.preflight import check_model_folder, check_writable

    check_model_folder(args.model, "--model")  # before lm-eval turns a typo into a long traceback
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
