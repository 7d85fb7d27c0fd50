"""The commands a user types, end to end: ``fcot-eval`` with a diverse zscot teacher, and plain ``lm_eval`` finding
the fcot tasks (the fast ones: tests/test_cli.py)."""

from __future__ import annotations

import json

import pytest
from helpers.commands import run, script


@pytest.mark.slow
def test_fcot_eval_zscot_teacher_with_diverse_samples(tiny_model, tmp_path):
    result = run(
        script("fcot-eval"),
        "--model",
        "zscot",
        "--model_args",
        f"base=hf,pretrained={tiny_model},answer_max_gen_toks=4",
        "--tasks",
        "fcot_coin_flip_teacher",
        "--metadata",
        json.dumps({"fcot_samples": 2, "fcot_temperature": 0.7}),
        "--gen_kwargs",
        "max_gen_toks=8",
        "--limit",
        "2",
        "--device",
        "cpu",
        "--log_samples",
        "--output_path",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    samples_file = next((tmp_path / "out").rglob("samples_fcot_coin_flip_teacher_*.jsonl"))
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 2
    assert all(len(sample["resps"][0]) == 2 for sample in samples)
    assert all("\nTherefore, the answer is" in response for sample in samples for response in sample["resps"][0])


@pytest.mark.slow
def test_plain_lm_eval_finds_the_tasks(tiny_model, tmp_path):
    result = run(
        script("lm_eval"),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model}",
        "--tasks",
        "fcot_multiarith",
        "--gen_kwargs",
        "max_gen_toks=8",
        "--limit",
        "2",
        "--device",
        "cpu",
        "--output_path",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    assert "acc,fcot" in results["results"]["fcot_multiarith"]
