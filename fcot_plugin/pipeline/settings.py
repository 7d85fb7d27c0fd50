"""Typed settings of the fcot commands, parsed by ``HfArgumentParser``: each one declared once, here.

A ``fcot distill`` setting is a dataclass field made by :func:`setting`: its default, its help, and what it feeds
(:class:`Feeds`): the pipeline stages whose result it changes, and whether the untrained student's baselines
depend on it. Stage fingerprints (:mod:`fcot_plugin.pipeline.run_folder`), the run's ``train.yaml`` and the
benchmarks read these declarations; nothing else lists them. Free of TRL, torch and transformers at import, so
``fcot <command> --help`` answers at once.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from fcot_plugin.core.command_line import FCOT_METADATA
from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.numbers import COUNT, FCOT_RANGE, NON_NEGATIVE, POSITIVE, SEED, Range, check_ranges
from fcot_plugin.tasks.formats import PAPER_SOURCE, check_format, check_paper_rationales
from fcot_plugin.tasks.registry import TASKS, check_task, resolve_task
from fcot_plugin.teacher.spec import TeacherSpec
from fcot_plugin.training.defaults import PAPER_RECIPE

#: Rows lm-eval decodes at once (``--batch_size``). Under ``hf-regroup``'s continuous batching this caps the live
#: rows; a decode step costs a fixed part plus a part per row, so wider means fewer steps
#: (benchmarks/results/design_measurements.md).
EVAL_BATCH_SIZE = 256

#: ``--eval_engine``'s choices, the default first: ``hf-regroup`` (lm-eval's ``hf`` regrouping unfinished answers,
#: :mod:`fcot_plugin.harness.hf_regroup`), ``hf`` (lm-eval's own ``hf``), ``vllm`` (one vLLM server for the run)
EVAL_ENGINES = ("hf-regroup", "hf", "vllm")

VLLM_SERVER_ARGS_HELP = (
    "more arguments for the vLLM servers fcot starts (--teacher_engine vllm, --eval_engine vllm), as one string, "
    "e.g. '--gpu-memory-utilization 0.3' to leave GPU memory to training or to other servers"
)


def split_server_args(text: str | None) -> list[str]:
    """``--vllm_server_args`` as the server's argument list (shell quoting), or one line saying what is wrong."""
    import shlex

    if not text:
        return []
    try:
        return shlex.split(text)
    except ValueError as error:
        raise FcotError(f"--vllm_server_args {text!r} cannot be split ({error}); quote it as a shell would") from None


#: The pipeline's stages, in order, and ``baselines``: the untrained student's scores, kept across retraining.
STAGES = ("teacher", "curate", "train", "evaluate", "report", "push")
BASELINES = "baselines"


@dataclass(frozen=True)
class Feeds:
    """What a setting's value changes: a stage whose result depends on it runs again when it changes.

    ``stages``: every stage that reads it (later stages follow through their inputs). ``when``: stages that read
    it only while another setting is truthy (training reads the generation budget only to choose an epoch).
    ``baselines``: the untrained student's scores depend on it.
    An empty ``Feeds()`` is an operational setting: where and how a stage runs, never what it produces.
    """

    stages: tuple[str, ...] = ()
    when: tuple[tuple[str, str], ...] = ()
    baselines: bool = False
    #: the key of this setting in the run's train.yaml (the SFT recipe's name for it), if training reads it
    recipe_key: str | None = None


def setting(
    default: Any = MISSING, *, help: str, feeds: Feeds | None = None, range: Range | None = None, **kwargs: Any
) -> Any:  # noqa: A002
    """A dataclass field with its help, what it feeds and its range; ``HfArgumentParser`` sees only the help."""
    metadata: dict[str, Any] = {"help": help}
    if feeds is not None:
        metadata[FCOT_METADATA] = feeds
    if range is not None:
        metadata[FCOT_RANGE] = range
    return field(default=default, metadata=metadata, **kwargs)


