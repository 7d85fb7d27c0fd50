"""fcot distill trained through accelerate and DeepSpeed (the in-process pipeline: tests/pipeline/test_pipeline.py)."""

from __future__ import annotations

import pytest
from helpers.paths import REPO
from helpers.runs import tiny_args

from fcot_plugin.pipeline.distill import distill


@pytest.mark.slow
def test_training_through_accelerate_and_deepspeed(tiny_model, tmp_path):
    config = REPO / "ds_configs" / "zero2.yaml"
    run_dir = distill(
        tiny_args(
            tiny_model,
            tmp_path / "run",
            launcher="accelerate",
            accelerate_config=str(config),
            num_processes=1,
            baselines=False,
        )
    )
    assert (run_dir / "student" / "model.safetensors").is_file()
    assert "student, Fine-tune-CoT (ours)" in (run_dir / "report.md").read_text()
