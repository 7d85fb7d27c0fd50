"""benchmarks/plan.py's token table reproduced by a recount (its arithmetic: tests/benchmarks/test_plan.py)."""

from __future__ import annotations

import sys

import pytest
from helpers.paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from plan import TASK_TOKENS  # noqa: E402


@pytest.mark.slow
def test_plan_token_table_is_reproduced_by_recount():
    """The embedded lengths are what --recount counts from the shipped data with the SmolLM2 tokenizer."""
    from plan import count_tokens

    counted = count_tokens()
    for task, stats in TASK_TOKENS.items():
        for column, value in stats.items():
            assert counted[task][column] == pytest.approx(value, abs=0.051), (task, column)
