"""Sizing a Fine-tune-CoT run before paying for it: teacher tokens and hours, student SFT hours, and the ZeRO stage.

    python benchmarks/plan.py --task gsm8k --teacher_params 70e9 --student_params 1.5e9 --gpus 8 --diverse 8 \\
        --teacher_tokens_per_second 3543 --mfu 0.25
    python benchmarks/plan.py --task all --diverse 1 8 64 --teacher_params 7e9     # the tables of docs/scaling.md

Arithmetic, not a measurement; every input is a flag, and docs/scaling.md says where each default comes from:

- **Teacher**: each of the D responses to each train question is two requests (Kojima's zero-shot-CoT): stage 1
  reads the prompt and writes the rationale, stage 2 reads prompt + rationale + answer trigger and writes the answer.
  Hours = generated tokens / (``--teacher_tokens_per_second`` x ``--teacher_servers``). The tokens per question are
  the mean lengths of :data:`TASK_TOKENS`, counted with the SmolLM2 tokenizer on the shipped train questions and the
  paper's released text-davinci-002 rationales (``--recount true`` counts them again).
- **Student**: curated rows = questions x D x kept fraction; FLOPs = 6 x parameters x trained tokens (every token of
  a row, prompt included, over ``--epochs``); hours = FLOPs / (GPUs x ``--gpu_peak_flops`` x ``--mfu``).
- **ZeRO stage**: mixed-precision AdamW holds 16 bytes per parameter (2 weights + 2 gradients + 12 fp32 master weights
  and moments); per GPU, ZeRO-2 keeps 2 + 14/N of them, ZeRO-3 16/N. The smallest stage whose model states fit in
  ``--memory_fraction`` of ``--gpu_memory_gb`` is chosen (the rest is left for activations and buffers).
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, field

from fcot_plugin.core.errors import FcotError

#: Published vLLM output throughputs (tokens/s) used when --teacher_tokens_per_second is not given: LambdaLabsML's
#: vLLM v0.6.0 benchmark (github.com/LambdaLabsML/vllm-benchmark, benchmark_v0.md), H100-80GB-SXM, 5,000 prompts at
#: an unlimited request rate, max-num-seqs 256, max-seq-len 2048, --num-scheduler-steps 10.
PUBLISHED_THROUGHPUT = {
    "8B": {
        "max_params": 10e9,
        "tokens_per_second": 8088.35,
        "gpus_per_server": 1,
        "setup": "Llama 3.1 8B, 1x H100-80GB-SXM (tp=1), vLLM v0.6.0",
    },
    "70B": {
        "min_params": 50e9,
        "max_params": 80e9,
        "tokens_per_second": 3542.88,
        "gpus_per_server": 4,
        "setup": "Llama 3.1 70B, 4x H100-80GB-SXM (tp=4), vLLM v0.6.0",
    },
}
#: NVIDIA's H100 SXM dense BF16 peak (the datasheet's 1,979 TFLOP/s is with sparsity)
H100_BF16_PEAK = 989e12
#: bytes per parameter of mixed-precision AdamW (ZeRO paper, Rajbhandari et al. 2020, section 3.1: 2 + 2 + 12)
BYTES_PER_PARAM = 16
#: the rationale cap of fcot's teacher tasks (max_gen_toks in task_configs/_templates/zscot_template_yaml)
RATIONALE_CAP = 128

# Mean tokens per question, SmolLM2 tokenizer (benchmarks/plan.py --recount true reproduces them):
#   questions: train questions the teacher answers (AQuA: the paper's 10,000-row sample of the 97,467-row train set);
#   prompt: the stage-1 prompt `Q: {question}\nA: Let's think step by step.`;
#   rationale, trigger, answer: the released greedy text-davinci-002 response to each train question, where the paper
#     released one (9 tasks); for GSM8K, AQuA and CommonsenseQA none is released, so the rationale is the 128-token
#     cap (an upper bound), the trigger fcot's default and the answer the mean of the other tasks;
#   kept: the share of those responses that are correct (what curation keeps); 1.0 where unknown (an upper bound);
#   row: the student's training row `{question} ###` + ` {rationale} --> {answer}` + EOS, over the kept responses.
#   AQuA's question lengths are read from its test split (its train split is rebuilt from the Hub, not shipped).
COLUMNS = ("questions", "prompt", "rationale", "trigger", "answer", "kept", "row")
# fmt: off
_COUNTED = {
    # task                       questions prompt rationale trigger answer kept    row
    "single_eq":                 (356,     51.9,  83.5,     6.0,    9.1,   0.812,  117.3),
    "addsub":                    (276,     54.7,  79.5,     6.0,    7.0,   0.757,  116.0),
    "multiarith":                (420,     52.7,  75.1,     10.0,   5.2,   0.769,  116.9),
    "gsm8k":                     (7473,    72.0,  128.0,    6.0,    6.5,   1.0,    198.5),
    "aqua":                      (10000,   105.8, 128.0,    6.0,    6.5,   1.0,    232.3),
    "svamp":                     (700,     53.2,  84.5,     6.0,    6.1,   0.64,   123.1),
    "date_understanding":        (258,     147.9, 67.6,     6.0,    6.5,   0.659,  202.5),
    "tracking_shuffled_objects": (525,     137.6, 98.6,     6.0,    2.9,   0.541,  226.1),
    "last_letter_concatenation": (350,     34.7,  67.5,     6.0,    4.4,   0.574,  93.0),
    "coin_flip":                 (350,     64.3,  81.0,     6.0,    7.0,   0.897,  133.3),
    "commonsense_qa":            (9741,    58.9,  128.0,    6.0,    6.5,   1.0,    185.4),
    "strategy_qa":               (1603,    24.6,  91.4,     6.0,    10.5,  0.534,  101.6),
}
# fmt: on
TASK_TOKENS: dict[str, dict[str, float]] = {
    task: dict(zip(COLUMNS, values, strict=True)) for task, values in _COUNTED.items()
}


@dataclass
class PlanArguments:
    task: str = field(default="all", metadata={"help": "an fcot task, or all (the 12)"})
    diverse: list[int] = field(
        default_factory=lambda: [1], metadata={"help": "D: teacher samples per question (several: one column each)"}
    )
    teacher_params: float = field(default=7e9, metadata={"help": "teacher parameters (picks the default throughput)"})
    teacher_tokens_per_second: float | None = field(
        default=None,
        metadata={
            "help": "generated tokens/s of one teacher server (default: a published vLLM figure, 8B or 70B teacher)"
        },
    )
    teacher_servers: int = field(
        default=1, metadata={"help": "teacher servers (or vLLM data-parallel replicas) sharing the work"}
    )
    teacher_gpus_per_server: int | None = field(
        default=None,
        metadata={"help": "GPUs per teacher server, for GPU-hours (default: that of the published figure)"},
    )
    student_params: list[float] = field(
        default_factory=lambda: [1.5e9], metadata={"help": "student parameters (several: one row each)"}
    )
    gpus: list[int] = field(default_factory=lambda: [8], metadata={"help": "training GPUs (several: one row each)"})
    epochs: float = field(default=20.0, metadata={"help": "training epochs (the paper's 20)"})
    keep_fraction: float | None = field(
        default=None,
        metadata={"help": "share of teacher responses kept (default: the released rationales' accuracy, else 1.0)"},
    )
    mfu: float = field(
        default=0.25,
        metadata={"help": "model FLOPs utilisation of training (an assumption: not measured for these students)"},
    )
    gpu_peak_flops: float = field(
        default=H100_BF16_PEAK, metadata={"help": "peak dense bf16 FLOP/s of one training GPU (H100 SXM: 989e12)"}
    )
    gpu_memory_gb: float = field(default=80.0, metadata={"help": "memory of one training GPU, GB"})
    memory_fraction: float = field(
        default=0.75, metadata={"help": "share of GPU memory for model states (the rest: activations, buffers)"}
    )
    recount: bool = field(
        default=False,
        metadata={
            "help": "count the token lengths again from the shipped data (needs the embedded student's tokenizer)"
        },
    )
    json: bool = field(default=False, metadata={"help": "print the plan as JSON instead of Markdown tables"})


def check(args: PlanArguments) -> None:
    """Every input in range, or one line naming the flag."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise FcotError(message)

    need(
        args.task == "all" or args.task in TASK_TOKENS,
        f"--task {args.task!r}: choose all or one of {', '.join(TASK_TOKENS)}",
    )
    need(all(1 <= d <= 1024 for d in args.diverse), f"--diverse must be between 1 and 1024, got {args.diverse}")
    need(
        1e6 <= args.teacher_params <= 1e13,
        f"--teacher_params must be between 1e6 and 1e13, got {args.teacher_params:g}",
    )
    need(
        all(1e6 <= n <= 1e12 for n in args.student_params),
        f"--student_params must be between 1e6 and 1e12, got {args.student_params}",
    )
    need(all(1 <= g <= 100_000 for g in args.gpus), f"--gpus must be between 1 and 100000, got {args.gpus}")
    need(
        args.teacher_tokens_per_second is None or 0 < args.teacher_tokens_per_second <= 1e8,
        f"--teacher_tokens_per_second must be above 0 and at most 1e8, got {args.teacher_tokens_per_second}",
    )
    need(args.teacher_servers >= 1, f"--teacher_servers must be >= 1, got {args.teacher_servers}")
    need(
        args.teacher_gpus_per_server is None or args.teacher_gpus_per_server >= 1,
        f"--teacher_gpus_per_server must be >= 1, got {args.teacher_gpus_per_server}",
    )
    need(0 < args.epochs <= 1000, f"--epochs must be above 0 and at most 1000, got {args.epochs}")
    need(
        args.keep_fraction is None or 0 < args.keep_fraction <= 1,
        f"--keep_fraction must be in (0, 1], got {args.keep_fraction}",
    )
    need(0 < args.mfu <= 1, f"--mfu must be in (0, 1] (a fraction, e.g. 0.25), got {args.mfu}")
    need(
        1e9 <= args.gpu_peak_flops <= 1e17,
        f"--gpu_peak_flops must be between 1e9 and 1e17, got {args.gpu_peak_flops:g}",
    )
    need(
        0 < args.gpu_memory_gb <= 10_000,
        f"--gpu_memory_gb must be above 0 and at most 10000, got {args.gpu_memory_gb}",
    )
    need(0 < args.memory_fraction <= 1, f"--memory_fraction must be in (0, 1], got {args.memory_fraction}")


