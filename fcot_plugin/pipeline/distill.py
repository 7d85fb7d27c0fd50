"""``fcot distill``: teacher → curation → student SFT → evaluation → report, in one resumable run folder.

This module lists the stages and what each does. The folder's layout and lock live in
:mod:`fcot_plugin.pipeline.run_folder`; when a stage is reused or runs again, in :mod:`fcot_plugin.pipeline.stages`.
Everything that can be checked is checked before the folder is touched (:mod:`fcot_plugin.pipeline.preflight`);
one process at a time holds the folder, and ``--restart`` moves every earlier output to ``.previous/``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from fcot_plugin.core.files import read_json, write_json_atomic, write_text_atomic
from fcot_plugin.core.memory import release_freed_memory
from fcot_plugin.core.precision import detect_hardware, torch_dtype_name
from fcot_plugin.core.secrets import install_log_redaction, redact
from fcot_plugin.curation.dataset import curate, curation_line, curation_summary, save_dataset
from fcot_plugin.curation.responses import teacher_responses
from fcot_plugin.harness.runner import accuracy, newest_results, question_count, run_lm_eval
from fcot_plugin.pipeline import validation
from fcot_plugin.pipeline.preflight import check_accelerate_config, check_distill, check_run_dir
from fcot_plugin.pipeline.run_folder import BASELINE_NAMES, RunFolder, RunLock
from fcot_plugin.pipeline.scoring import Scorer, make_scorer
from fcot_plugin.pipeline.settings import DistillArguments, split_server_args
from fcot_plugin.pipeline.stages import PipelineError, StageRunner, baseline_settings, student_weights
from fcot_plugin.tasks.formats import PAPER_SOURCE
from fcot_plugin.tasks.names import student_task, task_name
from fcot_plugin.tasks.own_data import OwnTask, build_task
from fcot_plugin.tasks.registry import resolve_task
from fcot_plugin.tasks.task_folder import write_task_folder
from fcot_plugin.teacher.spec import TeacherSpec
from fcot_plugin.training.checkpoints import epoch_checkpoints, last_complete_checkpoint
from fcot_plugin.training.defaults import PAPER_RECIPE

logger = logging.getLogger(__name__)


class Run:
    """One ``fcot distill`` in its run folder: which stages to reuse, which to run again, and progress."""

    def __init__(self, args: DistillArguments, student: str | None = None, own: OwnTask | None = None) -> None:
        self.args = args
        self.own = own  # a dataset of the user's own (--dataset), checked; written to tasks/ by prepare
        self.folder = RunFolder(args.run_dir)
        self.dir = self.folder.path
        self.settings = args.settings()
        self.student = student
        # .previous/<stamp>/ receives whatever this run replaces
        self.stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S.%f")
        self.lock = RunLock(self.folder)
        self.runner = StageRunner(self.folder, self.settings, self.stamp)
        self._scorer: Scorer | None = None

    def scorer(self) -> Scorer:
        """What scores models in this run (``--eval_engine``): a vLLM server starts on first use and serves every
        later evaluation of the run, validation's and the evaluate stage's alike; :meth:`close` stops it."""
        if self._scorer is None:
            args = self.args
            log_file = self.folder.path / "logs" / f"eval-{args.eval_engine}.log"
            self._scorer = make_scorer(
                args.eval_engine,
                torch_dtype_name(args.precision),
                args.eval_batch_size,
                log_file,
                args.device,
                split_server_args(args.vllm_server_args),
            )
        return self._scorer

    def close(self) -> None:
        """Stop what the run started (the scoring server) and let go of the folder."""
        try:
            if self._scorer is not None:
                self._scorer.close()
        finally:
            self.lock.release()

    def prepare(self) -> None:
        """Take the folder's lock, move everything aside on ``--restart``, and record the settings."""
        check_run_dir(self.dir)  # again, right before the first write: the folder may have changed since the checks
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        self.folder.mark()  # once the folder is this run's: a run refused by the lock writes nothing
        previous = self.lock.taken_over
        if previous and not previous["alive"]:
            logger.info(
                "took over the lock left by pid %s on %s (no longer running)", previous["pid"], previous["host"]
            )
        if self.args.restart:
            moved = self.folder.move_everything_aside(self.stamp)
            if moved:
                logger.info("--restart: earlier outputs moved to %s; every stage runs again", moved)
        if self.student is not None:  # the resolved student: new weights at the same path are a new student
            self.settings["student_weights"] = student_weights(self.student, self.folder)
        if self.own is not None:  # its lm-eval tasks and data, where the YAMLs find them from any directory
            own = self.own
            self.settings["dataset_digest"] = own.digest()  # a changed file is a new task
            resolve_task(
                str(write_task_folder(own.name, own.answer_type, own.splits, own.provenance, self.folder.tasks_dir))
            )
        self.folder.stages_dir.mkdir(parents=True, exist_ok=True)
        hardware = detect_hardware(self.args.device).as_dict()  # what the precision choice was based on
        write_json_atomic(self.folder.config_file, redact({**self.args.settings(), "hardware": hardware}))

    def done(self, stage: str) -> dict[str, Any] | None:
        """What a finished stage returned, or None."""
        return self.folder.results(stage) if self.folder.stage_file(stage).is_file() else None

    def stage(self, number: int, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``work`` unless the stage finished with the same fingerprint; record what it returns."""
        return self.runner.run(number, stage, work)


# ---------------------------------------------------------------------- stages


def run_teacher(run: Run) -> dict[str, Any]:
    args = run.args
    if args.paper_teacher:
        return {"source": PAPER_SOURCE}
    if args.teacher_engine is None:
        return teacher_through(run, args.teacher_spec)
    from fcot_plugin.serving.served import served_model
    from fcot_plugin.teacher.embedded import resolve

    model, embedded = resolve(args.teacher, args.teacher_engine)  # an embedded teacher offline: its file
    log_file = run.folder.path / "logs" / f"teacher-{args.teacher_engine}.log"
    extra = split_server_args(args.vllm_server_args) if args.teacher_engine == "vllm" else []
    with served_model(model, args.teacher_engine, log_file, device=args.device, extra_args=extra) as server:
        result = teacher_through(run, TeacherSpec.parse(server.model_args))
    return {**result, "embedded_teacher": embedded} if embedded else result


def teacher_through(run: Run, spec: TeacherSpec) -> dict[str, Any]:
    """The two-stage zero-shot-CoT teacher on the train split, through lm-eval's ``zscot`` over ``spec``."""
    args = run.args
    teacher_dir = run.folder.teacher_dir
    # zscot's own default base (hf-regroup) unless it names one. Every finished response is cached as it arrives:
    # a killed teacher stage restarts where it stopped.
    # a dataset of your own: Kojima's trigger of its answer type (e.g. "among A through D") unless --teacher sets one
    typed = {"answer_trigger": "typed"} if args.dataset else {}
    model_args = spec.model_args(
        cache=str(run.folder.teacher_cache), accounting=str(teacher_dir / "accounting.json"), **typed
    )
    metadata = {"fcot_samples": args.diverse, "fcot_temperature": args.teacher_temperature}
    results = run_lm_eval(
        "zscot",
        model_args,
        [task_name(args.task, "teacher")],
        limit=args.train_limit,
        batch_size=1 if spec.served else args.eval_batch_size,  # a server: one prompt per request
        gen_kwargs=f"max_gen_toks={args.teacher_max_gen_toks}" if args.teacher_max_gen_toks else None,
        output_path=teacher_dir,
        metadata=metadata,
        device=args.device,
    )
    return {
        "source": str(teacher_dir),
        "train_accuracy": accuracy(results, task_name(args.task, "teacher")),
        "accounting": results["config"].get("fcot_teacher_accounting"),
    }


def run_curation(run: Run, teacher: dict[str, Any]) -> dict[str, Any]:
    """Curate the train questions; with epoch selection, a seeded validation slice of them is held out first."""
    args = run.args
    held_out: list[dict[str, Any]] = []
    if args.validation_size:
        responses, _ = teacher_responses(args.task, teacher["source"], question_limit=args.train_limit)
        questions = {item.sample_index: item for item in responses}
        ids = validation.carve(questions, args.validation_size, args.validation_seed)
        held_out = [{"sample_index": i, "question": questions[i].question, "answer": questions[i].answer} for i in ids]
        logger.info(
            "validation: %d of %d train questions held out (seed %d), never trained on",
            len(ids),
            len(questions),
            args.validation_seed,
        )
    result = curate(
        args.task,
        teacher["source"],
        format=args.dataset_format,
        question_limit=args.train_limit,
        held_out=[row["sample_index"] for row in held_out],
        add_paper=args.add_paper_rationales,
    )
    result.teacher.weights = teacher.get("embedded_teacher")  # the file and hash the cards name
    logger.info("curation: %s", curation_line(result))
    save_dataset(result, run.folder.data_dir, overwrite=True)
    if held_out:
        pool = result.stats.questions + len(held_out)
        validation.write_validation(run.folder.data_dir, held_out, args.validation_size, args.validation_seed, pool)
    return curation_summary(result)


def training_config(run: Run, student: str) -> dict[str, Any]:
    """The recipe YAML of this run: the keys of recipes/<Model>/sft/config_fcot.yaml plus the overrides."""
    args = run.args
    return {
        "model_name_or_path": student,
        "dtype": "float32",
        "dataset_name": str(run.folder.data_dir),
        **args.recipe_overrides(),  # task, format, epochs, learning rate, batch size, precision, seed, LoRA, ...
        **({"task": str(run.folder.tasks_dir.resolve())} if args.dataset else {}),  # the folder names the task
        "lr_scheduler_type": "linear",
        "max_length": PAPER_RECIPE.max_length,
        "completion_only_loss": True,
        "use_cpu": args.device == "cpu",
        "logging_steps": 5,
        "save_strategy": "epoch",
        "save_total_limit": None if args.validation_size else 1,  # epoch selection scores every epoch
        "seed": args.seed,
        "output_dir": str(run.folder.student_dir),
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
    launch = [sys.executable, "-m", "accelerate.commands.launch"]  # this environment's accelerate, whatever PATH says
    command = [*launch, "--config_file", str(accelerate_config), "--main_process_port", "0"]
    ds_file = check_accelerate_config(str(accelerate_config))  # parsed by accelerate (and checked again here)
    if ds_file is not None:
        command += ["--deepspeed_config_file", str(ds_file)]
    if args.num_processes:
        command += ["--num_processes", str(args.num_processes)]
    if args.device == "cpu":
        command += ["--mixed_precision", "no"]
    return [*command, "-m", "fcot_plugin.train", "--config", str(config_file)]


def run_training(run: Run, student: str) -> dict[str, Any]:
    config_file = run.folder.train_config
    write_text_atomic(config_file, yaml.safe_dump(training_config(run, student), sort_keys=False))
    args = run.args
    if args.launcher == "accelerate":
        command = accelerate_command(args, config_file)
        logger.info("launching: %s", " ".join(command))
        environment = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
        if subprocess.run(command, env=environment).returncode != 0:
            checkpoint = last_complete_checkpoint(run.folder.student_dir)
            again = f"resumes from {checkpoint}" if checkpoint else "starts the training over"
            raise PipelineError(
                f"training failed (see the output above); fix that and run the same command again (it {again})"
            )
    else:
        from fcot_plugin.training.sft import main as train_main
        from fcot_plugin.training.sft import make_parser

        train_main(*make_parser().parse_yaml_file(str(config_file), allow_extra_keys=False))
        release_freed_memory()  # gigabytes of freed activations, else held through every later stage
    state = json.loads((run.folder.student_dir / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    results = {
        "student": str(run.folder.student_dir),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    }
    if args.validation_size:
        results["selection"] = select_epoch(run)
    return results


def select_epoch(run: Run) -> dict[str, Any]:
    """Score each epoch's checkpoint on the validation slice and install the best (ties: earliest) as student/.

    Each epoch's lm-eval output is kept under validation/epoch-<k>/, so an interrupted selection resumes; the
    checkpoints of epochs neither chosen nor last are deleted at the end (each holds optimizer state).
    """
    args, folder = run.args, run.folder
    task = student_task(args.task, args.dataset_format)  # the student's own prompt, generation and answer rules
    checkpoints = dict(epoch_checkpoints(folder.student_dir))
    scored = {
        int(path.name.split("-")[1]) for path in (folder.path / "validation").glob("epoch-*") if newest_results(path)
    }
    epochs = sorted(set(checkpoints) | scored)
    curve = []
    for epoch in epochs:
        started = time.monotonic()
        finished = newest_results(folder.validation_dir(epoch))
        if finished:
            results, _ = finished
        else:
            results = run.scorer().score(
                checkpoints[epoch],
                task,
                max_gen_toks=args.max_gen_toks,
                output_path=folder.validation_dir(epoch),
                metadata={"fcot_data": str(folder.data_dir / validation.ROWS_FILE)},
                device=args.device,
            )
        curve.append({"epoch": epoch, "accuracy": accuracy(results, task), "n": question_count(results, task)})
        logger.info(
            "validation: epoch %d/%d accuracy %.4f on %d held-out questions (%.0f s)",
            epoch,
            epochs[-1],
            curve[-1]["accuracy"],
            curve[-1]["n"],
            time.monotonic() - started,
        )
    chosen, last = validation.choose(curve)["epoch"], epochs[-1]
    if chosen != last:
        validation.install(checkpoints[chosen], folder.student_dir)
    card = folder.student_dir / "README.md"
    if card.is_file():
        card.write_text(card.read_text().rstrip("\n") + "\n\n" + validation.selection_markdown(curve, chosen, last))
    validation.prune(list(checkpoints.items()), keep={chosen, last})
    logger.info("validation: epoch %d chosen (last epoch %d); student/ holds its weights", chosen, last)
    return {
        "curve": curve,
        "chosen_epoch": chosen,
        "last_epoch": last,
        "eval_engine": args.eval_engine,
        "last_checkpoint": str(checkpoints[last].relative_to(folder.path)),
    }


def run_evaluations(run: Run, student: str) -> dict[str, Any]:
    """The trained student and the untrained student's zero-shot and zero-shot-CoT baselines, on test."""
    args = run.args
    evaluations = {  # name: (zero-shot-CoT through zscot?, weights, task)
        "student": (False, run.folder.student_dir, student_task(args.task, args.dataset_format)),
        "zeroshot": (False, student, task_name(args.task, "zeroshot")),
        "zscot": (True, student, task_name(args.task, "zscot")),
    }
    if not args.baselines:
        evaluations = {"student": evaluations["student"]}
    selection = (run.done("train") or {}).get("selection")
    if selection and selection["chosen_epoch"] != selection["last_epoch"]:  # student/ holds the chosen epoch
        evaluations["student_last"] = (False, run.dir / selection["last_checkpoint"], evaluations["student"][2])
    scores = {}
    for name, (zscot, path, task) in evaluations.items():
        out = run.folder.eval_dir(name)
        finished = scored_baseline(run, name) if name in BASELINE_NAMES else newest_results(out)
        if finished:  # a student's: before an interruption of this same stage (else moved aside)
            results, _ = finished
        else:
            results = run.scorer().score(  # hf + a LoRA student: pretrained=<base>,peft=<adapter>
                path,
                task,
                zscot=zscot,
                max_gen_toks=args.max_gen_toks if name not in BASELINE_NAMES else None,
                limit=args.eval_limit,
                output_path=out,
                device=args.device,
            )
            if name in BASELINE_NAMES:
                write_json_atomic(run.folder.baseline_record(name), baseline_settings(run.settings))
        scores[name] = {
            "task": task,
            "accuracy": accuracy(results, task),
            "n": question_count(results, task),
            "eval_engine": args.eval_engine,
        }
        logger.info("%s: %s accuracy %.4f", name, task, scores[name]["accuracy"])
    if selection and "student_last" not in scores:  # the last epoch was chosen: one evaluation, two labels
        scores["student_last"] = {**scores["student"], "same_as": "student"}
    return scores


def scored_baseline(run: Run, name: str) -> tuple[dict[str, Any], Path] | None:
    """An untrained-student baseline scored earlier under the same settings (any training), else None.

    Whatever is there under other settings, or cut short, moves to ``.previous/<time>/`` first.
    """
    out, record = run.folder.eval_dir(name), run.folder.baseline_record(name)
    finished = newest_results(out)
    scored_under = read_json(record, "delete it: the baseline is scored again") if record.is_file() else None
    if finished and scored_under == baseline_settings(run.settings):
        logger.info("%s: the untrained student was scored in an earlier run with the same settings, reused", name)
        return finished
    run.folder.move_aside([str(out.relative_to(run.dir))], run.stamp)
    return None


def distill(args: DistillArguments) -> Path:
    """Run (or resume) every stage; returns the run folder. Nothing is written before every check passes."""
    from fcot_plugin.pipeline.report import write_report

    own = build_task(args) if args.dataset else None  # a bad row is one line before any teacher runs
    student = check_distill(args)  # a wrong student or config fails now, not after a paid-for teacher run
    run = Run(args, student, own)
    try:
        run.prepare()
        logger.info("run folder: %s", run.dir)
        teacher = run.stage(1, "teacher", lambda: run_teacher(run))
        run.stage(2, "curate", lambda: run_curation(run, teacher))
        run.stage(3, "train", lambda: run_training(run, student))
        run.stage(4, "evaluate", lambda: run_evaluations(run, student))
        run.stage(5, "report", lambda: write_report(run.dir))
        if args.push_to_hub:
            run.stage(6, "push", lambda: push_run(run))
    finally:
        run.close()
    return run.dir


def push_run(run: Run) -> dict[str, Any]:
    """The student and its data as a pair: the model first, then the data; a failure says what is published and
    the command that finishes it (this same command does too: finished stages are reused, only the push runs)."""
    from fcot_plugin.hub.push import publish_student, student_repo_ids
    from fcot_plugin.pipeline.evaluate import write_result_to_card
    from fcot_plugin.pipeline.settings import EvaluateArguments

    args = run.args
    model_repo, dataset_repo = student_repo_ids(args.hub_model_id, args.hub_dataset_id)
    student_dir = run.folder.student_dir
    score = run.done("evaluate")["student"]["accuracy"]
    card_args = EvaluateArguments(
        model=str(student_dir), task=args.task, dataset_format=args.dataset_format, limit=args.eval_limit
    )
    return publish_student(
        student_dir,
        run.folder.data_dir,
        model_repo,
        dataset_repo,
        card_update=lambda _: write_result_to_card(card_args, score),
        also="run the same fcot distill command again: finished stages are reused, only the push runs",
    )


def main(args: DistillArguments) -> None:
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(format=log_format, level=logging.INFO, stream=sys.stderr)
    install_log_redaction()
    run_dir = distill(args)
    print(f"done: {run_dir / 'report.md'}")
