"""recipes/sft.py trained under every shipped accelerate config, on CPU, as a user launches it (see
ds_configs/README.md; the config checks: tests/training/test_distributed.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO

pytestmark = pytest.mark.curated("coin_flip", rows=32)  # the `curated` fixture (tests/conftest.py)


def launch(config: str, processes: int, model: Path, data: Path, out: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        f"ds_configs/{config}",
        "--num_processes",
        str(processes),
        "--mixed_precision",
        "no",
        "--main_process_port",
        "0",
        "recipes/sft.py",
        "--config",
        "recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml",
        "--task",
        "coin_flip",
        "--model_name_or_path",
        str(model),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--max_steps",
        "6",
        "--per_device_train_batch_size",
        "2",
        "--learning_rate",
        "3e-3",
        "--logging_steps",
        "1",
        "--save_strategy",
        "no",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
    ]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "processes"),
    [("zero2.yaml", 1), ("zero2.yaml", 2), ("zero3.yaml", 2), ("multi_gpu.yaml", 2), ("single_process.yaml", 1)],
)
def test_training_under_each_launch_config(config, processes, tiny_model, curated, tmp_path):
    out = tmp_path / "student"
    result = launch(config, processes, tiny_model, curated, out)
    assert result.returncode == 0, result.stderr[-4000:]
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0], losses
    # reload in a fresh process (after ZeRO-3 the training process keeps DeepSpeed's global config)
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from transformers import AutoModelForCausalLM as M; "
            "m = M.from_pretrained(sys.argv[1]); print(sum(p.numel() for p in m.parameters()))",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and int(check.stdout.split()[-1]) > 0, check.stderr[-2000:]
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("config", "processes"), [("zero2.yaml", 2), ("zero3.yaml", 2)])
def test_t5_seq2seq_training_under_zero(config, processes, tiny_t5, curated, tmp_path):
    """An encoder-decoder student goes through the same recipe and ZeRO configs (Seq2SeqTrainer inside)."""
    out = tmp_path / "student"
    result = launch(config, processes, tiny_t5, curated, out)
    assert result.returncode == 0, result.stderr[-4000:]
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0], losses
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from transformers import AutoModelForSeq2SeqLM as M; "
            "m = M.from_pretrained(sys.argv[1]); print(type(m).__name__, sum(p.numel() for p in m.parameters()))",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and check.stdout.split()[-2] == "T5ForConditionalGeneration", check.stderr[-2000:]
    assert int(check.stdout.split()[-1]) > 0 and "encoder-decoder" in (out / "README.md").read_text()
