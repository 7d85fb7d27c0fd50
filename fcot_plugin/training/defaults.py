"""The paper's recipe for open-source students, declared once: the SFT recipe's and ``fcot distill``'s defaults.

Free of TRL and torch, so ``fcot distill --help`` can show them without importing a trainer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperRecipe:
    """What the paper trained its open-source students with (AdamW, Appendix), plus how fcot draws batches."""

    learning_rate: float = 3e-4
    per_device_train_batch_size: int = 8
    num_train_epochs: float = 20.0
    #: 512 prompt + 512 completion tokens; an encoder-decoder student gets half on each side
    max_length: int = 1024
    #: rows of similar length batched together (transformers' ``LengthGroupedSampler``): little padding computed
    train_sampling_strategy: str = "group_by_length"


PAPER_RECIPE = PaperRecipe()