def teacher_throughput(args: PlanArguments) -> tuple[float, int, str]:
    """(tokens/s of one server, GPUs per server, where the figure comes from)."""
    published = next(
        (
            figure
            for figure in PUBLISHED_THROUGHPUT.values()
            if figure.get("min_params", 0) <= args.teacher_params <= figure["max_params"]
        ),
        None,
    )
    gpus = args.teacher_gpus_per_server or (published["gpus_per_server"] if published else 1)
    if args.teacher_tokens_per_second is not None:
        return args.teacher_tokens_per_second, gpus, "--teacher_tokens_per_second"
    if published is None:
        raise FcotError(
            f"no published vLLM throughput for a {params_label(args.teacher_params)} teacher (only up to 10B and "
            f"50B-80B); measure one and pass --teacher_tokens_per_second"
        )
    return published["tokens_per_second"], gpus, f"published: {published['setup']}"


def params_label(params: float) -> str:
    """70e9 -> 70B, 1.5e9 -> 1.5B, 135e6 -> 135M."""
    return f"{params / 1e9:.3g}B" if params >= 1e9 else f"{params / 1e6:.3g}M"


def zero_stage(params: float, gpus: int, args: PlanArguments) -> tuple[str, float]:
    """The smallest ZeRO stage whose model states fit, and its GB per GPU (activations not counted)."""
    usable = args.gpu_memory_gb * args.memory_fraction
    zero2 = (2 + (BYTES_PER_PARAM - 2) / gpus) * params / 1e9
    zero3 = BYTES_PER_PARAM * params / gpus / 1e9
    if zero2 <= usable:
        return "ZeRO-2", zero2
    if zero3 <= usable:
        return "ZeRO-3", zero3
    return f"does not fit in {usable:g} GB (more GPUs, optimizer offload, or LoRA)", zero3


