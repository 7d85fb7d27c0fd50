"""``fcot distill``: teacher → curation → student SFT → evaluation → report, in one resumable run folder.

Run folder::

    config.json            the DistillArguments of the run (a re-run must match them)
    teacher/               lm-eval output of the teacher (absent for the paper's rationales)
    data/                  curated dataset + card (``fcot curate``)
    train.yaml             the recipe config the student was trained with (usable with recipes/sft.py)
    student/               the trained student (Hugging Face folder + card with results)
    eval/<name>/           lm-eval results and samples: student, zeroshot, zscot
    report.md, accuracy.png
    stages/<stage>.json    written when a stage finishes: a re-run skips it (teacher calls cost money)
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from fcot_plugin.configs import DistillArguments
from fcot_plugin.curate import PAPER_SOURCE, curate, curation_summary, save_dataset
from fcot_plugin.evaluate import accuracy, newest_results, question_count, run_lm_eval
from fcot_plugin.students import EMBEDDED_HUB_ID, EMBEDDED_STUDENT, resolve_student
from fcot_plugin.task_dir import task_name
from fcot_plugin.train import check_causal_lm

logger = logging.getLogger(__name__)

STAGES = ("teacher", "curate", "train", "evaluate", "report", "push")
# Settings that change no result: a resumed run may differ in these.
RESUMABLE_CHANGES = {"push_to_hub", "launcher", "accelerate_config", "num_processes", "restart"}


class PipelineError(RuntimeError):
    """A run that cannot go on; the message says what to do."""


class Run:
    """One run folder: its config, its finished stages, and progress messages."""

    def __init__(self, args: DistillArguments) -> None:
        self.args = args
        self.dir = Path(args.run_dir).expanduser()
        self.stages_dir = self.dir / "stages"

    def prepare(self) -> None:
        config_file = self.dir / "config.json"
        wanted = asdict(self.args)
        if config_file.is_file() and not self.args.restart:
            previous = json.loads(config_file.read_text())
            changed = sorted(
                key for key in wanted if key not in RESUMABLE_CHANGES and previous.get(key) != wanted[key]
            )
            if changed:
                details = ", ".join(f"{key}: {previous.get(key)!r} -> {wanted[key]!r}" for key in changed)
                raise PipelineError(
                    f"{self.dir} was made with other settings ({details}); use another --run_dir, "
                    f"or pass --restart to redo every stage with the new settings"
                )
        if self.args.restart and self.stages_dir.exists():
            for marker in self.stages_dir.glob("*.json"):
                marker.unlink()
        self.stages_dir.mkdir(parents=True, exist_ok=True)
        config_file.write_text(json.dumps(wanted, indent=2) + "\n")

    def done(self, stage: str) -> dict[str, Any] | None:
        marker = self.stages_dir / f"{stage}.json"
        return json.loads(marker.read_text()) if marker.is_file() else None

    def stage(self, number: int, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``work`` unless the stage already finished; record its outputs when it does."""
        total = len(STAGES)
        finished = self.done(stage)
        if finished is not None:
            logger.info("[%d/%d] %s: done in an earlier run, skipped", number, total, stage)
            return finished
        logger.info("[%d/%d] %s ...", number, total, stage)
        started = time.monotonic()
        try:
            outputs = work()
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise PipelineError(
                    f"the disk is full (stage {stage}, {error.filename or self.dir}); free some space and run "
                    f"the same command again: finished stages are kept and {stage} starts over"
                ) from None
            raise
        outputs["seconds"] = round(time.monotonic() - started, 1)
        (self.stages_dir / f"{stage}.json").write_text(json.dumps(outputs, indent=2) + "\n")
        logger.info("[%d/%d] %s: finished in %.0f s", number, total, stage, outputs["seconds"])
        return outputs


# ---------------------------------------------------------------------- stages


