"""SFT throughput: fcot's default SFT path against a plain ``transformers.Trainer``, side by side in one run.

(a) baseline: plain ``transformers.Trainer``, fp32, padded to the longest row of each batch, no gradient
    checkpointing, loss on the completion (a hand-written collator masks the prompt).
(b) fcot: ``FcotSFTConfig`` defaults exactly as ``fcot distill`` and ``recipes/sft.py`` run them (TRL's
    ``SFTTrainer`` with fcot's compact completion loss, length-grouped padded batches, precision ``auto``).

Same student, same curated rows (the task's whole train set, so a batch is drawn as in a real epoch), same rows
per optimiser step, same seed. ``--steps`` optimiser steps are timed
after ``--warmup_steps``; real (non-padding) tokens are counted from the batches each trainer actually saw.
Results: ``<output>.json`` (top-level ``"speedup"`` = b/a, machine and CPU flags, per path: real tokens/s,
padding fraction, peak RSS) and ``<output>.md``. Run it alone: two torch processes on 2 cores distort timings.

    python benchmarks/sft_throughput.py --task multiarith --steps 8
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from fcot_plugin.core.files import result_file
from fcot_plugin.core.precision import detect_hardware, resolve_precision
from fcot_plugin.curation.dataset import curate
from fcot_plugin.training.students import resolve_student

RESULTS = Path(__file__).parent / "results"
BASELINE, FCOT = "a: plain transformers.Trainer (fp32, padded)", "b: fcot SFT (default path)"


@dataclass
class ThroughputArguments:
    task: str = field(default="multiarith", metadata={"help": "task whose paper rationales are the data"})
    student: str = field(default="smollm2-135m", metadata={"help": "student id/folder; smollm2-135m = embedded"})
    steps: int = field(default=8, metadata={"help": "timed optimiser steps"})
    warmup_steps: int = field(default=2, metadata={"help": "untimed steps first"})
    batch_size: int = field(default=8, metadata={"help": "rows per optimiser step, both paths (paper: 8)"})
    precision: str = field(default="auto", metadata={"help": "fcot path precision: auto, bf16 or fp32"})
    fcot_overrides: str = field(
        default="{}",
        metadata={
            "help": "JSON of FcotSFTConfig keys to change on the fcot path, to try a lever, "
            "e.g. '{\"padding_free\": false}'; recorded in the results"
        },
    )
    output: str = field(default=str(RESULTS / "sft_throughput"), metadata={"help": "results path without suffix"})

    def __post_init__(self) -> None:
        from fcot_plugin.core.command_line import check_positive
        from fcot_plugin.core.errors import FcotError
        from fcot_plugin.core.precision import normalise
        from fcot_plugin.pipeline.preflight import check_model_folder
        from fcot_plugin.tasks.formats import check_paper_rationales
        from fcot_plugin.tasks.registry import get_task
        from fcot_plugin.training.config import FcotSFTConfig
        from fcot_plugin.training.students import EMBEDDED_STUDENT

        get_task(self.task)
        check_paper_rationales(self.task)
        if self.student != EMBEDDED_STUDENT:
            check_model_folder(self.student, "--student")
        self.precision = normalise(self.precision)
        check_positive(self, "steps", "batch_size")
        if self.warmup_steps < 0:
            raise FcotError(f"--warmup_steps must be >= 0, got {self.warmup_steps}")
        try:
            overrides = json.loads(self.fcot_overrides)
        except json.JSONDecodeError as error:
            raise FcotError(
                f"--fcot_overrides is not JSON ({error}); pass e.g. '{{\"padding_free\": false}}'"
            ) from None
        known = {f.name for f in fields(FcotSFTConfig)}
        unknown = sorted(set(overrides) - known) if isinstance(overrides, dict) else None
        if unknown is None or unknown:
            raise FcotError(
                f"--fcot_overrides must be a JSON object of FcotSFTConfig options; not options: "
                f"{unknown if unknown else self.fcot_overrides}"
            )


class StepTimer(TrainerCallback):
    """Wall time of the optimiser steps after the warm-up ones."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps, self.started, self.seconds = warmup_steps, None, None

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.warmup_steps:
            _synchronize()
            self.started = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        _synchronize()
        self.seconds = time.perf_counter() - self.started


