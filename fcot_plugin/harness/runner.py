"""lm-eval in-process over fcot's tasks only: what every fcot command scores and generates with.

``simple_evaluate`` with a ``TaskManager`` that indexes fcot's task folder alone (lm-eval's ~14k built-in tasks
cost ~12 s to index), results and samples saved as the CLI saves them, and tokens scrubbed from both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fcot_plugin.harness.model_names import LOCAL_MODEL

#: every fcot task reports its accuracy under this metric and filter
METRIC = "acc,fcot"

__all__ = ["LOCAL_MODEL", "METRIC", "accuracy", "newest_results", "question_count", "run_lm_eval"]


def run_lm_eval(
    model: str,
    model_args: str | dict[str, Any],
    tasks: list[str],
    *,
    limit: int | None = None,
    batch_size: int | str = 16,
    gen_kwargs: str | None = None,
    output_path: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """``simple_evaluate`` over fcot tasks only (fast indexing; with the task folders of the user's own tasks this
    process knows); results and samples saved like the CLI.

    lm-eval records the model args verbatim; any token in them is scrubbed from the files it wrote.
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    import fcot_plugin.harness.hf_regroup  # noqa: F401  registers --model hf-regroup
    import fcot_plugin.harness.zscot  # noqa: F401  registers --model zscot
    from fcot_plugin.core.secrets import redact, scrub_files, secret_values
    from fcot_plugin.tasks.names import task_config_dir
    from fcot_plugin.tasks.registry import own_task_folders

    tracker = EvaluationTracker(output_path=str(output_path)) if output_path else None
    results = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=tasks,
        task_manager=TaskManager(
            include_path=[str(task_config_dir()), *own_task_folders()], include_defaults=False, metadata=metadata
        ),
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
        given = model_args if isinstance(model_args, str) else json.dumps(model_args)
        scrub_files(output_path, secret_values([given]))
    return redact(results)


def accuracy(results: dict[str, Any], name: str) -> float:
    return float(results["results"][name][METRIC])


def question_count(results: dict[str, Any], name: str) -> int:
    return int(results["n-samples"][name]["effective"])


def newest_results(results_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """The newest lm-eval results file under ``results_dir`` (as written by :func:`run_lm_eval`), if any."""
    files = sorted(Path(results_dir).rglob("results_*.json"))
    return (json.loads(files[-1].read_text()), files[-1]) if files else None
