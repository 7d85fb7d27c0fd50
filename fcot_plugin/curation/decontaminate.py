"""Decontamination: no training row whose question is also a test question.

A pure function over teacher responses, so curation of the 12 shipped tasks and of a user's own data apply the same
rule. Questions are compared normalised (case, punctuation and spacing ignored), as the ``text`` answer type does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from fcot_plugin.tasks.answer_types import normalize_text

Row = TypeVar("Row")


def remove_overlap(rows: Iterable[Row], test_questions: Iterable[str], question=lambda row: row.question):
    """``(kept, removed)``: the rows whose normalised ``question(row)`` is no test question, and the others."""
    test = {normalize_text(text) for text in test_questions}
    kept: list[Row] = []
    removed: list[Row] = []
    for row in rows:
        (removed if normalize_text(question(row)) in test else kept).append(row)
    return kept, removed
