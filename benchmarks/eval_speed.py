"""Evaluation speed: a trained student's MultiArith test evaluation (180 questions) through lm-eval, as fcot runs it.

Without ``--student`` it first trains one: SmolLM2-135M-Instruct, ``--train_epochs`` epoch(s) of Fine-tune-CoT
on the paper's MultiArith rationales with fcot's default SFT path (a student that has learnt to stop after
``--> answer`` is what the evaluation really sees; an untrained model rambles to the token budget). The
evaluation is ``fcot_multiarith`` as fcot runs it: lm-eval's ``hf-regroup`` model (``fcot_plugin.harness.hf_regroup``),
precision ``auto``, at ``--batch_size``; with ``--baseline_hf`` (default) the same evaluation through lm-eval's
plain ``hf`` at ``--baseline_batch_size`` runs next, for the speed-up; with ``--vllm`` (default) the same
evaluation goes through vLLM as ``--eval_engine vllm`` runs it (one server from ``make vllm``'s venv, start-up and
one weight swap timed apart, ``--batch_size`` requests in flight), and its greedy answers are compared with both.
Results: seconds, generated tokens and tokens/s, accuracy, answers that differ between engines, machine and CPU
flags, in ``<output>.json``/``.md``.
Run it alone: two torch processes on 2 cores distort timings.

    python benchmarks/eval_speed.py                       # trains a 1-epoch student first (~2-5 min)
    python benchmarks/eval_speed.py --student runs/multiarith/student
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import AutoTokenizer

from fcot_plugin.core.files import result_file
from fcot_plugin.core.precision import detect_hardware, resolve_precision
from fcot_plugin.pipeline.settings import EVAL_BATCH_SIZE

RESULTS = Path(__file__).parent / "results"


@dataclass
class EvalSpeedArguments:
    task: str = field(default="multiarith", metadata={"help": "fcot task whose test split is scored"})
    student: str | None = field(default=None, metadata={"help": "trained student folder; default: train one"})
    base_student: str = field(default="smollm2-135m", metadata={"help": "what to train when --student is unset"})
    train_epochs: float = field(default=1.0, metadata={"help": "epochs when training the student here"})
    batch_size: int = field(default=EVAL_BATCH_SIZE, metadata={"help": "lm-eval batch size (fcot distill's default)"})
    segment_tokens: int | None = field(default=None, metadata={"help": "hf-regroup segment (default: its own)"})
    baseline_hf: bool = field(default=True, metadata={"help": "also time lm-eval's plain hf model"})
    baseline_batch_size: int = field(default=32, metadata={"help": "batch size of the plain hf run"})
    vllm: bool = field(default=True, metadata={"help": "also score through vLLM (--eval_engine vllm; `make vllm`)"})
    precision: str = field(default="auto", metadata={"help": "auto, bf16 or fp32"})
    limit: int | None = field(default=None, metadata={"help": "score only the first N questions"})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda"})
    save_student: str | None = field(default=None, metadata={"help": "keep the student trained here in this folder"})
    output: str = field(default=str(RESULTS / "eval_speed"), metadata={"help": "results path without suffix"})

    def __post_init__(self) -> None:
        from fcot_plugin.core.command_line import check_positive
        from fcot_plugin.core.errors import FcotError
        from fcot_plugin.core.numbers import POSITIVE
        from fcot_plugin.core.precision import normalise
        from fcot_plugin.pipeline.preflight import check_model_folder
        from fcot_plugin.tasks.registry import get_task

        get_task(self.task)
        if self.student is not None:
            check_model_folder(self.student, "--student")
        if self.device not in ("cpu", "cuda"):
            raise FcotError(f"--device must be cpu or cuda, got {self.device!r}")
        self.precision = normalise(self.precision)
        check_positive(self, "batch_size", "baseline_batch_size", "segment_tokens", "limit")
        POSITIVE.check("train_epochs", self.train_epochs)  # NaN and inf too
        if self.vllm:
            from fcot_plugin.serving.vllm import vllm_python

            vllm_python()  # no venv: one line saying `make vllm` (or pass --vllm false)


def train_student(args: EvalSpeedArguments, scratch: Path) -> tuple[str, float]:
    """A Fine-tune-CoT student trained with fcot's default recipe path; returns its folder and seconds."""
    from trl import ModelConfig

    from fcot_plugin.curation.dataset import curate, save_dataset
    from fcot_plugin.training.config import FcotScriptArguments, FcotSFTConfig
    from fcot_plugin.training.sft import main as train
    from fcot_plugin.training.students import resolve_student

    save_dataset(curate(args.task, "paper"), scratch / "data", overwrite=True)
    started = time.perf_counter()
    output = train(
        FcotScriptArguments(task=args.task, dataset_name=str(scratch / "data")),
        FcotSFTConfig(
            output_dir=args.save_student or str(scratch / "student"),
            num_train_epochs=args.train_epochs,
            save_strategy="no",
            report_to="none",
            precision=args.precision,
            use_cpu=args.device == "cpu",
            seed=42,
        ),
        ModelConfig(model_name_or_path=resolve_student(args.base_student), dtype="float32"),
    )
    return str(output), time.perf_counter() - started