def plan(args: PlanArguments) -> dict:
    check(args)
    tokens_per_second, gpus_per_server, throughput_source = teacher_throughput(args)
    tasks = list(TASK_TOKENS) if args.task == "all" else [args.task]
    teacher, training = [], []
    for task in tasks:
        stats = TASK_TOKENS[task]
        generated = stats["rationale"] + stats["answer"]
        read = stats["prompt"] + (stats["prompt"] + stats["rationale"] + stats["trigger"])  # stage 1 + stage 2
        kept = args.keep_fraction if args.keep_fraction is not None else stats["kept"]
        for d in args.diverse:
            responses = stats["questions"] * d
            hours = responses * generated / (tokens_per_second * args.teacher_servers) / 3600
            teacher.append(
                {
                    "task": task,
                    "diverse": d,
                    "questions": int(stats["questions"]),
                    "responses": int(responses),
                    "prompt_tokens": responses * read,
                    "generated_tokens": responses * generated,
                    "hours": hours,
                    "gpu_hours": hours * args.teacher_servers * gpus_per_server,
                }
            )
            rows = responses * kept
            trained_tokens = rows * stats["row"] * args.epochs
            for params in args.student_params:
                for gpus in args.gpus:
                    stage, memory = zero_stage(params, gpus, args)
                    flops = 6 * params * trained_tokens
                    training.append(
                        {
                            "task": task,
                            "diverse": d,
                            "student_params": params,
                            "gpus": gpus,
                            "rows": rows,
                            "trained_tokens": trained_tokens,
                            "flops": flops,
                            "stage": stage,
                            "gb_per_gpu": memory,
                            "hours": flops / (gpus * args.gpu_peak_flops * args.mfu) / 3600,
                        }
                    )
    return {
        "teacher": {
            "params": args.teacher_params,
            "tokens_per_second": tokens_per_second,
            "servers": args.teacher_servers,
            "gpus_per_server": gpus_per_server,
            "source": throughput_source,
            "rows": teacher,
        },
        "training": {
            "epochs": args.epochs,
            "mfu": args.mfu,
            "gpu_peak_flops": args.gpu_peak_flops,
            "gpu_memory_gb": args.gpu_memory_gb,
            "memory_fraction": args.memory_fraction,
            "rows": training,
        },
    }