def _cuda() -> bool:
    return torch.cuda.is_available()


def _synchronize() -> None:
    if _cuda():  # GPU kernels run asynchronously: time what has finished
        torch.cuda.synchronize()


class CountingCollator:
    """Wraps a trainer's collator and records, per batch, the tokens computed on and the real ones."""

    def __init__(self, collate) -> None:
        self.collate, self.batches = collate, []

    def __call__(self, features):
        batch = self.collate(features)
        computed = batch["input_ids"].numel()
        real = int(batch["attention_mask"].sum()) if "attention_mask" in batch else computed  # padding-free: all
        self.batches.append((computed, real))
        return batch


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled; the run is seconds long)."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        page = 4096
        while not self._stop.is_set():
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * page
            self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def common_args(args: ThroughputArguments, out: str) -> dict:
    """What both paths share: steps, rows per step, learning rate, seed, no checkpoints, CPU unless a GPU.
    Each keeps its own optimiser default: AdamW, fused where torch has it, in both."""
    return {
        "output_dir": out,
        "max_steps": args.warmup_steps + args.steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": 3e-4,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1000,
        "seed": 0,
        "dataloader_drop_last": True,
    }


def optimizer_name(args: TrainingArguments) -> str:
    return str(getattr(args.optim, "value", args.optim))  # an enum in some transformers versions


def run_fcot(args: ThroughputArguments, model_path: str, dataset, out: str) -> tuple[Trainer, dict]:
    """fcot's path: FcotSFTConfig's defaults (what distill and the recipes use) with only the timing keys set."""
    from fcot_plugin.training.causal import choose_attention, make_trainer_class
    from fcot_plugin.training.config import FcotSFTConfig

    config = FcotSFTConfig(**common_args(args, out), precision=args.precision, **json.loads(args.fcot_overrides))
    config.model_init_kwargs = {"dtype": "float32"}  # as the recipes load the student
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    choose_attention(config)  # as fcot_plugin.training.sft.main does
    trainer = make_trainer_class()(model=model_path, args=config, train_dataset=dataset, processing_class=tokenizer)
    settings = {
        "bf16": config.bf16,
        "padding_free": config.padding_free,
        "optim": optimizer_name(config),
        "batches": config.train_sampling_strategy,
        "attention": config.model_init_kwargs.get("attn_implementation") or "sdpa",
        "gradient_checkpointing": config.gradient_checkpointing,
    }
    return trainer, settings


class CompletionOnlyCollator:
    """Pad prompt+completion ids to the longest row and mask the prompt and the padding out of the labels."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features):
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id)
        labels = torch.full((len(features), width), -100)
        attention = torch.zeros((len(features), width), dtype=torch.long)
        for row, feature in enumerate(features):
            n, start = len(feature["input_ids"]), feature["prompt_length"]
            ids[row, :n] = torch.tensor(feature["input_ids"])
            labels[row, start:n] = ids[row, start:n]
            attention[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": attention}


def run_plain(args: ThroughputArguments, model_path: str, dataset, out: str) -> tuple[Trainer, dict]:
    """The baseline a user would write: tokenise prompt + completion + EOS, pad, mask the prompt, fp32."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def tokenize(row):
        prompt = tokenizer(row["prompt"])["input_ids"]
        completion = tokenizer(row["completion"])["input_ids"] + [tokenizer.eos_token_id]
        return {"input_ids": prompt + completion, "prompt_length": len(prompt)}

    tokenized = dataset.map(tokenize, remove_columns=dataset.column_names)
    trainer = Trainer(
        model=AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
        args=TrainingArguments(**common_args(args, out), bf16=False, remove_unused_columns=False),
        train_dataset=tokenized,
        data_collator=CompletionOnlyCollator(tokenizer.pad_token_id or tokenizer.eos_token_id),
    )
    settings = {
        "bf16": False,
        "padding_free": False,
        "optim": optimizer_name(trainer.args),
        "attention": "sdpa",
        "batches": trainer.args.train_sampling_strategy,
        "gradient_checkpointing": False,
    }
    return trainer, settings


# Dense bf16 peak of the GPUs MFU is reported against (NVIDIA datasheets, SXM, no sparsity), TFLOP/s.
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}


