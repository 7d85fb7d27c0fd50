"""Curation records every teacher rationale with the reason it was kept or rejected (curation_decisions.jsonl)."""

from __future__ import annotations

from fcot_plugin.curation.dataset import curate, fine_tune_cot_rows, save_dataset
from fcot_plugin.curation.decisions import Decisions, read_decisions
from fcot_plugin.curation.responses import TeacherResponse


def test_each_rationale_gets_its_reason():
    question = "A coin is heads up. Ka flips the coin. Is the coin still heads up?"
    responses = [
        TeacherResponse(0, question, "no", "Ka flips it, so it is tails up. Therefore, the answer is no."),
        TeacherResponse(0, question, "no", "Ka flips it, so it is tails up. Therefore, the answer is no."),
        TeacherResponse(0, question, "no", "It is still heads up. Therefore, the answer is yes."),
        TeacherResponse(0, question, "no", "I cannot tell."),
        TeacherResponse(1, question, "no", "Therefore, the answer is no."),
    ]
    decisions = Decisions()
    rows, stats = fine_tune_cot_rows("coin_flip", responses, decisions=decisions)
    first, second = decisions.records()
    assert [r["reason"] for r in first["rationales"]] == ["kept", "duplicate", "wrong_answer", "no_answer"]
    assert [r["predicted"] for r in first["rationales"]] == ["no", "no", "yes", None]
    assert [r["reason"] for r in second["rationales"]] == ["no_rationale"]
    assert sum(r["reason"] == "kept" for record in decisions.records() for r in record["rationales"]) == len(rows)
    assert stats.rationales == 5 and stats.duplicates == 1 and stats.correct == 3


def test_the_record_is_saved_beside_the_dataset_with_held_out_questions(tmp_path):
    result = curate("coin_flip", "paper", question_limit=10, held_out=[3, 4])
    save_dataset(result, tmp_path / "data")
    records = read_decisions(tmp_path / "data")
    assert [record["sample_index"] for record in records] == sorted(record["sample_index"] for record in records)
    held = {record["sample_index"] for record in records if record["rationales"][0]["reason"] == "held_out"}
    assert held == {3, 4}
    kept = sum(r["reason"] == "kept" for record in records for r in record["rationales"])
    assert kept == result.stats.rows and len(records) == result.stats.questions + 2


def test_answer_only_data_records_no_decisions(tmp_path):
    save_dataset(curate("coin_flip", "paper", format="vanilla", question_limit=4), tmp_path / "data")
    assert read_decisions(tmp_path / "data") is None