def run_teacher(run: Run) -> dict[str, Any]:
    args = run.args
    if args.teacher == PAPER_SOURCE:
        return {"source": PAPER_SOURCE}
    model_args = args.teacher if "base=" in args.teacher else f"base=hf,{args.teacher}"
    metadata = {"fcot_samples": args.diverse, "fcot_temperature": args.teacher_temperature}
    results = run_lm_eval(
        "zscot",
        model_args,
        [task_name(args.task, "teacher")],
        limit=args.train_limit,
        batch_size=args.eval_batch_size,
        output_path=run.dir / "teacher",
        metadata=metadata,
        device=args.device,
    )
    return {"source": str(run.dir / "teacher"), "train_accuracy": accuracy(results, task_name(args.task, "teacher"))}


def run_curation(run: Run, teacher: dict[str, Any]) -> dict[str, Any]:
    args = run.args
    result = curate(args.task, teacher["source"], question_limit=args.train_limit)
    save_dataset(result, run.dir / "data", overwrite=True)
    return curation_summary(result)


def training_config(run: Run, student: str) -> dict[str, Any]:
    """The recipe YAML of this run: the keys of recipes/<Model>/sft/config_fcot.yaml plus the overrides."""
    args = run.args
    return {
        "model_name_or_path": student,
        "dtype": "float32",
        "task": args.task,
        "dataset_name": str(run.dir / "data"),
        "dataset_format": "fcot",
        "learning_rate": args.learning_rate,
        "per_device_train_batch_size": args.batch_size,
        "num_train_epochs": args.epochs,
        "lr_scheduler_type": "linear",
        "max_length": 1024,
        "completion_only_loss": True,
        "bf16": args.bf16,
        "use_cpu": args.device == "cpu",
        "logging_steps": 5,
        "save_strategy": "epoch",
        "save_total_limit": 1,
        "seed": args.seed,
        "output_dir": str(run.dir / "student"),
        "report_to": "none",
        "push_to_hub": False,
    }


def accelerate_command(args: DistillArguments, config_file: Path) -> list[str]:
    """``accelerate launch`` of the training module under ``args.accelerate_config``.

    On CPU, ``--use_cpu true`` lives in the training YAML (accelerate's own ``--cpu`` would silently drop
    DeepSpeed); ``--mixed_precision no`` keeps the DDP/single-process YAMLs' bf16 off the CPU; port 0 lets
    concurrent launches coexist; a relative DeepSpeed JSON is resolved next to the accelerate YAML.
    """
    accelerate_config = Path(args.accelerate_config).expanduser()
    if not accelerate_config.is_file():
        raise PipelineError(f"accelerate config {accelerate_config} not found (see ds_configs/ in the repository)")
    launch = [sys.executable, "-m", "accelerate.commands.launch"]  # this environment's accelerate, whatever PATH says
    command = [*launch, "--config_file", str(accelerate_config), "--main_process_port", "0"]
    ds_file = (yaml.safe_load(accelerate_config.read_text()).get("deepspeed_config") or {}).get(
        "deepspeed_config_file"
    )
    if ds_file and not Path(ds_file).is_absolute():
        candidates = [Path(ds_file), accelerate_config.parent / Path(ds_file).name]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise PipelineError(f"{accelerate_config} names {ds_file}, which is not there; run from the repo root")
        command += ["--deepspeed_config_file", str(found.resolve())]
    if args.num_processes:
        command += ["--num_processes", str(args.num_processes)]
    if args.device == "cpu":
        command += ["--mixed_precision", "no"]
    return [*command, "-m", "fcot_plugin.train", "--config", str(config_file)]


