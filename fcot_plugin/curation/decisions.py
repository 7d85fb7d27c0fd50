"""What curation did with each teacher rationale, and why: the record that ``report.html`` shows.

One JSON line per train question (``curation_decisions.jsonl`` beside the curated dataset): the question, the
gold answer, and each teacher rationale in the teacher's order with the answer read from it, whether that answer
is correct, and the reason it was kept or rejected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DECISIONS_FILE = "curation_decisions.jsonl"
#: kept: a training row; wrong_answer / no_answer: the rationale's answer is wrong or absent; no_rationale: a correct
#: answer with no reasoning before it; duplicate: the same rationale was already kept for the question; held_out:
#: the question is in the validation slice; overlap: the question is also a test question
REASONS = ("kept", "wrong_answer", "no_answer", "no_rationale", "duplicate", "held_out", "overlap")


class Decisions:
    """Per question, every teacher rationale with its reason, in the order curation met them."""

    def __init__(self) -> None:
        self.questions: dict[int, dict[str, Any]] = {}

    def add(self, item: Any, reason: str, predicted: str | None, correct: bool) -> None:
        """Record ``item`` (a :class:`~fcot_plugin.curation.responses.TeacherResponse`) with ``reason``."""
        if reason not in REASONS:
            raise ValueError(f"unknown curation reason {reason!r}; one of {', '.join(REASONS)}")
        entry = self.questions.setdefault(
            item.sample_index,
            {"sample_index": item.sample_index, "question": item.question, "answer": item.answer, "rationales": []},
        )
        rationale = {"response": item.response, "predicted": predicted, "correct": correct, "reason": reason}
        entry["rationales"].append(rationale)

    def records(self) -> list[dict[str, Any]]:
        return [self.questions[index] for index in sorted(self.questions)]

    def write(self, folder: Path) -> None:
        lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in self.records())
        (Path(folder) / DECISIONS_FILE).write_text("".join(lines), encoding="utf-8")


def read_decisions(folder: Path) -> list[dict[str, Any]] | None:
    """The decisions recorded beside a curated dataset, or None for data curated without them (vanilla)."""
    path = Path(folder) / DECISIONS_FILE
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
