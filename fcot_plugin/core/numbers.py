"""The values a numeric setting takes, declared once with the setting and checked when it is parsed.

``float("1e400")`` is infinity and ``float("nan")`` compares false with everything, so a plain ``value > 0`` lets
both through to a trainer that then writes NaN weights. Every float of a command is finite here, every int fits in
64 bits, and a declared :class:`Range` names what it accepts in the one line that refuses a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from fcot_plugin.core.errors import FcotError

#: Field-metadata key of a setting's range (kept away from argparse by ``settings_parser``)
FCOT_RANGE = "fcot_range"
#: The largest int a command takes anywhere (C's int64: what torch, numpy and SQLite store)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Range:
    """At least ``minimum`` (above it when ``inclusive`` is False), at most ``maximum``, and finite."""

    minimum: float
    inclusive: bool = True
    maximum: float | None = None

    def describe(self) -> str:
        low = f"{'>=' if self.inclusive else '>'} {_number(self.minimum)}"
        if self.maximum is None or self.maximum == INT64_MAX:  # a count: its 64-bit cap goes without saying
            return low
        if self.inclusive:
            return f"between {_number(self.minimum)} and {_number(self.maximum)}"
        return f"{low} and <= {_number(self.maximum)}"

    def check(self, name: str, value: Any) -> None:
        """One line naming ``name``, what it accepts and what it got; None (unset) passes."""
        if value is None or isinstance(value, bool):
            return
        if not isinstance(value, int | float):
            raise FcotError(f"{_option(name)} must be a number {self.describe()}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise FcotError(f"{_option(name)} must be a finite number {self.describe()}, got {value!r}")
        ok = value >= self.minimum if self.inclusive else value > self.minimum
        if not ok or (self.maximum is not None and value > self.maximum):
            raise FcotError(f"{_option(name)} must be {self.describe()}, got {value!r}")

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is a number (not a flag) this range takes: for values read back from a file, where a
        bad one falls back to a default instead of stopping the run."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            self.check("value", value)
        except FcotError:
            return False
        return True


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _option(name: str) -> str:
    return name if name.startswith(("-", '"', "'")) or " " in name else f"--{name}"


COUNT = Range(1, maximum=INT64_MAX)  # questions, samples, tokens, rows, processes
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, inclusive=False)
#: numpy's ``RandomState`` (which ``transformers.set_seed`` seeds) takes 0 to 2**32 - 1
SEED = Range(0, maximum=2**32 - 1)


def check_value(name: str, value: Any, declared: Range | None = None) -> None:
    """``value`` within ``declared``; without one, a float is still finite and an int still fits in 64 bits."""
    if declared is not None:
        declared.check(name, value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise FcotError(f"{_option(name)} must be a finite number, got {value!r}")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        raise FcotError(f"{_option(name)} must be between {-INT64_MAX - 1} and {INT64_MAX}, got {value!r}")


def check_ranges(arguments: Any) -> None:
    """Each number of the dataclass ``arguments`` within its declared range (finite and 64-bit where none is
    declared), or one line naming it; lists of numbers (``--student_params 1e9 2e9``) item by item."""
    for item in fields(arguments):
        declared = item.metadata.get(FCOT_RANGE)
        value = getattr(arguments, item.name, None)
        for one in value if isinstance(value, list | tuple) else [value]:
            check_value(item.name, one, declared)