def run_training(run: Run, student: str) -> dict[str, Any]:
    config_file = run.dir / "train.yaml"
    config_file.write_text(yaml.safe_dump(training_config(run, student), sort_keys=False))
    args = run.args
    if args.launcher == "accelerate":
        command = accelerate_command(args, config_file)
        logger.info("launching: %s", " ".join(command))
        environment = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
        if subprocess.run(command, env=environment).returncode != 0:
            raise PipelineError("training failed (see the output above); re-run to resume from the last checkpoint")
    else:
        from fcot_plugin.train import main as train_main
        from fcot_plugin.train import make_parser

        train_main(*make_parser().parse_yaml_file(str(config_file), allow_extra_keys=False))
    state = json.loads((run.dir / "student" / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    return {"student": str(run.dir / "student"), "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None}  # fmt: skip


def run_evaluations(run: Run, student: str) -> dict[str, Any]:
    """The trained student and the untrained student's zero-shot and zero-shot-CoT baselines, on test."""
    args = run.args
    evaluations = {
        "student": ("hf", run.dir / "student", task_name(args.task, "student")),
        "zeroshot": ("hf", student, task_name(args.task, "zeroshot")),
        "zscot": ("zscot", student, task_name(args.task, "zscot")),
    }
    if not args.baselines:
        evaluations = {"student": evaluations["student"]}
    scores = {}
    for name, (model, path, task) in evaluations.items():
        out = run.dir / "eval" / name
        finished = newest_results(out)
        if finished:  # finished before an interruption
            results, _ = finished
        else:
            dtype = "bfloat16" if args.bf16 else "float32"
            model_args = f"pretrained={path},dtype={dtype}" + (",base=hf" if model == "zscot" else "")
            gen_kwargs = f"max_gen_toks={args.max_gen_toks}" if args.max_gen_toks and name == "student" else None
            results = run_lm_eval(
                model,
                model_args,
                [task],
                limit=args.eval_limit,
                batch_size=args.eval_batch_size,
                gen_kwargs=gen_kwargs,
                output_path=out,
                device=args.device,
            )
        scores[name] = {
            "task": task,
            "accuracy": accuracy(results, task),
            "n": question_count(results, task),
        }
        logger.info("%s: %s accuracy %.4f", name, task, scores[name]["accuracy"])
    return scores


def distill(args: DistillArguments) -> Path:
    """Run (or resume) every stage; returns the run folder."""
    from fcot_plugin.report import write_report

    run = Run(args)
    run.prepare()
    logger.info("run folder: %s", run.dir)
    student = resolve_student(args.student)
    check_causal_lm(student)  # a wrong student fails now, not after a paid-for teacher run
    teacher = run.stage(1, "teacher", lambda: run_teacher(run))
    run.stage(2, "curate", lambda: run_curation(run, teacher))
    run.stage(3, "train", lambda: run_training(run, student))
    run.stage(4, "evaluate", lambda: run_evaluations(run, student))
    run.stage(5, "report", lambda: write_report(run.dir))
    if args.push_to_hub:
        run.stage(6, "push", lambda: push_run(run))
    return run.dir


def push_run(run: Run) -> dict[str, Any]:
    from fcot_plugin.configs import EvaluateArguments
    from fcot_plugin.evaluate import write_result_to_card
    from fcot_plugin.hub import folder_files, push_dataset, push_files, require_hub_token

    args = run.args
    require_hub_token()
    student = Path(EMBEDDED_HUB_ID if args.student == EMBEDDED_STUDENT else args.student).name
    name = f"{student}-fcot-{args.task}"
    dataset_url = push_dataset(run.dir / "data", f"{args.push_to_hub}/{name}-data")
    student_dir = run.dir / "student"
    score = run.done("evaluate")["student"]["accuracy"]
    write_result_to_card(EvaluateArguments(model=str(student_dir), task=args.task, limit=args.eval_limit), score)
    files = folder_files(student_dir, exclude=["checkpoint-*"])  # one commit: weights, tokenizer and card together
    model_url = push_files(f"{args.push_to_hub}/{name}", files, commit_message="Add Fine-tune-CoT student")
    return {"dataset": dataset_url, "model": model_url}


def main(args: DistillArguments) -> None:
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(format=log_format, level=logging.INFO, stream=sys.stderr)
    run_dir = distill(args)
    print(f"done: {run_dir / 'report.md'}")