def model_flops_per_token(model, mean_row_tokens: float) -> float:
    """Training FLOPs per token: 6N for the weights (the tied LM head included) + 12·layers·width·length
    for attention (PaLM's appendix B formula)."""
    config = model.config
    weights = sum(parameter.numel() for parameter in model.parameters())
    return 6 * weights + 12 * config.num_hidden_layers * config.hidden_size * mean_row_tokens


def mfu(model, tokens_per_second: float, mean_row_tokens: float) -> dict:
    name = torch.cuda.get_device_name()
    peak = next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
    achieved = model_flops_per_token(model, mean_row_tokens) * tokens_per_second / 1e12
    return {
        "gpu": name,
        "achieved_tflops": round(achieved, 2),
        "peak_bf16_tflops": peak,
        "mfu": round(achieved / peak, 4) if peak else None,
    }


def measure(args: ThroughputArguments, build, model_path: str, dataset) -> dict:
    with tempfile.TemporaryDirectory() as scratch, PeakRSS() as rss:
        trainer, settings = build(args, model_path, dataset, scratch)
        counter = CountingCollator(trainer.data_collator)
        trainer.data_collator = counter
        timer = StepTimer(args.warmup_steps)
        trainer.add_callback(timer)
        trainer.train()
        losses = [entry["train_loss"] for entry in trainer.state.log_history if "train_loss" in entry]
    timed = counter.batches[args.warmup_steps : args.warmup_steps + args.steps]
    computed, real = sum(batch[0] for batch in timed), sum(batch[1] for batch in timed)
    gpu = mfu(trainer.model, real / timer.seconds, real / (args.steps * args.batch_size)) if _cuda() else {}
    return {
        **gpu,
        **settings,
        "seconds": round(timer.seconds, 2),
        "seconds_per_step": round(timer.seconds / args.steps, 3),
        "real_tokens": real,
        "real_tokens_per_second": round(real / timer.seconds, 1),
        "padding_fraction": round(1 - real / computed, 3),
        "peak_rss_mib": round(rss.peak / 2**20),
        "train_loss": round(losses[-1], 4) if losses else None,
    }


def main(args: ThroughputArguments) -> dict:
    import datasets

    model_path = resolve_student(args.student)
    rows = curate(args.task, "paper").rows  # the whole train set, as an epoch samples it
    needed = (args.warmup_steps + args.steps) * args.batch_size
    rows = rows * (needed // len(rows) + 1) if len(rows) < needed else rows
    dataset = datasets.Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hardware = detect_hardware(device)
    results = {
        "config": asdict(args),
        "machine": hardware.as_dict(),
        "fcot_precision": resolve_precision(args.precision, device).name,
    }
    for name, build in ((BASELINE, run_plain), (FCOT, run_fcot)):
        results[name] = measure(args, build, model_path, dataset)
        print(f"{name}: {results[name]['real_tokens_per_second']} real tokens/s", flush=True)
    speed = {name: results[name]["real_tokens_per_second"] for name in (BASELINE, FCOT)}
    results["speedup"] = round(speed[FCOT] / speed[BASELINE], 2)
    print(f"speedup (b/a): {results['speedup']}x on {hardware.describe()}")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    result_file(output, ".json").write_text(json.dumps(results, indent=2) + "\n")
    columns = (
        "bf16",
        "batches",
        "padding_free",
        "attention",
        "optim",
        "gradient_checkpointing",
        "seconds_per_step",
        "real_tokens_per_second",
        "padding_fraction",
        "peak_rss_mib",
        "train_loss",
    )
    lines = ["| path | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(str(results[name][c]) for c in columns) + " |" for name in (BASELINE, FCOT)]
    result_file(output, ".md").write_text(
        f"# SFT throughput: {args.task}, {args.student}, {args.batch_size} rows per step\n\n"
        f"Machine: {hardware.describe()}; torch {torch.__version__}.\n"
        f"{args.steps} timed steps after {args.warmup_steps} warm-up steps; same curated rows and seed; each path "
        f"draws its batches its own way (the batches column).\n\n"
        + "\n".join(lines)
        + f"\n\n**Speedup (b/a): {results['speedup']}x**\n"
    )
    return results


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("sft_throughput.py", ThroughputArguments, main, sys.argv[1:])
