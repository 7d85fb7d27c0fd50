"""How far a paper-table score moves with the training seed alone: Fine-tune-CoT rows of several seeds side by side.

    for seed in 42 43 44; do
        python benchmarks/paper_table.py --tasks date_understanding --epochs 10 --seed $seed --vanilla false \\
            --baselines false --sc_limit 0 --runs_dir runs/seed_spread/seed$seed \\
            --output benchmarks/results/seed_spread/date_understanding_seed$seed
    done
    python benchmarks/seed_spread.py --tables benchmarks/results/seed_spread/*_seed*.json

Reads tables ``paper_table.py`` wrote and lists, per task, every Fine-tune-CoT run: its seed, machine, best
validation accuracy and chosen epoch, and the test accuracy of the validation-chosen and last epochs, then their
range and mean and how many seeds beat the paper's GPT-2 Medium. Runs of one task must differ only in the seed
(and machine, which is shown): a spread over other settings would not be the seed's. Writes ``--output``
``.md`` and ``.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from fcot_plugin.core.files import result_file

sys.path.insert(0, str(Path(__file__).parent))  # paper_table.py is a sibling script, not a package
from paper_table import (  # noqa: E402
    GOAL_STUDENT,
    RESULTS,
    scientific,
)

# What runs of one task must share for their spread to be the seed's: the training settings a row records.
SAME = ("epochs", "learning_rate", "validation_size", "batches", "train_rows")


@dataclass
class SpreadArguments:
    tables: list[str] = field(metadata={"help": "paper_table.py .json files, one or more per seed"})
    output: str = field(default=str(RESULTS / "seed_spread"), metadata={"help": "results path without suffix"})


def load_runs(paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every Fine-tune-CoT run in the tables, grouped by task."""
    from fcot_plugin.core.errors import FcotError

    runs: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        try:
            table = json.loads(Path(path).expanduser().read_text())
            rows = table["tasks"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise FcotError(f"{path}: not a table paper_table.py wrote ({error}); pass its .json output") from None
        for task, row in rows.items():
            fcot, validation = row["fcot"], row["fcot"].get("validation_curve") or []
            best = max(validation, key=lambda point: point["accuracy"], default=None)
            runs.setdefault(task, []).append(
                {
                    "seed": fcot["seed"],
                    "machine": row["machine"],
                    "settings": {key: fcot.get(key) for key in SAME},
                    "chosen_epoch": fcot["chosen_epoch"],
                    "best_validation": (round(best["accuracy"] * best["n"]), best["n"]) if best else None,
                    "chosen": row["ours"]["fcot_chosen"]["accuracy"],
                    "last": row["ours"]["fcot_last"]["accuracy"],
                    "n": row["ours"]["fcot_chosen"]["n"],
                    "minutes": row["minutes"],
                    "paper": row["paper"][GOAL_STUDENT],
                    "table": path,
                }
            )
    for task, task_runs in runs.items():
        settings = {json.dumps(run["settings"], sort_keys=True) for run in task_runs}
        if len(settings) > 1:
            differ = " vs ".join(sorted(settings))
            raise FcotError(
                f"{task}: the runs differ in more than the seed ({differ}); pass tables whose {task} "
                f"rows share epochs, learning rate and training data"
            )
        seeds = [run["seed"] for run in task_runs]
        if len(set(seeds)) < len(seeds):
            raise FcotError(f"{task}: seed {max(seeds, key=seeds.count)} appears twice; pass one table per seed")
        task_runs.sort(key=lambda run: run["seed"])
    return runs


def summary(task_runs: list[dict[str, Any]]) -> dict[str, Any]:
    chosen, last = [run["chosen"] for run in task_runs], [run["last"] for run in task_runs]
    paper = task_runs[0]["paper"]
    return {
        "seeds": len(task_runs),
        "chosen": {"min": min(chosen), "mean": mean(chosen), "max": max(chosen)},
        "last": {"min": min(last), "mean": mean(last), "max": max(last)},
        "paper": paper,
        "chosen_beats_paper": sum(score > paper for score in chosen) if paper is not None else None,
    }


def markdown(runs: dict[str, list[dict[str, Any]]], summaries: dict[str, dict[str, Any]]) -> str:
    from fcot_plugin.tasks.registry import get_task

    lines = [
        "# Seed spread: Fine-tune-CoT test accuracy (%) by training seed",
        "",
        "Each run chose its epoch on the same validation slice of the train split (its seed is not the "
        "training seed); only the training seed differs between runs of a task.",
        "",
    ]
    for task, task_runs in runs.items():
        result, settings = summaries[task], task_runs[0]["settings"]
        trained = (
            f"{settings['epochs']:g} epochs, lr {scientific(settings['learning_rate'])}, "
            f"{settings['train_rows']} training rows, {settings['batches']} batches"
        )
        lines += [
            f"## {get_task(task).title}",
            "",
            f"{trained}; {task_runs[0]['n']} test questions.",
            "",
            "| seed | best validation (correct / held out) | chosen epoch | test, validation-chosen epoch | "
            "test, last epoch | minutes | machine |",
            "|---:|---|---:|---:|---:|---:|---|",
        ]
        for run in task_runs:
            best = "–" if run["best_validation"] is None else "{} / {}".format(*run["best_validation"])
            lines.append(
                f"| {run['seed']} | {best} | {run['chosen_epoch'] or '–'} | {run['chosen']:.2f} | "
                f"{run['last']:.2f} | {run['minutes']:.1f} | {run['machine']} |"
            )
        chosen, last = result["chosen"], result["last"]
        lines += [
            "",
            f"Validation-chosen: {chosen['min']:.2f}–{chosen['max']:.2f} (mean {chosen['mean']:.2f}); "
            f"last epoch: {last['min']:.2f}–{last['max']:.2f} (mean {last['mean']:.2f}).",
        ]
        if result["paper"] is not None:
            beaten = f"{result['chosen_beats_paper']} of {result['seeds']} seeds"
            lines[-1] += (
                f" The paper's {GOAL_STUDENT} Fine-tune-CoT: {result['paper']:.2f}, beaten by the "
                f"validation-chosen student at {beaten}."
            )
        lines.append("")
    return "\n".join(lines)


def main(args: SpreadArguments) -> dict[str, Any]:
    from fcot_plugin.core.files import write_json_atomic, write_text_atomic

    runs = load_runs(args.tables)
    summaries = {task: summary(task_runs) for task, task_runs in runs.items()}
    output = Path(args.output).expanduser()
    result = {"runs": runs, "summary": summaries}
    write_json_atomic(result_file(output, ".json"), result)
    write_text_atomic(result_file(output, ".md"), markdown(runs, summaries))
    print(f"done: {result_file(output, '.md')}")
    return result


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("seed_spread.py", SpreadArguments, main, sys.argv[1:])
