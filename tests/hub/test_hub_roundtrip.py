"""Curated data and a trained student go to a (local, real-protocol) Hub and come back usable by id."""

from __future__ import annotations

import json

import datasets
import pytest
from helpers.hub_server import commit_titles
from huggingface_hub import HfApi, ModelCard

from fcot_plugin.cli.fcot import main as fcot


def test_curate_push_without_a_token_writes_nothing(hub, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(SystemExit):
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
                "user/x",
            ]
        )
    assert "needs a valid token" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_curate_push_to_a_bad_repo_id_writes_nothing(hub, tmp_path, capsys):
    with pytest.raises(SystemExit):
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
                "user/coin flip",
            ]
        )
    assert "'user/coin flip' is not a valid Hub repo id" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not hub.hub.request_log


@pytest.mark.parametrize(
    ("hub_model_id", "match"),
    [
        ("user/extra/x", "--hub_model_id: 'user/extra/x' is not a Hub repo id"),
        ("someone-else/s", "cannot push to someone-else/"),
    ],
)
def test_distill_push_target_is_checked_before_the_first_stage(hub, tiny_model, tmp_path, hub_model_id, match):
    from fcot_plugin.hub.push import HubError
    from fcot_plugin.pipeline.preflight import check_distill
    from fcot_plugin.pipeline.settings import DistillArguments

    args = DistillArguments(
        task="coin_flip",
        student=str(tiny_model),
        run_dir=str(tmp_path / "run"),
        device="cpu",
        precision="fp32",
        push_to_hub=True,
        hub_model_id=hub_model_id,
    )
    with pytest.raises(HubError, match=match):
        check_distill(args)  # distill() calls it before the run folder is touched
    assert not any(line.split()[0] in ("POST", "PUT", "DELETE") for line in hub.hub.request_log)


def test_aqua_train_split_is_rebuilt_from_the_hub(hub):
    """fcot_aqua_teacher's data: the raw AQuA train set by Hub id, verbalised, the paper's 10,000-row sample."""
    from fcot_plugin.harness.task_functions import load_split
    from fcot_plugin.tasks.registry import AQUA_HUB_ID, AQUA_TRAIN_ROWS, data_dir

    letters = "ABCDE"
    raw = datasets.Dataset.from_dict(
        {
            "question": [f"Question {i}?" for i in range(AQUA_TRAIN_ROWS)],
            "options": [[f"{letter}){i + k}" for k, letter in enumerate(letters)] for i in range(AQUA_TRAIN_ROWS)],
            "rationale": [""] * AQUA_TRAIN_ROWS,
            "correct": [letters[i % 5] for i in range(AQUA_TRAIN_ROWS)],
        }
    )
    raw.push_to_hub(AQUA_HUB_ID, config_name="raw", split="train")

    docs = load_split("aqua", "train")["train"]
    indices = json.loads((data_dir() / "aqua" / "split_default.json").read_text())["train"]
    assert len(docs) == 10_000 and docs["sample_index"] == indices
    first = indices[0]
    assert docs[0]["question"] == (
        f"Question {first}? Answer choices: (A) {first}, (B) {first + 1}, (C) {first + 2}, (D) {first + 3}, "
        f"(E) {first + 4}."
    )
    assert docs[0]["answer"] == letters[first % 5]


def test_distill_pushes_data_and_student(hub, tiny_model, tmp_path):
    from fcot_plugin.pipeline.distill import distill
    from fcot_plugin.pipeline.settings import DistillArguments

    args = DistillArguments(
        task="coin_flip",
        student=str(tiny_model),
        run_dir=str(tmp_path / "run"),
        train_limit=8,
        eval_limit=2,
        epochs=1,
        batch_size=4,
        precision="fp32",
        max_gen_toks=4,
        baselines=False,
        device="cpu",
        push_to_hub=True,
        hub_model_id=f"user/{tiny_model.name}-fcot-coin_flip",
    )
    run_dir = distill(args)
    pushed = json.loads((run_dir / "stages" / "push.json").read_text())
    name = f"{tiny_model.name}-fcot-coin_flip"
    assert pushed["model"].endswith(f"/user/{name}") and pushed["dataset"].endswith(f"/datasets/user/{name}-data")
    card = ModelCard.load(f"user/{name}")
    (result,) = card.data.eval_results
    assert result.metric_name == "fcot_coin_flip acc (first 2 questions)"
    assert (
        len(datasets.load_dataset(f"user/{name}-data", split="train"))
        == json.loads((run_dir / "stages" / "curate.json").read_text())["stats"]["rows"]
    )
    files = {entry.rfilename for entry in HfApi().model_info(f"user/{name}").siblings}
    assert "model.safetensors" in files and not any(file.startswith("checkpoint-") for file in files)
    assert commit_titles(f"user/{name}") == ["Add Fine-tune-CoT student"]
    assert commit_titles(f"user/{name}-data", "dataset") == ["Add Fine-tune-CoT data"]
