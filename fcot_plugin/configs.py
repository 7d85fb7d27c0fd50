"""Typed configs of the fcot commands, parsed by ``HfArgumentParser``.

Free of TRL, torch and transformers at import, so ``fcot <command> --help`` answers at once; what a config needs
from them is imported inside ``__post_init__``. The SFT recipe's configs are in :mod:`fcot_plugin.sft_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fcot_plugin.formats import FORMATS, check_paper_rationales
from fcot_plugin.tasks import TASKS

#: How the student's training batches are drawn: rows of similar length together (transformers'
#: ``LengthGroupedSampler``), so little padding is computed; QLoRA's recipes train the same way. Run folders
#: record it in their train.yaml, tables trained otherwise say so.
TRAIN_SAMPLING_STRATEGY = "group_by_length"

#: Rows lm-eval decodes at once (``--batch_size``). Under ``hf-regroup``'s continuous batching this caps the live
#: rows; a decode step costs a fixed part plus a part per row, so wider means fewer steps: MultiArith's 180 test
#: answers took 65 s at 64, 52 s at 128 and 46 s at 256 on a 2-core CPU (README, *Precision and speed*).
EVAL_BATCH_SIZE = 256


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown fcot task {task!r}; choose one of: {', '.join(TASKS)}")


def _check_train_sampling(strategy: str) -> None:
    """One line naming transformers' own choices (the default first), before any stage runs."""
    from transformers import TrainingArguments

    offered = TrainingArguments.__dataclass_fields__["train_sampling_strategy"].metadata["choices"]
    if strategy not in offered:
        choices = [TRAIN_SAMPLING_STRATEGY, *(choice for choice in offered if choice != TRAIN_SAMPLING_STRATEGY)]
        raise ValueError(f"unknown train_sampling_strategy {strategy!r}; choose one of: {', '.join(choices)}")


def _check_format(dataset_format: str) -> None:
    if dataset_format not in FORMATS:
        raise ValueError(f"unknown dataset format {dataset_format!r}; choose one of: {', '.join(FORMATS)}")


