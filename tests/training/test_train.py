"""Student SFT through recipes/sft.py for real: loss, masking, checkpoints, cards and bad configs."""

from __future__ import annotations

import datasets
import pytest
import torch
from helpers.scripts import sft_recipe
from helpers.training import recipe_args
from transformers import AutoTokenizer

pytestmark = pytest.mark.curated("multiarith", rows=16)  # the `curated` fixture (tests/conftest.py)


def test_unknown_recipe_keys_are_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(  # max_seq_length is now max_length
        "model_name_or_path: x\ntask: multiarith\nbf16: false\noutput_dir: out\nmax_seq_length: 512\n"
    )
    with pytest.raises(ValueError, match="max_seq_length"):
        sft_recipe().make_parser().parse_yaml_file(str(bad), allow_extra_keys=False)


def test_loss_is_masked_on_prompt_tokens_and_eos_is_learned(tiny_model, curated, tmp_path):
    from fcot_plugin.training.causal import make_trainer_class
    from fcot_plugin.training.common import load_training_dataset

    parser = sft_recipe().make_parser()
    script_args, training_args, _ = parser.parse_args_into_dataclasses(
        recipe_args(tiny_model, curated, tmp_path / "out")[2:]
    )
    dataset = load_training_dataset(script_args)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    trainer = make_trainer_class()(
        model=str(tiny_model), args=training_args, train_dataset=dataset, processing_class=tokenizer
    )
    examples = [trainer.train_dataset[index] for index in range(4)]
    batch = trainer.data_collator(examples)
    for row, input_ids, labels in zip(dataset.select(range(4)), batch["input_ids"], batch["labels"], strict=True):
        prompt_length = len(tokenizer(row["prompt"])["input_ids"])
        real = labels != -100
        assert not real[:prompt_length].any(), "prompt tokens must not be trained on"
        completion_ids = input_ids[real]
        assert completion_ids[-1].item() == tokenizer.eos_token_id, "the completion must end with EOS"
        assert tokenizer.decode(completion_ids[:-1]) == row["completion"]
        assert torch.equal(labels[real], input_ids[real])


def test_only_the_newest_checkpoint_keeps_optimizer_state(tiny_model, curated, tmp_path):
    """Every checkpoint kept (as epoch selection does): the older ones keep weights, not AdamW state."""
    from fcot_plugin.training.sft import main

    out = tmp_path / "student"
    script_args, training_args, model_args = (
        sft_recipe()
        .make_parser()
        .parse_args_into_dataclasses(recipe_args(tiny_model, curated, out, "--save_steps", "8")[2:])
    )
    training_args.save_total_limit = None
    main(script_args, training_args, model_args)
    checkpoints = {path.name: {file.name for file in path.iterdir()} for path in out.glob("checkpoint-*")}
    assert set(checkpoints) == {"checkpoint-8", "checkpoint-16", "checkpoint-24"}
    assert all("model.safetensors" in files and "trainer_state.json" in files for files in checkpoints.values())
    assert {"optimizer.pt", "scheduler.pt"} <= checkpoints["checkpoint-24"]
    assert not {"optimizer.pt", "scheduler.pt"} & (checkpoints["checkpoint-8"] | checkpoints["checkpoint-16"])


def _run_main(*args: str):
    from fcot_plugin.training.sft import main

    return main(*sft_recipe().make_parser().parse_args_into_dataclasses(list(args)))


def test_missing_column_is_named(tiny_model, tmp_path):
    data = tmp_path / "data"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"prompt": ["q ###"], "answer": ["1"]})}).save_to_disk(
        str(data)
    )
    with pytest.raises(ValueError, match=r"has no completion column \(columns: \['prompt', 'answer'\]\)"):
        _run_main(*recipe_args(tiny_model, data, tmp_path / "out")[2:])
    assert not (tmp_path / "out").exists()


def test_non_causal_model_is_refused(curated, tmp_path):
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert"
    BertModel(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(bert)
    with pytest.raises(ValueError, match="is a bert model .* not a causal LM"):
        _run_main(*recipe_args(bert, curated, tmp_path / "out")[2:])
    assert not (tmp_path / "out").exists()


def test_push_to_hub_without_a_token_fails_before_training(tiny_model, curated, tmp_path, monkeypatch):
    from fcot_plugin.hub.push import HubError

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token either
    args = recipe_args(tiny_model, curated, tmp_path / "out")[2:]
    with pytest.raises(HubError, match="needs a valid token.*hf auth login"):
        _run_main(*args, "--push_to_hub", "true", "--hub_model_id", "me/student")
    assert not (tmp_path / "out").exists()


def test_missing_dataset_is_a_clear_error(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="could not load the training dataset"):
        _run_main(*recipe_args(tiny_model, tmp_path / "nope", tmp_path / "out")[2:])
