"""Typed configs of the SFT recipe (``recipes/sft.py``, ``fcot distill``'s training stage), parsed by ``TrlParser``.

They subclass TRL's and only add (or re-default) what Fine-tune-CoT needs, so every TRL option keeps working in
the recipe YAMLs. The paper's numbers come from :data:`~fcot_plugin.training.defaults.PAPER_RECIPE`, which
``fcot distill`` shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import ScriptArguments, SFTConfig

from fcot_plugin.core.numbers import COUNT, FCOT_RANGE, POSITIVE, SEED, check_ranges
from fcot_plugin.tasks.formats import check_format
from fcot_plugin.tasks.registry import resolve_task
from fcot_plugin.training.defaults import PAPER_RECIPE


class TokenFreePickle:
    """Pickles of a trainer config (``training_args.bin``, pushed with the model) never hold the Hub token."""

    def __getstate__(self) -> dict:
        return {**self.__dict__, "hub_token": None}


@dataclass
class FcotScriptArguments(ScriptArguments):
    """TRL's script arguments plus the Fine-tune-CoT task the student is trained for.

    ``dataset_name`` is a folder written by ``fcot curate`` or a Hub dataset id.
    """

    task: str | None = field(
        default=None,
        metadata={
            "help": "fcot task key, for the model card and evaluation, or a task folder of your own data "
            "(fcot task --out DIR)"
        },
    )
    dataset_format: str = field(default="fcot", metadata={"help": "fcot or vanilla: how the student is scored"})
    merge_adapter: bool = field(
        default=False,
        metadata={
            "help": "LoRA (use_peft) only: also save the base model with the adapter merged in, to "
            "<output_dir>/merged (the adapter stays in output_dir)"
        },
    )

    def __post_init__(self) -> None:
        self.task = resolve_task(self.task)  # a task folder of the user's own becomes its key
        check_format(self.dataset_format)


@dataclass
class FcotSFTConfig(TokenFreePickle, SFTConfig):
    """TRL's SFTConfig with the paper's defaults for open-source students.

    AdamW, learning rate 3e-4, batch size 8, 20 epochs, loss on the completion only.
    """

    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "required: the folder the student and its checkpoints go to (a new or empty folder, or "
            "one an earlier run of the same task and dataset wrote, which resumes)"
        },
    )
    learning_rate: float = field(
        default=PAPER_RECIPE.learning_rate, metadata={"help": "paper: 3e-4", FCOT_RANGE: POSITIVE}
    )
    per_device_train_batch_size: int = field(
        default=PAPER_RECIPE.per_device_train_batch_size, metadata={"help": "paper: 8", FCOT_RANGE: COUNT}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "steps whose gradients add up before one update", FCOT_RANGE: COUNT}
    )
    seed: int = field(default=42, metadata={"help": "random seed set at the start of training", FCOT_RANGE: SEED})
    data_seed: int | None = field(
        default=None, metadata={"help": "seed of the data samplers (default: seed)", FCOT_RANGE: SEED}
    )
    num_train_epochs: float = field(default=PAPER_RECIPE.num_train_epochs, metadata={"help": "paper: 20"})
    optim: str = field(default="adamw_torch_fused", metadata={"help": "paper: AdamW (fused: the same update, faster)"})
    completion_only_loss: bool | None = field(default=True, metadata={"help": "loss on completion tokens only"})
    max_length: int | None = field(
        default=PAPER_RECIPE.max_length, metadata={"help": "paper: 512 prompt + 512 completion tokens"}
    )
    hub_strategy: str = field(
        default="end", metadata={"help": "end: push once, after training, the model and its card in one commit"}
    )
    # Speed, not results: see fcot_plugin/training/sft.py and benchmarks/sft_throughput.py for what each buys.
    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 where the hardware has native bf16, else fp32), bf16 or fp32; an explicit "
            "bf16/fp16 flag wins over auto"
        },
    )
    activation_checkpointing: bool | None = field(
        default=None,
        metadata={
            "help": "recompute activations in backward to save memory. Off unless set (TRL turns it on by "
            "default): a small student does not need it and trains faster without"
        },
    )
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "deprecated alias of activation_checkpointing (transformers >= 5.24)"}
    )
    train_sampling_strategy: str = field(
        default=PAPER_RECIPE.train_sampling_strategy,
        metadata={
            "help": "group_by_length (rows of similar length batched together: less padding computed; "
            "benchmarks/sft_throughput.py), random, sequential or batch_rebalance"
        },
    )

    def _check_ranges(self) -> None:
        """Values TRL would accept and then train nothing with, or NaN weights (``learning_rate: inf``), or fail on
        deep inside: one line each, first. Every float of TRL's and transformers' own options is finite too."""
        check_ranges(self)
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise ValueError(f"num_train_epochs must be > 0 (or set max_steps), got {self.num_train_epochs}")

    def __post_init__(self) -> None:
        from fcot_plugin.core.precision import normalise, resolve_precision, training_device

        if not self.output_dir:  # transformers would write to ./trainer_output/, where any other run resumes too
            raise ValueError(
                "output_dir is required (e.g. --output_dir runs/smollm2-fcot-coin_flip): the student and its "
                "checkpoints go there, and a later run of the same task resumes from them"
            )
        self.precision = normalise(self.precision)
        self._check_ranges()
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = False
        device = training_device(self.use_cpu)
        if self.bf16 is None and not self.fp16:  # no explicit flag: the hardware decides
            self.bf16 = resolve_precision(self.precision, device).bf16
        elif self.precision == "bf16" and self.bf16 is False:
            raise ValueError("precision: bf16 contradicts bf16: false; set only one of them")
        elif self.precision == "fp32" and (self.bf16 or self.fp16):
            raise ValueError("precision: fp32 contradicts bf16/fp16: true; set only one of them")
        elif self.bf16:
            resolve_precision("bf16", device)  # warns once where bf16 is only emulated
        super().__post_init__()