def generated_tokens(samples: list[dict], tokenizer) -> int:
    """Tokens the student generated: its responses re-tokenised (lm-eval keeps text, not ids)."""
    return sum(len(tokenizer(sample["resps"][0][0], add_special_tokens=False)["input_ids"]) for sample in samples)


def timed_evaluation(
    args: EvalSpeedArguments, model: str, model_args: str, batch_size: int, tokenizer, out: Path
) -> dict:
    """One lm-eval run of the student's task: seconds, generated tokens (counted with ``tokenizer``), accuracy."""
    from fcot_plugin.harness.runner import accuracy, run_lm_eval
    from fcot_plugin.tasks.names import task_name

    name = task_name(args.task, "student")
    started = time.perf_counter()
    results = run_lm_eval(
        model, model_args, [name], limit=args.limit, batch_size=batch_size, output_path=out, device=args.device
    )
    seconds = time.perf_counter() - started
    samples = [json.loads(line) for path in out.rglob("samples_*.jsonl") for line in open(path)]
    tokens = generated_tokens(samples, tokenizer)
    return {
        "model": model,
        "batch_size": batch_size,
        "questions": len(samples),
        "seconds": round(seconds, 1),
        "generated_tokens": tokens,
        "generated_tokens_per_second": round(tokens / seconds, 1),
        "accuracy": round(accuracy(results, name), 4),
        "answers": {sample["doc_id"]: sample["filtered_resps"][0] for sample in samples},
    }


def timed_vllm_evaluation(args: EvalSpeedArguments, student: str, dtype: str, tokenizer, scratch: Path) -> dict:
    """The evaluation as ``--eval_engine vllm`` runs it; start-up and one weight swap are timed apart."""
    import shutil

    from fcot_plugin.pipeline.scoring import VllmScorer

    with VllmScorer(dtype, args.batch_size, scratch / "vllm.log", args.device) as scorer:
        model, model_args = scorer.lm_eval_model(student)
        run = timed_evaluation(args, model, model_args, scorer.lm_eval_batch_size, tokenizer, scratch / "vllm")
        shutil.copytree(student, scratch / "same-weights")  # a checkpoint's swap: another folder, same shapes
        scorer.lm_eval_model(scratch / "same-weights")
    run.update(
        model="local-completions (vLLM)",
        batch_size=f"{args.batch_size} in flight",
        start_up_seconds=round(scorer.start_up_seconds, 1),
        swap_seconds=round(scorer.swap_seconds[0], 1),
    )
    return run


def differing(run: dict, other: dict) -> int:
    """Questions whose extracted answer differs between two runs."""
    return sum(run["answers"][doc] != other["answers"].get(doc) for doc in run["answers"])