def _millions(value: float) -> str:
    return f"{value / 1e6:,.2f}M"


def _hours(value: float) -> str:
    if value < 0.01:
        return "<0.01"
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def markdown(result: dict, args: PlanArguments) -> str:
    teacher, training = result["teacher"], result["training"]
    servers = f"{teacher['servers']} server{'s' if teacher['servers'] > 1 else ''}"
    lines = [
        f"## Teacher: {params_label(teacher['params'])} parameters, "
        f"{teacher['tokens_per_second']:,.0f} generated tokens/s per server ({teacher['source']}), "
        f"{servers} of {teacher['gpus_per_server']} GPU(s)",
        "",
        "| task | questions | D | prompt tokens read | tokens generated | hours | GPU-hours |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in teacher["rows"]:
        lines.append(
            f"| {row['task']} | {row['questions']:,} | {row['diverse']} | {_millions(row['prompt_tokens'])} | "
            f"{_millions(row['generated_tokens'])} | {_hours(row['hours'])} | {_hours(row['gpu_hours'])} |"
        )
    if len(teacher["rows"]) > 1:
        for d in args.diverse:
            chosen = [row for row in teacher["rows"] if row["diverse"] == d]
            lines.append(
                f"| **all {len(chosen)} tasks** | {sum(r['questions'] for r in chosen):,} | {d} | "
                f"{_millions(sum(r['prompt_tokens'] for r in chosen))} | "
                f"{_millions(sum(r['generated_tokens'] for r in chosen))} | "
                f"{_hours(sum(r['hours'] for r in chosen))} | "
                f"{_hours(sum(r['gpu_hours'] for r in chosen))} |"
            )
    lines += [
        "",
        f"## Student SFT: {training['epochs']:g} epochs, MFU {training['mfu']:g} (assumed), "
        f"{training['gpu_peak_flops'] / 1e12:,.0f} TFLOP/s and {training['gpu_memory_gb']:g} GB per GPU",
        "",
        "| task | D | student | GPUs | rows | trained tokens | config | model states per GPU | hours |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in training["rows"]:
        lines.append(
            f"| {row['task']} | {row['diverse']} | {params_label(row['student_params'])} | {row['gpus']} | "
            f"{row['rows']:,.0f} | {_millions(row['trained_tokens'])} | {row['stage']} | {row['gb_per_gpu']:.1f} GB | "
            f"{_hours(row['hours']) if row['stage'].startswith('ZeRO') else '-'} |"
        )
    return "\n".join(lines)


def count_tokens() -> dict[str, dict[str, float]]:
    """:data:`TASK_TOKENS` counted again from the shipped questions and released rationales (SmolLM2 tokenizer)."""
    from transformers import AutoTokenizer

    from fcot_plugin.tasks import prompts
    from fcot_plugin.tasks.formats import PAPER_TEACHER
    from fcot_plugin.tasks.registry import data_dir, load_rows
    from fcot_plugin.training.students import EMBEDDED_STUDENT, resolve_student

    tokenizer = AutoTokenizer.from_pretrained(resolve_student(EMBEDDED_STUDENT))

    def length(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def mean(values) -> float:
        return round(statistics.mean(values), 1)

    def student_row(row: dict) -> int:  # the training row and its EOS
        text = prompts.student_prompt(row["question"]) + prompts.student_completion(row["rationale"], row["answer"])
        return length(text) + 1

    counted: dict[str, dict[str, float]] = {}
    for task in TASK_TOKENS:
        shipped = (data_dir() / task / "train.jsonl").is_file()
        questions = [row["question"] for row in load_rows(task, "train" if shipped else "test")]
        number = (
            len(questions)
            if shipped
            else len(json.loads((data_dir() / task / "split_default.json").read_text())["train"])
        )
        entry = {"questions": number, "prompt": mean(length(prompts.teacher_stage1(q)) for q in questions)}
        released = data_dir() / "teacher_rationales" / PAPER_TEACHER / f"{task}.jsonl"
        if released.is_file():
            rows = [json.loads(line) for line in released.read_text(encoding="utf-8").splitlines()]
            rows = [row for row in rows if row["split"] == "train" and row["completion_index"] == 0]
            entry.update(
                rationale=mean(length(r["rationale"]) for r in rows),
                trigger=mean(length(r["answer_trigger"]) for r in rows),
                answer=mean(length(r["answer_completion"]) for r in rows),
                kept=round(sum(bool(r["correct"]) for r in rows) / len(rows), 3),
                row=mean(student_row(r) for r in rows if r["correct"]),
            )
        counted[task] = entry
    answers = [entry["answer"] for entry in counted.values() if "answer" in entry]
    for entry in counted.values():
        if "rationale" not in entry:  # no released rationales: the cap, fcot's default trigger, the mean answer
            entry.update(
                rationale=float(RATIONALE_CAP),
                trigger=float(length(prompts.DEFAULT_ANSWER_TRIGGER)),
                answer=mean(answers),
                kept=1.0,
            )
            question = entry["prompt"] - length(prompts.teacher_stage1(""))
            entry["row"] = round(
                question
                + length(prompts.STUDENT_PROMPT_SUFFIX)
                + 1
                + RATIONALE_CAP
                + length(prompts.STUDENT_ANSWER_SEPARATOR)
                + entry["answer"]
                + 1,
                1,
            )
    return counted


def main(args: PlanArguments) -> dict:
    if args.recount:
        counted = count_tokens()
        for task, entry in counted.items():
            print(json.dumps({"task": task, **entry}))
        return counted
    result = plan(args)
    print(json.dumps(result, indent=1) if args.json else markdown(result, args))
    return result


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("plan.py", PlanArguments, main, sys.argv[1:])
