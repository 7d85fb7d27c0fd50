"""LoRA students (TRL's ModelConfig PEFT flags through peft): train, save adapter and merge, evaluate, push."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from fcot_plugin.pipeline.evaluate import main as evaluate_main
from fcot_plugin.pipeline.settings import EvaluateArguments
from fcot_plugin.training.sft import main as train_main
from fcot_plugin.training.sft import make_parser

pytestmark = pytest.mark.curated("coin_flip", rows=8)  # the `curated` fixture (tests/conftest.py)

LORA = ["--use_peft", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]


def train(model: Path, data: Path, out: Path, *extra: str) -> Path:
    return train_main(
        *make_parser().parse_args_into_dataclasses(
            [
                "--model_name_or_path",
                str(model),
                "--dataset_name",
                str(data),
                "--task",
                "coin_flip",
                "--output_dir",
                str(out),
                "--max_steps",
                "4",
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "1e-2",
                "--save_strategy",
                "no",
                "--report_to",
                "none",
                "--use_cpu",
                "true",
                "--bf16",
                "false",
                *extra,
            ]
        )
    )


def test_lora_student_saves_adapter_merges_and_evaluates_through_lm_eval_peft(tiny_model, curated, tmp_path):
    from peft import AutoPeftModelForCausalLM

    out = train(tiny_model, curated, tmp_path / "lora", *LORA, "--merge_adapter", "true")
    # the adapter only: base weights are not copied
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_model) and adapter["r"] == 4
    assert sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]

    # the merged model is base + trained adapter: same logits as the adapter on the base, not the base's
    ids = torch.tensor([[5, 17, 42, 8, 99]])
    merged = AutoModelForCausalLM.from_pretrained(out / "merged").eval()
    with torch.no_grad():
        logits = merged(ids).logits
        assert torch.allclose(logits, AutoPeftModelForCausalLM.from_pretrained(out).eval()(ids).logits, atol=1e-4)
        assert not torch.allclose(logits, AutoModelForCausalLM.from_pretrained(tiny_model).eval()(ids).logits)

    card = (out / "README.md").read_text()
    assert "library_name: peft" in card and f"base_model: {tiny_model}" in card and "- lora" in card
    assert f"pretrained={tiny_model},peft={out}" in card and "`lora_r=4`" in card

    # fcot evaluate loads the adapter with lm-eval's peft= argument
    evaluate_main(
        EvaluateArguments(
            model=str(out), task="coin_flip", limit=2, max_gen_toks=4, output_path=str(tmp_path / "eval")
        )
    )
    results = json.loads(next((tmp_path / "eval").rglob("results_*.json")).read_text())
    assert results["config"]["model_args"].startswith(f"pretrained={tiny_model},peft={out},")
    assert results["n-samples"]["fcot_coin_flip"]["effective"] == 2
    assert "fcot_coin_flip acc (first 2 questions)" in (out / "README.md").read_text()


def test_lora_t5_student_trains_an_seq2seq_adapter(tiny_t5, curated, tmp_path):
    from peft import AutoPeftModelForSeq2SeqLM

    out = train(
        tiny_t5,
        curated,
        tmp_path / "t5-lora",
        "--use_peft",
        "--lora_r",
        "4",
        "--lora_target_modules",
        "q",
        "v",
        "--merge_adapter",
        "true",
    )
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_2_SEQ_LM" and adapter["base_model_name_or_path"] == str(tiny_t5)
    base = AutoPeftModelForSeq2SeqLM.from_pretrained(out).get_base_model()
    assert type(base).__name__ == "T5ForConditionalGeneration"
    assert (out / "merged" / "model.safetensors").is_file()
    card = (out / "README.md").read_text()
    assert "T5ForConditionalGeneration (encoder-decoder)" in card and "AutoPeftModelForSeq2SeqLM" in card


def test_lora_student_is_pushed_with_a_card_naming_the_base(tiny_model, curated, tmp_path, monkeypatch):
    from helpers.hub_server import local_hub_session
    from huggingface_hub import HfApi, ModelCard

    with local_hub_session(tmp_path, monkeypatch) as session:
        train(
            tiny_model,
            curated,
            tmp_path / "lora",
            *LORA,
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "user/tiny-lora-coin-flip",
        )
        files = {entry.rfilename for entry in HfApi().model_info("user/tiny-lora-coin-flip").siblings}
        assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= files
        assert "model.safetensors" not in files
        card = ModelCard.load("user/tiny-lora-coin-flip")
        assert card.data.base_model == str(tiny_model) and card.data.library_name == "peft"
        assert f"pretrained={tiny_model},peft=user/tiny-lora-coin-flip" in card.text
        # fcot evaluate finds the base of a Hub adapter and writes the result into the Hub card
        evaluate_main(
            EvaluateArguments(
                model="user/tiny-lora-coin-flip", task="coin_flip", limit=2, max_gen_toks=4, push_to_hub=True
            )
        )
        assert ModelCard.load("user/tiny-lora-coin-flip").data.eval_results[0].metric_name.startswith("fcot_coin")
        assert not session.hub.errors


def test_lora_fcot_distill_trains_and_evaluates_an_adapter(tiny_model, tmp_path):
    from fcot_plugin.cli.fcot import main as fcot

    run = tmp_path / "run"
    fcot(
        [
            "distill",
            "--task",
            "coin_flip",
            "--student",
            str(tiny_model),
            "--run_dir",
            str(run),
            "--lora",
            "true",
            "--train_limit",
            "8",
            "--eval_limit",
            "2",
            "--max_gen_toks",
            "4",
            "--batch_size",
            "4",
            "--precision",
            "fp32",
            "--baselines",
            "false",
        ]
    )
    student = run / "student"
    assert (student / "adapter_model.safetensors").is_file() and not (student / "model.safetensors").exists()
    assert "use_peft: true" in (run / "train.yaml").read_text()
    results = json.loads(next((run / "eval" / "student").rglob("results_*.json")).read_text())
    assert results["config"]["model_args"] == f"pretrained={tiny_model},peft={student},dtype=float32"
