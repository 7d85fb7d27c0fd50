"""SFT throughput: fcot's recipe (TRL SFTTrainer) against a plain ``transformers.Trainer`` on the same data.

Both train the same student on the same curated rows (prompt + completion + EOS, loss on the completion)
with the same batch size, optimiser and precision; we time ``--steps`` optimiser steps after
``--warmup_steps`` and count real (non-padding) tokens. Results go to benchmarks/results/sft_throughput.{json,md}.

    python benchmarks/sft_throughput.py --task multiarith --student smollm2-135m --steps 10
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from fcot_plugin.curate import curate
from fcot_plugin.students import resolve_student

RESULTS = Path(__file__).parent / "results"


@dataclass
class ThroughputArguments:
    task: str = field(default="multiarith", metadata={"help": "task whose paper rationales are the data"})
    student: str = field(default="smollm2-135m", metadata={"help": "student id/folder; smollm2-135m = embedded"})
    steps: int = field(default=10, metadata={"help": "timed optimiser steps"})
    warmup_steps: int = field(default=2, metadata={"help": "untimed steps first"})
    batch_size: int = field(default=8, metadata={"help": "per-device batch size (paper: 8)"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast"})
    output: str = field(default=str(RESULTS / "sft_throughput"), metadata={"help": "results path without suffix"})


class StepTimer(TrainerCallback):
    """Wall time of the optimiser steps after the warm-up ones."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps, self.started, self.seconds = warmup_steps, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup_steps:
            self.started = time.perf_counter()
        if state.global_step == state.max_steps:
            self.seconds = time.perf_counter() - self.started


def mean_real_tokens(tokenizer, rows: list[dict]) -> float:
    """Mean non-padding tokens of a row (prompt + completion + EOS): both trainers shuffle the same rows with
    the same seed, so timed steps x batch x this mean is the real tokens they process."""
    return sum(len(tokenizer(row["prompt"] + row["completion"])["input_ids"]) + 1 for row in rows) / len(rows)


def training_args(args: ThroughputArguments, out: str) -> dict:
    return {
        "output_dir": out,
        "max_steps": args.warmup_steps + args.steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": 3e-4,
        "optim": "adamw_torch",
        "bf16": args.bf16,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1000,
        "seed": 0,
        "dataloader_drop_last": True,
    }


def run_fcot(args: ThroughputArguments, model_path: str, dataset, out: str) -> float:
    from fcot_plugin.sft_config import FcotSFTConfig
    from fcot_plugin.train import make_trainer_class

    timer = StepTimer(args.warmup_steps)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    config = FcotSFTConfig(**training_args(args, out))
    trainer = make_trainer_class()(model=model_path, args=config, train_dataset=dataset, processing_class=tokenizer,
                                   callbacks=[timer])  # fmt: skip
    trainer.train()
    return timer.seconds


class CompletionOnlyCollator:
    """Pad prompt+completion ids and mask the prompt and the padding out of the labels."""

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


def run_plain(args: ThroughputArguments, model_path: str, dataset, out: str) -> float:
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def tokenize(row):
        prompt = tokenizer(row["prompt"])["input_ids"]
        completion = tokenizer(row["completion"])["input_ids"] + [tokenizer.eos_token_id]
        return {"input_ids": prompt + completion, "prompt_length": len(prompt)}

    tokenized = dataset.map(tokenize, remove_columns=dataset.column_names)
    timer = StepTimer(args.warmup_steps)
    trainer = Trainer(
        model=AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
        args=TrainingArguments(**training_args(args, out), remove_unused_columns=False),
        train_dataset=tokenized,
        data_collator=CompletionOnlyCollator(tokenizer.pad_token_id),
        callbacks=[timer],
    )
    trainer.train()
    return timer.seconds


def main(args: ThroughputArguments) -> dict:
    import tempfile

    import datasets

    model_path = resolve_student(args.student)
    rows = curate(args.task, "paper").rows
    needed = (args.warmup_steps + args.steps) * args.batch_size
    rows = (rows * (needed // len(rows) + 1))[:needed]
    dataset = datasets.Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokens = round(mean_real_tokens(tokenizer, rows) * args.steps * args.batch_size)
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    results = {"config": asdict(args), "machine": machine, "timed_real_tokens": tokens}
    with tempfile.TemporaryDirectory() as scratch:
        for name, runner in (("fcot (TRL SFTTrainer)", run_fcot), ("plain transformers.Trainer", run_plain)):
            seconds = runner(args, model_path, dataset, scratch)
            results[name] = {"seconds": round(seconds, 2), "real_tokens_per_second": round(tokens / seconds, 1)}
            print(f"{name}: {tokens / seconds:.1f} real tokens/s ({seconds:.1f} s for {args.steps} steps)")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| trainer | seconds | real tokens/s |", "|---|---:|---:|"]
    lines += [f"| {name} | {results[name]['seconds']} | {results[name]['real_tokens_per_second']} |"
              for name in ("fcot (TRL SFTTrainer)", "plain transformers.Trainer")]  # fmt: skip
    output.with_suffix(".md").write_text(
        f"# SFT throughput: {args.task}, {args.student}, batch {args.batch_size}, bf16={args.bf16}\n\n"
        f"{results['machine']}; {args.steps} timed steps after {args.warmup_steps} warm-up steps, "
        f"{tokens} real tokens.\n\n" + "\n".join(lines) + "\n"
    )
    return results


if __name__ == "__main__":
    main(*HfArgumentParser(ThroughputArguments).parse_args_into_dataclasses())
