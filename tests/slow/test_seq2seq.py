"""T5 students end to end: trained through the recipe with a card naming the architecture, and ``fcot distill``
offline (the unit tests: tests/training/test_seq2seq.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO, SFT_RECIPE
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

pytestmark = pytest.mark.curated("coin_flip", rows=16)  # the `curated` fixture (tests/conftest.py)


def recipe_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(REPO / "recipes" / "SmolLM2-135M-Instruct" / "sft" / "config_fcot.yaml"),
        "--model_name_or_path",
        str(model),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--task",
        "coin_flip",
        "--learning_rate",
        "3e-3",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "12",
        "--logging_steps",
        "3",
        "--save_strategy",
        "no",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--report_to",
        "none",
        *extra,
    ]


@pytest.mark.slow
def test_t5_trains_through_the_recipe_with_a_card_naming_the_architecture(tiny_t5, curated, tmp_path):
    out = tmp_path / "student"
    result = subprocess.run(
        [sys.executable, str(SFT_RECIPE), *recipe_args(tiny_t5, curated, out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [e["loss"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0], losses
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    assert model.generation_config.eos_token_id == AutoTokenizer.from_pretrained(out).eos_token_id
    card = (out / "README.md").read_text()
    assert "Architecture: T5ForConditionalGeneration (encoder-decoder)." in card
    assert "transformers `Seq2SeqTrainer`" in card and f"base_model: {tiny_t5}" in card
    assert "`max_source_length` | `512`" in card and "`learning_rate` | `0.003`" in card


@pytest.mark.slow
def test_t5_fcot_distill_end_to_end_offline(tiny_t5, tmp_path):
    from fcot_plugin.cli.fcot import main as fcot

    run = tmp_path / "run"
    fcot(
        [
            "distill",
            "--task",
            "coin_flip",
            "--student",
            str(tiny_t5),
            "--run_dir",
            str(run),
            "--train_limit",
            "8",
            "--eval_limit",
            "2",
            "--max_gen_toks",
            "8",
            "--batch_size",
            "4",
            "--precision",
            "fp32",
        ]
    )
    names = [row["name"] for row in json.loads((run / "report.json").read_text())["rows"]]
    assert {"student, Fine-tune-CoT (ours)", "student before training, zero-shot-CoT"} <= set(names)  # baselines too
    assert "Architecture: T5ForConditionalGeneration (encoder-decoder)." in (run / "student" / "README.md").read_text()
    results = next((run / "eval" / "student").rglob("results_*.json"))
    assert json.loads(results.read_text())["n-samples"]["fcot_coin_flip"]["effective"] == 2