def main(args: EvalSpeedArguments) -> dict:
    from fcot_plugin.harness.model_names import LOCAL_MODEL
    from fcot_plugin.tasks.names import task_name

    precision = resolve_precision(args.precision, args.device)
    name = task_name(args.task, "student")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        student, train_seconds = (args.student, None) if args.student else train_student(args, scratch)
        model_args = f"pretrained={student},dtype={precision.torch_dtype_name}"
        fcot_args = model_args + (f",segment_tokens={args.segment_tokens}" if args.segment_tokens else "")
        tokenizer = AutoTokenizer.from_pretrained(student)
        runs = [timed_evaluation(args, LOCAL_MODEL, fcot_args, args.batch_size, tokenizer, scratch / "fcot")]
        if args.baseline_hf:
            runs.append(timed_evaluation(args, "hf", model_args, args.baseline_batch_size, tokenizer, scratch / "hf"))
        if args.vllm:
            runs.append(timed_vllm_evaluation(args, student, precision.torch_dtype_name, tokenizer, scratch))
    hardware = detect_hardware(args.device)
    fcot = runs[0]
    for run in runs:  # answers that differ from each run before it (greedy, same precision)
        run["answers_differing_from"] = {other["model"]: differing(run, other) for other in runs[: runs.index(run)]}
    for run in runs:
        del run["answers"]
    record = {
        "config": asdict(args),
        "machine": hardware.as_dict(),
        "precision": precision.name,
        "student_train_seconds": round(train_seconds, 1) if train_seconds is not None else None,
        **{
            key: fcot[key]
            for key in ("questions", "seconds", "generated_tokens", "generated_tokens_per_second", "accuracy")
        },
        "runs": runs,
        "speedup_over_hf": round(runs[1]["seconds"] / fcot["seconds"], 2) if args.baseline_hf else None,
        "vllm_over_fcot": round(fcot["seconds"] / runs[-1]["seconds"], 2) if args.vllm else None,
    }
    print(json.dumps({key: value for key, value in record.items() if key not in ("config", "machine")}))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    result_file(output, ".json").write_text(json.dumps(record, indent=2) + "\n")

    def differences(run: dict) -> str:
        return ", ".join(f"{count} vs `{model}`" for model, count in run["answers_differing_from"].items()) or "–"

    rows = "".join(
        f"| `{run['model']}`{' (fcot)' if run is fcot else ''} | {run['batch_size']} | {run['seconds']} | "
        f"{run.get('start_up_seconds', '–')} | {run['generated_tokens']} | {run['generated_tokens_per_second']} | "
        f"{run['accuracy']:.4f} | {differences(run)} |\n"
        for run in runs
    )
    result_file(output, ".md").write_text(
        f"# Evaluation speed: {name}, {record['questions']} questions\n\n"
        f"Machine: {hardware.describe()}.\n"
        f"Precision {precision.name}, student trained "
        f"{args.train_epochs if not args.student else 'elsewhere'} epoch(s). Seconds include loading the model "
        "in-process; vLLM's server start-up is its own column, and a weight swap (what each further checkpoint "
        f"costs) took {runs[-1].get('swap_seconds', '–')} s. Batch: rows decoded at once, or requests in flight.\n\n"
        "| lm-eval model | batch | seconds | start-up s | generated tokens | generated tokens/s | accuracy | "
        "answers differing |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
        + rows
        + (
            f"\nSpeed-up of fcot's path over lm-eval's plain `hf`: {record['speedup_over_hf']}x\n"
            if record["speedup_over_hf"]
            else ""
        )
        + (
            f"\nvLLM's scoring speed against fcot's path (start-up excluded): {record['vllm_over_fcot']}x\n"
            if record["vllm_over_fcot"]
            else ""
        )
    )
    return record


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("eval_speed.py", EvalSpeedArguments, main, sys.argv[1:])
