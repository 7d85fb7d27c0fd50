"""Curated data and a trained student pushed to the local Hub, downloaded by id and evaluated (the other Hub
round trips: tests/hub/test_hub_roundtrip.py)."""

from __future__ import annotations

import datasets
import pytest
from helpers.hub_server import commit_titles
from huggingface_hub import DatasetCard, HfApi, ModelCard
from transformers import AutoModelForCausalLM

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.harness.runner import run_lm_eval
from fcot_plugin.pipeline.evaluate import main as evaluate_main
from fcot_plugin.pipeline.settings import EvaluateArguments
from fcot_plugin.training.sft import main as train_main
from fcot_plugin.training.sft import make_parser


@pytest.mark.slow
def test_push_train_download_and_evaluate(hub, tiny_model, tmp_path):
    # 1. curate and push the dataset with its card
    fcot(
        [
            "curate",
            "--task",
            "coin_flip",
            "--samples",
            "paper",
            "--out",
            str(tmp_path / "data"),
            "--push_to_hub",
            "true",
            "--hub_dataset_id",
            "user/coin-flip-fcot",
        ]
    )
    pulled = datasets.load_dataset("user/coin-flip-fcot", split="train")
    assert len(pulled) == 314 and pulled[0]["completion"].endswith(("--> yes", "--> no"))
    card = DatasetCard.load("user/coin-flip-fcot", repo_type="dataset")
    assert "teacher | text-davinci-002 (paper release)" in card.text and "fine-tune-cot" in card.data.tags
    assert commit_titles("user/coin-flip-fcot", "dataset") == ["Add Fine-tune-CoT data"]  # data and card: one commit

    # 2. train a student from the Hub dataset id and push it
    args = make_parser().parse_args_into_dataclasses(
        [
            "--model_name_or_path",
            str(tiny_model),
            "--dataset_name",
            "user/coin-flip-fcot",
            "--task",
            "coin_flip",
            "--output_dir",
            str(tmp_path / "student"),
            "--max_steps",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--use_cpu",
            "true",
            "--bf16",
            "false",
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "user/tiny-fcot-coin-flip",
        ]
    )
    train_main(*args)
    files = {entry.rfilename for entry in HfApi().model_info("user/tiny-fcot-coin-flip").siblings}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= files
    card = ModelCard.load("user/tiny-fcot-coin-flip")
    assert card.data.base_model == str(tiny_model) and "user/coin-flip-fcot" in card.data.datasets
    assert "`learning_rate` | `0.0003`" in card.text and "`num_train_epochs`" in card.text
    # the card's usage line is plain lm-eval (no --include_path): step 3 runs exactly that model and task
    assert "lm_eval --model hf --model_args pretrained=user/tiny-fcot-coin-flip --tasks fcot_coin_flip" in card.text
    assert commit_titles("user/tiny-fcot-coin-flip") == ["Fine-tune-CoT student"]  # weights and card: one commit

    # 3. download by id: transformers and lm-eval load it like any Hub model
    model = AutoModelForCausalLM.from_pretrained("user/tiny-fcot-coin-flip")
    assert model.config.vocab_size == AutoModelForCausalLM.from_pretrained(tiny_model).config.vocab_size
    results = run_lm_eval(
        "hf", "pretrained=user/tiny-fcot-coin-flip", ["fcot_coin_flip"], limit=3, gen_kwargs="max_gen_toks=8"
    )
    assert results["n-samples"]["fcot_coin_flip"]["effective"] == 3

    # 4. fcot evaluate writes the result into the Hub card's model-index
    evaluate_main(
        EvaluateArguments(
            model="user/tiny-fcot-coin-flip", task="coin_flip", limit=3, max_gen_toks=8, push_to_hub=True
        )
    )
    card = ModelCard.load("user/tiny-fcot-coin-flip")
    (result,) = card.data.eval_results
    assert result.metric_name == "fcot_coin_flip acc (first 3 questions)" and result.dataset_split == "test"
    assert result.metric_value == pytest.approx(results["results"]["fcot_coin_flip"]["acc,fcot"])
    assert "| `fcot_coin_flip acc (first 3 questions)` | test |" in card.text and "## Training" in card.text
    assert commit_titles("user/tiny-fcot-coin-flip") == ["Fine-tune-CoT student", "Add fcot_coin_flip results"]
