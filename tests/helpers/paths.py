"""Where the repository, its recipes and the tests' shipped data are, wherever a test module lives under tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DATA = TESTS / "data"
SFT_RECIPE = REPO / "recipes" / "sft.py"
