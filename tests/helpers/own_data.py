"""Small datasets of a user's own, one per answer type, written as JSON lines (``fcot distill --data``)."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def number_rows(count: int = 12) -> list[dict]:
    return [
        {"question": f"Ann has {i} apples and buys {i} more. How many now?", "answer": f"{2 * i:,} apples"}
        for i in range(1, count + 1)
    ]


def choice_rows(count: int = 12) -> list[dict]:
    return [
        {"q": f"Which is larger than {i}?", "options": [str(i - 1), str(i + 1), str(i - 2)], "a": str(i + 1)}
        for i in range(3, count + 3)
    ]


def yes_no_rows(count: int = 12) -> list[dict]:
    return [{"question": f"Is {i} even?", "answer": i % 2 == 0} for i in range(count)]


def text_rows(count: int = 12) -> list[dict]:
    return [
        {"question": f"Spell the number {i} in digits, then say 'item {i}'.", "answer": f"Item {i}."}
        for i in range(count)
    ]
