"""benchmarks/diverse_reasoning.py with a served teacher, end to end (its unit tests:
tests/benchmarks/test_diverse_reasoning.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.scripts import load_script
from helpers.serving import sampling_model


@pytest.mark.slow
def test_campaign_with_a_served_teacher_reuses_d1_for_d2_and_records_every_field(tiny_model, tmp_path):
    """Three cells on 4 Coin Flip questions: D=1, D=2 and the mixed row at D=2, each one ``fcot distill`` with a
    ``transformers serve`` teacher (the embedded SmolLM2-135M, sampling) and the tiny student, 1 epoch."""
    from fcot_plugin.training.students import EMBEDDED_STUDENT, resolve_student

    campaign = load_script(REPO / "benchmarks" / "diverse_reasoning.py")
    teacher = sampling_model(Path(resolve_student(EMBEDDED_STUDENT)), tmp_path / "smollm2-sampling")
    runs, output = tmp_path / "runs", tmp_path / "out" / "diverse_reasoning"
    args = campaign.CampaignArguments(
        teacher=str(teacher),
        teacher_engine="transformers",
        tasks="coin_flip",
        diverse="1,2",
        mixed_diverse=2,
        student=str(tiny_model),
        epochs=1,
        validation_size=1,
        train_limit=4,
        eval_limit=2,
        teacher_max_gen_toks=12,
        max_gen_toks=8,
        eval_batch_size=4,
        precision="fp32",
        runs_dir=str(runs),
        output=str(output),
    )
    rows = campaign.main(args)["cells"]
    assert [row["cell"] for row in rows] == ["coin_flip/d1", "coin_flip/d2", "coin_flip/d2-mixed"]

    # D=2 generated only its second samples: the first ones came from D=1's ledger, and the mixed row paid nothing
    def accounting(cell: str) -> dict:
        return json.loads((runs / "coin_flip" / cell / "teacher" / "accounting.json").read_text())

    one, two, mixed = accounting("d1"), accounting("d2"), accounting("d2-mixed")
    assert one["responses"] == 4 and one["reused"] == 0 and one["requests"] == 8  # rationale and answer each
    assert two["responses"] == 8 and two["reused"] == 4 and two["generated"] == 4 and two["requests"] == 8
    assert mixed["responses"] == 8 and mixed["reused"] == 8 and mixed["requests"] == 0

    written = json.loads(output.with_suffix(".json").read_text())
    assert len(written["cells"]) == 3
    for row in written["cells"]:
        assert set(campaign.FIELDS) <= set(row), set(campaign.FIELDS) - set(row)
        if row["status"] != "finished":  # a 135M teacher may get no coin flip of 3 right: curation says so
            assert "had a correct answer" in row["error"], row
    row = written["cells"][2]  # the mixed row always has the paper's rationales to train on
    assert row["status"] == "finished" and row["mixed"] and row["paper_rationales"] == 3
    for name in (
        "teacher_accuracy",
        "kept",
        "rejected",
        "training_rows",
        "training_tokens",
        "epoch",
        "validation_best",
        "student_accuracy",
        "ci95",
        "machine",
        "device",
    ):
        assert row[name] is not None, name
    assert row["engine"] == "transformers" and row["temperature"] == 0.7 and row["n"] == 2
    assert set(row["seconds"]) == {"teacher", "training", "total"}
    assert row["ci95"][0] <= row["student_accuracy"] <= row["ci95"][1]
    assert row["teacher_cache"]["reused"] == 8
    assert "| Coin Flip | 2 | yes | finished |" in output.with_suffix(".md").read_text()
    assert output.with_suffix(".png").is_file()

    # resumable: finished cells are read from their run folders, nothing runs again
    again = campaign.main(args)["cells"]
    assert [row["status"] for row in again] == [row["status"] for row in rows]
    assert json.loads((runs / "coin_flip" / "d2-mixed" / "teacher" / "accounting.json").read_text()) == mixed
