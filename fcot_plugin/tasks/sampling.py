"""D and T of a sampled fcot task (the teacher's diverse reasoning, the student's self-consistency).

They arrive as ``fcot_samples`` / ``fcot_temperature`` in lm-eval's ``--metadata`` (``fcot distill`` passes its
``--diverse`` / ``--teacher_temperature`` the same way). ``fcot distill``, ``fcot-eval`` and the task classes
check them here, so a bad value reads the same wherever it is caught.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.numbers import INT64_MAX

SAMPLES, TEMPERATURE = "fcot_samples", "fcot_temperature"


def read_sampling(
    metadata: Mapping[str, Any], where: str | None = None, *, positive_temperature: bool = False
) -> tuple[int | None, float | None]:
    """``(samples, temperature)`` of ``metadata`` (None where unset), or one line naming the bad value.

    ``positive_temperature``: a majority vote over samples (self-consistency) needs T > 0.
    """
    prefix = f"{where}: " if where else ""
    samples, temperature = metadata.get(SAMPLES), metadata.get(TEMPERATURE)
    if samples is not None and (
        isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= INT64_MAX
    ):
        raise FcotError(f'{prefix}{SAMPLES} must be a whole number >= 1, got {samples!r} (e.g. "{SAMPLES}": 4)')
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or (isinstance(temperature, float) and not math.isfinite(temperature))
        or not 0 <= temperature <= INT64_MAX
    ):
        raise FcotError(
            f'{prefix}{TEMPERATURE} must be a finite number >= 0, got {temperature!r} (e.g. "{TEMPERATURE}": 0.7)'
        )
    if positive_temperature and temperature == 0:
        raise FcotError(
            f"{prefix}{TEMPERATURE} must be > 0 for a majority vote, got {temperature}: at 0 every sample is the "
            f'greedy one; pass e.g. "{TEMPERATURE}": 0.7'
        )
    if samples is not None and samples > 1 and temperature == 0:
        raise FcotError(
            f"{prefix}{SAMPLES}={samples} with {TEMPERATURE}=0 would give {samples} identical greedy rationales; "
            f'set a temperature > 0 (e.g. "{TEMPERATURE}": 0.7) or {SAMPLES} 1'
        )
    return samples, temperature


def refuse_greedy_repeats(samples: int, sampled: bool, where: str, fix: str) -> None:
    """Several samples per question under greedy decoding would all be the same text: one line with ``fix``."""
    if samples > 1 and not sampled:
        raise FcotError(f"{where}: {samples} samples per question with greedy decoding would all be identical; {fix}")