def feeds_of(dataclass_type: type) -> dict[str, Feeds]:
    """Every field of ``dataclass_type`` with what it feeds (a field declared without it is a bug: KeyError)."""
    return {item.name: item.metadata[FCOT_METADATA] for item in fields(dataclass_type)}


def default_validation_size(epochs: float) -> float:
    """Held out when --validation_size is not given: with one epoch there is nothing to choose between."""
    return 0.1 if epochs > 1 else 0.0


def uses_paper_teacher(settings: dict[str, Any]) -> bool:
    """Whether recorded settings (config.json, a stage record) name the paper's released rationales."""
    return settings.get("teacher") == PAPER_SOURCE and not settings.get("teacher_engine")


def check_engine_teacher(teacher: str, engine: str) -> None:
    """With --teacher_engine, --teacher names the model to serve: a folder or Hub id, not lm-eval model args."""
    from fcot_plugin.serving.served import ENGINES

    if engine not in ENGINES:
        raise FcotError(f"unknown --teacher_engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if teacher == PAPER_SOURCE or "=" in teacher or teacher.lstrip().startswith("{"):
        raise FcotError(
            f"--teacher_engine {engine} serves the model --teacher names, so --teacher is a model folder or Hub id "
            f"(llamacpp: a GGUF file; e.g. --teacher HuggingFaceTB/SmolLM2-135M-Instruct), got {teacher!r}"
        )


def check_mixed_teachers(task: str, paper_teacher: bool, dataset_format: str) -> None:
    """--add_paper_rationales mixes the paper's rationales into a live teacher's: one line where there is nothing to
    mix (the teacher is the paper's already, the task has no released rationales, the student trains on answers)."""
    if paper_teacher:
        raise FcotError(
            "--add_paper_rationales adds the paper's rationales to a live teacher's, but --teacher is "
            "'paper' already; pass a --teacher model or drop --add_paper_rationales"
        )
    if dataset_format != "fcot":
        raise FcotError(
            f"--add_paper_rationales mixes rationales, and --dataset_format {dataset_format} trains on answers "
            "only; drop one of them"
        )
    try:
        check_paper_rationales(task)
    except FcotError:
        raise FcotError(
            f"--add_paper_rationales: the paper released no rationales for {task!r}; drop the flag for this task"
        ) from None


def check_hub_ids(push_to_hub: bool, needed: str | None = None, example: str = "", **repo_ids: str | None) -> None:
    """``--hub_model_id`` / ``--hub_dataset_id`` name where ``--push_to_hub`` pushes, as in TRL and transformers:
    one line for a push without the ``needed`` id, or an id given while nothing is pushed."""
    if push_to_hub and needed and not repo_ids[needed]:
        raise FcotError(f"--push_to_hub needs --{needed}, the repo to push to (e.g. --{needed} {example})")
    given = [f"--{name}" for name, value in repo_ids.items() if value]
    if given and not push_to_hub:
        names = f"{' and '.join(given)} name" if len(given) > 1 else f"{given[0]} names"
        raise FcotError(f"{names} where to push, but --push_to_hub is off; add --push_to_hub")


def check_train_sampling(strategy: str) -> None:
    """One line naming transformers' own choices (the default first), before any stage runs."""
    from transformers import TrainingArguments

    offered = TrainingArguments.__dataclass_fields__["train_sampling_strategy"].metadata["choices"]
    if strategy not in offered:
        default = PAPER_RECIPE.train_sampling_strategy
        choices = [default, *(choice for choice in offered if choice != default)]
        raise FcotError(f"unknown train_sampling_strategy {strategy!r}; choose one of: {', '.join(choices)}")


@dataclass
class CurateArguments:
    """``fcot curate``: teacher samples → a prompt/completion dataset with a card."""

    task: str = field(metadata={"help": f"fcot task key: {', '.join(TASKS)}; or a task folder (fcot task --out DIR)"})
    samples: str = field(
        metadata={
            "help": "lm-eval output folder or samples_fcot_<task>_teacher*.jsonl file, or 'paper' for the "
            "paper's released text-davinci-002 rationales (9 tasks)"
        }
    )
    out: str = field(metadata={"help": "folder to write the dataset to (datasets.save_to_disk format + README.md)"})
    dataset_format: str = field(
        default="fcot", metadata={"help": "fcot (rationale --> answer) or vanilla (answer only)"}
    )
    deduplicate: bool = field(default=True, metadata={"help": "keep identical rationales of a question once"})
    decontaminate: bool = field(
        default=True,
        metadata={
            "help": "drop train questions the test split asks too; false reproduces the paper's training sets "
            "exactly (MultiArith's has 5 such questions, StrategyQA's 1)"
        },
    )
    all_completions: bool = field(
        default=False, metadata={"help": "paper source only: also use the extra sampled completions of 8 questions"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace --out if it exists"})
    push_to_hub: bool = field(default=False, metadata={"help": "also push the dataset to --hub_dataset_id"})
    hub_dataset_id: str | None = field(default=None, metadata={"help": "the Hub dataset repo to push to (org/name)"})
    private: bool = field(default=False, metadata={"help": "create the Hub repo as private"})

    def __post_init__(self) -> None:
        self.task = resolve_task(self.task)  # one of the 12, or a task folder of your own (fcot task --out DIR)
        check_format(self.dataset_format)
        check_hub_ids(
            self.push_to_hub, "hub_dataset_id", f"my-org/{self.task}-fcot", hub_dataset_id=self.hub_dataset_id
        )


@dataclass(kw_only=True)
class ScoringArguments:
    """What scores a student, for ``fcot distill`` and ``fcot evaluate`` alike: declared and checked here once."""

    eval_engine: str = setting(
        EVAL_ENGINES[0],
        help="what scores the student: hf-regroup (lm-eval's hf model keeping its batch full of unfinished "
        "answers, in this process; the faster one on a CPU), hf (lm-eval's own hf model, in this process) or vllm "
        "(a vLLM server from the venv `make vllm` builds, started and stopped by fcot; decoder-only, full-weight "
        "students; fcot distill scores the student, its baselines and every epoch checkpoint validation compares "
        "through one server, swapping each checkpoint's weights in)",
        feeds=Feeds(stages=("evaluate",), baselines=True),
    )
    vllm_server_args: str | None = setting(None, help=VLLM_SERVER_ARGS_HELP, feeds=Feeds())

    def __post_init__(self) -> None:
        if self.eval_engine not in EVAL_ENGINES:
            raise FcotError(f"unknown --eval_engine {self.eval_engine!r}; choose one of: {', '.join(EVAL_ENGINES)}")
        split_server_args(self.vllm_server_args)


@dataclass
class EvaluateArguments(ScoringArguments):
    """``fcot evaluate``: score a student with its lm-eval task and write the result into its model card."""

    model: str = field(metadata={"help": "local student folder or Hub model id"})
    task: str = field(metadata={"help": f"fcot task key: {', '.join(TASKS)}; or a task folder (fcot task --out DIR)"})
    dataset_format: str = field(default="fcot", metadata={"help": "fcot (scored after -->) or vanilla"})
    limit: int | None = setting(None, help="score only the first N test questions", range=COUNT)
    batch_size: int = setting(EVAL_BATCH_SIZE, help="lm-eval batch size (rows decoded at once)", range=COUNT)
    max_gen_toks: int | None = setting(None, help="override the task's generation budget", range=COUNT)
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, cuda:0, ..."})
    precision: str = field(
        default="auto", metadata={"help": "auto (bf16 where the hardware has native bf16, else fp32), bf16 or fp32"}
    )
    output_path: str | None = field(default=None, metadata={"help": "where lm-eval writes results and samples"})
    push_to_hub: bool = field(default=False, metadata={"help": "update the card of the Hub model --model"})

    def __post_init__(self) -> None:
        from fcot_plugin.core.precision import normalise

        super().__post_init__()
        self.task = resolve_task(self.task)  # one of the 12, or a task folder of your own (fcot task --out DIR)
        check_format(self.dataset_format)
        check_ranges(self)
        self.precision = normalise(self.precision)


@dataclass
class ReportArguments:
    """``fcot report RUN_DIR``: a run folder's report.md, report.html and plots, written again from its records."""

    run_dir: str | None = field(
        default=None, metadata={"help": "the run folder of an fcot distill run (or give it as the first argument)"}
    )
    open: bool = field(default=False, metadata={"help": "open report.html in the web browser once it is written"})

    def __post_init__(self) -> None:
        if self.run_dir is None:
            raise FcotError("name the run folder: fcot report RUN_DIR (e.g. fcot report runs/coin_flip --open)")


TEACHER, STUDENT = ("teacher",), ("train", "evaluate")

# ---------------------------------------------------------------------- data of the user's own (--dataset)

#: what a dataset setting feeds: the task's questions, answers and rule, hence everything (absent: a shipped task)
OWN_DATA = ("teacher", "curate", "evaluate", "report")


def own_data_setting(default: Any, help: str, range: Range | None = None) -> Any:  # noqa: A002
    return setting(default, help=help, feeds=Feeds(stages=OWN_DATA, baselines=True), range=range)


@dataclass
class OwnDataArguments:
    """A dataset of the user's own as an fcot task (``fcot distill --dataset``, ``fcot task``)."""

    dataset: str | None = own_data_setting(
        None,
        "your own data instead of --task: a .jsonl/.json/.csv/.parquet file, a folder of <split>.jsonl files, a "
        "datasets.save_to_disk folder or a Hub dataset id",
    )
    answer_type: str | None = own_data_setting(
        None, "with --dataset: number, choice (letters A, B, ...), yes_no or text (normalised exact match)"
    )
    name: str | None = own_data_setting(
        None, "the task's name, fcot_<name> in lm-eval (default: the file stem or the dataset id's last part)"
    )
    question_field: str = own_data_setting("question", "the column holding the question")
    answer_field: str = own_data_setting("answer", "the column holding the gold answer")
    choices_field: str | None = own_data_setting(
        None, "choice: the column holding each row's options (a list), rendered 'Answer choices: (A) ..., (B) ...'"
    )
    dataset_config: str | None = own_data_setting(None, "Hub dataset: its configuration (subset) name")
    dataset_split: str = own_data_setting("train", "the split the train questions come from")
    test_split: str | None = own_data_setting(
        None, "the source's own test split (default: a seeded --test_size fraction of --dataset_split)"
    )
    test_size: float = own_data_setting(
        0.2, "without --test_split: the fraction of rows held out as the test split (0-1)", range=POSITIVE
    )
    test_seed: int = own_data_setting(0, "without --test_split: the seed of the held-out test rows", NON_NEGATIVE)

    def check_own_data(self, task: str | None) -> str | None:
        """``--task`` xor ``--dataset``; the task name (``--name`` or the source's) with --dataset."""
        from fcot_plugin.tasks.own_data import check_options

        if (task is None) == (self.dataset is None):
            raise FcotError(
                "pass either --task (one of fcot's 12 datasets) or --dataset (your own data), not both"
                if task
                else "pass --task (one of fcot's 12 datasets) or --dataset (your own data)"
            )
        if self.dataset is None:
            return task
        if self.answer_type is None:
            raise FcotError("--dataset needs --answer_type: number, choice, yes_no or text")
        return check_options(self)


@dataclass
class TaskArguments(OwnDataArguments):
    """``fcot task``: a dataset of the user's own as an lm-eval task folder, without distilling."""

    out: str | None = field(default=None, metadata={"help": "the folder to write (YAMLs, data, fcot_task.json)"})

    def __post_init__(self) -> None:
        if self.dataset is None:
            raise FcotError("--dataset is required: your data (a file, a folder or a Hub dataset id)")
        self.name = self.check_own_data(None)
        if self.out is None:
            raise FcotError("--out is required: the folder the task is written to (lm_eval --include_path DIR)")


@dataclass
class DistillArguments(OwnDataArguments, ScoringArguments):
    """``fcot distill``: the whole paper for one task, offline by default (paper teacher, embedded student)."""

    # ------------------------------------------------------------------ the task and the teacher
    task: str | None = setting(
        None,
        help=f"fcot task key: {', '.join(TASKS)} (or --dataset for your own data)",
        feeds=Feeds(stages=("teacher", "curate", "report"), baselines=True, recipe_key="task"),
    )
    teacher: str = setting(
        PAPER_SOURCE,
        help="'paper' (the released text-davinci-002 rationales) or lm-eval model args for the zscot teacher, e.g. "
        "'pretrained=Qwen/Qwen2.5-7B-Instruct' or 'base=vllm,pretrained=...'",
        feeds=Feeds(stages=("teacher", "report")),
    )
    teacher_engine: str | None = setting(
        None,
        help="serve --teacher for the run and generate through it: vllm (the venv `make vllm` builds), "
        "transformers (`transformers serve`) or llamacpp (llama.cpp's server on a GGUF file; `make teacher`). "
        "--teacher is then the model itself (a folder, Hub id or, for llamacpp, a .gguf file; "
        "Qwen/Qwen2.5-Coder-1.5B-Instruct and -0.5B- are embedded offline by `make teacher`); fcot starts the "
        "server on a free local port, logs it to <run_dir>/logs/, and stops it when the run ends or fails",
        feeds=Feeds(stages=("teacher", "report")),
    )
    diverse: int = setting(
        1,
        help="D: teacher rationales per question (diverse reasoning)",
        feeds=Feeds(stages=("teacher", "report")),
        range=COUNT,
    )
    teacher_temperature: float | None = setting(
        None,
        help="T for the teacher (default: 0.7 when diverse > 1, else greedy)",
        feeds=Feeds(stages=("teacher", "report")),
        range=NON_NEGATIVE,
    )
    teacher_max_gen_toks: int | None = setting(
        None,
        help="teacher rationale budget (task default 128; reasoning models need more)",
        feeds=Feeds(stages=("teacher",)),
        range=COUNT,
    )
    train_limit: int | None = setting(
        None,
        help="use only the first N train questions",
        feeds=Feeds(stages=("teacher", "curate")),
        range=COUNT,
    )
    add_paper_rationales: bool = setting(
        False,
        help="mixed teachers: curation also adds the paper's released text-davinci-002 rationale of each train "
        "question (the same questions: --train_limit and the validation slice apply) to the --teacher's samples, "
        "identical rationales of a question kept once. Needs a --teacher model and a task with released rationales",
        feeds=Feeds(stages=("curate", "report")),
    )
    # ------------------------------------------------------------------ curation and the student
    dataset_format: str = setting(
        "fcot",
        help="fcot (Fine-tune-CoT: rationale --> answer) or vanilla (answer-only fine-tuning, the paper's baseline; "
        "scored by fcot_<task>_vanilla)",
        feeds=Feeds(stages=("curate", "train", "evaluate", "report"), recipe_key="dataset_format"),
    )
    validation_size: float | None = setting(
        None,
        help="train questions held out of training to choose the epoch on: a fraction (0-1, at most 200 questions) "
        "or a count; 0 trains on all and keeps the last epoch. Default: 0.1 when --epochs > 1, else 0",
        feeds=Feeds(stages=("curate",)),
        range=NON_NEGATIVE,
    )
    validation_seed: int = setting(
        0, help="seed of the held-out validation sample", feeds=Feeds(stages=("curate",)), range=SEED
    )
    student: str = setting(
        "smollm2-135m",
        help="Hub id or local folder of a causal LM or an encoder-decoder LM (T5, Flan-T5); 'smollm2-135m' = the "
        "embedded offline default",
        feeds=Feeds(stages=(*STUDENT, "report"), baselines=True),
    )
    epochs: float = setting(
        1.0,
        help="student epochs (the paper trained 20)",
        feeds=Feeds(stages=("train",), recipe_key="num_train_epochs"),
        range=POSITIVE,
    )
    learning_rate: float = setting(
        PAPER_RECIPE.learning_rate,
        help="AdamW learning rate (paper: 3e-4)",
        feeds=Feeds(stages=("train",), recipe_key="learning_rate"),
        range=POSITIVE,
    )
    batch_size: int = setting(
        PAPER_RECIPE.per_device_train_batch_size,
        help="per-device batch size (paper: 8)",
        feeds=Feeds(stages=("train",), recipe_key="per_device_train_batch_size"),
        range=COUNT,
    )
    train_sampling_strategy: str = setting(
        PAPER_RECIPE.train_sampling_strategy,
        help="how training batches are drawn: group_by_length (rows of similar length together, less padding) or "
        "random (shuffled)",
        feeds=Feeds(stages=("train",), recipe_key="train_sampling_strategy"),
    )
    lora: bool = setting(
        False,
        help="train a LoRA adapter (TRL's use_peft: r=16, alpha=32, peft's default target modules) instead of full "
        "weights; it is evaluated with lm-eval's peft= and pushed with its base named",
        feeds=Feeds(stages=STUDENT),
    )
    precision: str = setting(
        "auto",
        help="auto (bf16 where the hardware has native bf16, else fp32), bf16 or fp32: training autocast and "
        "evaluation dtype. The run folder's config.json records the resolved choice",
        feeds=Feeds(stages=STUDENT, baselines=True, recipe_key="precision"),
    )
    seed: int = setting(42, help="training seed", feeds=Feeds(stages=("train",), recipe_key="seed"), range=SEED)
    # ------------------------------------------------------------------ evaluation
    eval_limit: int | None = setting(
        None,
        help="score only the first N test questions",
        feeds=Feeds(stages=("evaluate", "report"), baselines=True),
        range=COUNT,
    )
    max_gen_toks: int | None = setting(
        None,
        help="student generation budget (task default 256)",
        feeds=Feeds(stages=("evaluate",), when=(("train", "validation_size"),)),  # training scores epochs with it,
        range=COUNT,
    )
    baselines: bool = setting(
        True, help="also score the untrained student zero-shot / zscot", feeds=Feeds(stages=("evaluate",))
    )
    # ------------------------------------------------------------------ where and how it runs (operational)
    run_dir: str | None = setting(None, help="run folder (default: runs/<task>)", feeds=Feeds())
    eval_batch_size: int = setting(
        EVAL_BATCH_SIZE,
        help="lm-eval batch size (teacher and evaluations; rows at once)",
        feeds=Feeds(),
        range=COUNT,
    )
    device: str | None = setting(None, help="cpu or cuda (default: cuda when available)", feeds=Feeds())
    launcher: str = setting("python", help="python (one process) or accelerate", feeds=Feeds())
    accelerate_config: str = setting(
        "ds_configs/zero2.yaml", help="accelerate config for --launcher accelerate", feeds=Feeds()
    )
    num_processes: int | None = setting(None, help="processes for --launcher accelerate", feeds=Feeds(), range=COUNT)
    push_to_hub: bool = setting(
        False,
        help="push the student (with its card and results) to --hub_model_id, then its data to --hub_dataset_id",
        feeds=Feeds(stages=("push",)),
    )
    hub_model_id: str | None = setting(
        None, help="the student's Hub repo (org/name), for --push_to_hub", feeds=Feeds(stages=("push",))
    )
    hub_dataset_id: str | None = setting(
        None,
        help="the Hub dataset repo of its training data (default: <hub_model_id>-data), for --push_to_hub",
        feeds=Feeds(stages=("push",)),
    )
    restart: bool = setting(False, help="redo every stage instead of resuming", feeds=Feeds())

    def __post_init__(self) -> None:
        super().__post_init__()
        own_name = self.check_own_data(self.task)
        if self.dataset is not None:  # the run's task is the user's, named by --name (fcot_<name> in lm-eval)
            self.task = self.name = own_name
        if self.dataset is None:
            check_task(self.task)
        check_format(self.dataset_format)
        check_ranges(self)
        student_name = self.student.rstrip("/").rsplit("/", 1)[-1]
        check_hub_ids(
            self.push_to_hub,
            "hub_model_id",
            f"my-org/{student_name}-fcot-{self.task}",
            hub_model_id=self.hub_model_id,
            hub_dataset_id=self.hub_dataset_id,
        )
        self.teacher_spec = TeacherSpec.parse(self.teacher) if self.teacher_engine is None else None
        if self.teacher_engine is not None:
            check_engine_teacher(self.teacher, self.teacher_engine)
        if self.paper_teacher and self.dataset is not None:
            raise FcotError(
                "--dataset needs a --teacher model: the paper released rationales for its datasets only "
                "(e.g. --teacher pretrained=Qwen/Qwen2.5-7B-Instruct or --teacher_engine transformers)"
            )
        if self.paper_teacher and self.diverse > 1:
            raise FcotError("the paper's released rationales are greedy (D=1); --diverse needs a --teacher model")
        if self.paper_teacher:
            check_paper_rationales(self.task)
        if self.add_paper_rationales:
            check_mixed_teachers(self.task, self.paper_teacher, self.dataset_format)
        if self.teacher_temperature is None:
            self.teacher_temperature = 0.7 if self.diverse > 1 else 0.0
        check_train_sampling(self.train_sampling_strategy)
        if self.launcher not in ("python", "accelerate"):
            raise FcotError(f"launcher must be 'python' or 'accelerate', got {self.launcher!r}")
        if self.validation_size is None:  # resolved here, so config.json and the fingerprints hold the number
            self.validation_size = default_validation_size(self.epochs)
        self.validation_size = float(self.validation_size)
        if self.validation_size < 0 or (self.validation_size > 1 and not float(self.validation_size).is_integer()):
            raise FcotError(
                f"validation_size must be a fraction below 1 or a whole number of questions, got "
                f"{self.validation_size}; 0 disables epoch selection"
            )
        if self.train_limit is not None and self.validation_size >= max(1, self.train_limit):
            raise FcotError(
                f"validation_size {self.validation_size:g} holds out every one of the {self.train_limit} train "
                f"questions (--train_limit); pass a smaller --validation_size or a larger --train_limit"
            )
        if self.run_dir is None:
            self.run_dir = f"runs/{self.task}"
        if self.device is None:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        from fcot_plugin.core.precision import resolve_precision

        # Resolved here, so config.json says "bf16" or "fp32" and a run moved to other hardware is noticed.
        self.precision = resolve_precision(self.precision, self.device).name

    @property
    def paper_teacher(self) -> bool:
        """The paper's released rationales: no teacher runs."""
        return uses_paper_teacher(self.settings())

    def settings(self) -> dict[str, Any]:
        """Every setting by name, as config.json records it (the parsed teacher is derived, not recorded)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def recipe_overrides(self) -> dict[str, Any]:
        """The settings training reads, under the SFT recipe's names (``train.yaml``)."""
        overrides = {
            feeds.recipe_key: getattr(self, name)
            for name, feeds in feeds_of(DistillArguments).items()
            if feeds.recipe_key
        }
        return {**overrides, **({"use_peft": True} if self.lora else {})}
