"""recipes/sft.py trains, saves and reloads a student for real (the rest of SFT: tests/training/test_train.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.paths import SFT_RECIPE
from helpers.training import recipe_args
from transformers import AutoModelForCausalLM, AutoTokenizer

pytestmark = pytest.mark.curated("multiarith", rows=16)  # the `curated` fixture (tests/conftest.py)


@pytest.mark.slow
def test_recipe_trains_saves_and_reloads(tiny_model, curated, tmp_path):
    out = tmp_path / "student"
    result = subprocess.run(
        [sys.executable, str(SFT_RECIPE), *recipe_args(tiny_model, curated, out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0], losses
    assert (out / "checkpoint-12").is_dir() or (out / "checkpoint-24").is_dir()
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    card = (out / "README.md").read_text()
    assert f"base_model: {tiny_model}" in card and "learning_rate` | `0.003`" in card and "fcot-multiarith" in card