@dataclass
class CurateArguments:
    """``fcot curate``: teacher samples → a prompt/completion dataset with a card."""

    task: str = field(metadata={"help": f"fcot task key: {', '.join(TASKS)}"})
    samples: str = field(
        metadata={"help": "lm-eval output folder or samples_fcot_<task>_teacher*.jsonl file, or 'paper' for the "
                  "paper's released text-davinci-002 rationales (9 tasks)"}
    )  # fmt: skip
    out: str = field(metadata={"help": "folder to write the dataset to (datasets.save_to_disk format + README.md)"})
    format: str = field(default="fcot", metadata={"help": "fcot (rationale --> answer) or vanilla (answer only)"})
    deduplicate: bool = field(default=True, metadata={"help": "keep identical rationales of a question once"})
    all_completions: bool = field(
        default=False, metadata={"help": "paper source only: also use the extra sampled completions of 8 questions"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace --out if it exists"})
    push_to_hub: str | None = field(default=None, metadata={"help": "also push to this Hub dataset repo (org/name)"})
    private: bool = field(default=False, metadata={"help": "create the Hub repo as private"})

    def __post_init__(self) -> None:
        _check_task(self.task)
        _check_format(self.format)


@dataclass
class EvaluateArguments:
    """``fcot evaluate``: score a student with its lm-eval task and write the result into its model card."""

    model: str = field(metadata={"help": "local student folder or Hub model id"})
    task: str = field(metadata={"help": f"fcot task key: {', '.join(TASKS)}"})
    dataset_format: str = field(default="fcot", metadata={"help": "fcot (scored after -->) or vanilla"})
    limit: int | None = field(default=None, metadata={"help": "score only the first N test questions"})
    batch_size: int = field(default=EVAL_BATCH_SIZE, metadata={"help": "lm-eval batch size (rows decoded at once)"})
    max_gen_toks: int | None = field(default=None, metadata={"help": "override the task's generation budget"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, cuda:0, ..."})
    precision: str = field(
        default="auto", metadata={"help": "auto (bf16 where the hardware has native bf16, else fp32), bf16 or fp32"}
    )
    output_path: str | None = field(default=None, metadata={"help": "where lm-eval writes results and samples"})
    push_to_hub: bool = field(default=False, metadata={"help": "update the card of the Hub model --model"})

    def __post_init__(self) -> None:
        from fcot_plugin.precision import normalise

        _check_task(self.task)
        _check_format(self.dataset_format)
        self.precision = normalise(self.precision)


def default_validation_size(epochs: float) -> float:
    """Held out when --validation_size is not given: with one epoch there is nothing to choose between."""
    return 0.1 if epochs > 1 else 0.0


@dataclass
class DistillArguments:
    """``fcot distill``: the whole paper for one task, offline by default (paper teacher, embedded student)."""

    task: str = field(metadata={"help": f"fcot task key: {', '.join(TASKS)}"})
    teacher: str = field(
        default="paper",
        metadata={"help": "'paper' (the released text-davinci-002 rationales) or lm-eval model args for the zscot "
                  "teacher, e.g. 'pretrained=Qwen/Qwen2.5-7B-Instruct' or 'base=vllm,pretrained=...'"},
    )  # fmt: skip
    student: str = field(
        default="smollm2-135m",
        metadata={"help": "Hub id or local folder of a causal LM or an encoder-decoder LM (T5, Flan-T5); "
                  "'smollm2-135m' = the embedded offline default"},
    )  # fmt: skip
    run_dir: str | None = field(default=None, metadata={"help": "run folder (default: runs/<task>)"})
    diverse: int = field(default=1, metadata={"help": "D: teacher rationales per question (diverse reasoning)"})
    teacher_temperature: float | None = field(
        default=None, metadata={"help": "T for the teacher (default: 0.7 when diverse > 1, else greedy)"}
    )
    teacher_max_gen_toks: int | None = field(
        default=None, metadata={"help": "teacher rationale budget (task default 128; reasoning models need more)"}
    )
    format: str = field(
        default="fcot",
        metadata={"help": "fcot (Fine-tune-CoT: rationale --> answer) or vanilla (answer-only fine-tuning, the "
                  "paper's baseline; scored by fcot_<task>_vanilla)"},
    )  # fmt: skip
    epochs: float = field(default=1.0, metadata={"help": "student epochs (the paper trained 20)"})
    validation_size: float | None = field(
        default=None,
        metadata={"help": "train questions held out of training to choose the epoch on: a fraction (0-1, at most "
                  "200 questions) or a count; 0 trains on all and keeps the last epoch. Default: 0.1 when "
                  "--epochs > 1, else 0"},
    )  # fmt: skip
    validation_seed: int = field(default=0, metadata={"help": "seed of the held-out validation sample"})
    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW learning rate (paper: 3e-4)"})
    batch_size: int = field(default=8, metadata={"help": "per-device batch size (paper: 8)"})
    train_sampling_strategy: str = field(
        default=TRAIN_SAMPLING_STRATEGY,
        metadata={"help": "how training batches are drawn: group_by_length (rows of similar length together, less "
                  "padding) or random (shuffled, as fcot trained before length grouping)"},
    )  # fmt: skip
    lora: bool = field(
        default=False,
        metadata={"help": "train a LoRA adapter (TRL's use_peft: r=16, alpha=32, peft's default target modules) "
                  "instead of full weights; it is evaluated with lm-eval's peft= and pushed with its base named"},
    )  # fmt: skip
    precision: str = field(
        default="auto",
        metadata={"help": "auto (bf16 where the hardware has native bf16, else fp32), bf16 or fp32: training "
                  "autocast and evaluation dtype. The run folder's config.json records the resolved choice"},
    )  # fmt: skip
    seed: int = field(default=42, metadata={"help": "training seed"})
    train_limit: int | None = field(default=None, metadata={"help": "use only the first N train questions"})
    eval_limit: int | None = field(default=None, metadata={"help": "score only the first N test questions"})
    eval_batch_size: int = field(
        default=EVAL_BATCH_SIZE, metadata={"help": "lm-eval batch size (teacher and evaluations; rows at once)"}
    )
    max_gen_toks: int | None = field(default=None, metadata={"help": "student generation budget (task default 256)"})
    baselines: bool = field(default=True, metadata={"help": "also score the untrained student zero-shot / zscot"})
    device: str | None = field(default=None, metadata={"help": "cpu or cuda (default: cuda when available)"})
    launcher: str = field(default="python", metadata={"help": "python (one process) or accelerate"})
    accelerate_config: str = field(
        default="ds_configs/zero2.yaml", metadata={"help": "accelerate config for --launcher accelerate"}
    )
    num_processes: int | None = field(default=None, metadata={"help": "processes for --launcher accelerate"})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub organisation/user to push data + student to"})
    restart: bool = field(default=False, metadata={"help": "redo every stage instead of resuming"})

    def __post_init__(self) -> None:
        _check_task(self.task)
        _check_format(self.format)
        if self.diverse < 1:
            raise ValueError(f"diverse must be >= 1, got {self.diverse}")
        if self.teacher == "paper" and self.diverse > 1:
            raise ValueError("the paper's released rationales are greedy (D=1); --diverse needs a --teacher model")
        if self.teacher == "paper":
            check_paper_rationales(self.task)
        if self.teacher_temperature is None:
            self.teacher_temperature = 0.7 if self.diverse > 1 else 0.0
        _check_train_sampling(self.train_sampling_strategy)
        if self.launcher not in ("python", "accelerate"):
            raise ValueError(f"launcher must be 'python' or 'accelerate', got {self.launcher!r}")
        if self.validation_size is None:  # resolved here, so config.json and the fingerprints hold the number
            self.validation_size = default_validation_size(self.epochs)
        self.validation_size = float(self.validation_size)
        if self.validation_size < 0 or (self.validation_size > 1 and not float(self.validation_size).is_integer()):
            raise ValueError(
                f"validation_size must be a fraction below 1 or a whole number of questions, got "
                f"{self.validation_size}; 0 disables epoch selection"
            )
        if self.train_limit is not None and self.validation_size >= max(1, self.train_limit):
            raise ValueError(
                f"validation_size {self.validation_size:g} holds out every one of the {self.train_limit} train "
                f"questions (--train_limit); pass a smaller --validation_size or a larger --train_limit"
            )
        if self.run_dir is None:
            self.run_dir = f"runs/{self.task}"
        if self.device is None:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        from fcot_plugin.precision import resolve_precision

        # Resolved here, so config.json says "bf16" or "fp32" and a run moved to other hardware is noticed.
        self.precision = resolve_precision(self.precision, self.device).name
