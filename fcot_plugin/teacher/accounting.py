"""What a teacher run cost: requests, tokens, time, responses/s, cache hits and, given a price, dollars.

Tokens come from the server's ``usage`` when it sends one (OpenAI-compatible servers do), else from the
teacher's tokenizer; ``token_source`` says which. Only generated responses cost tokens: a cache hit is free.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TeacherAccounting:
    """Totals of one teacher run (all ``generate_until`` calls of one ``zscot`` model)."""

    teacher: str
    responses: int = 0
    reused: int = 0
    generated: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    token_sources: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    price_per_million_prompt: float | None = None
    price_per_million_completion: float | None = None

    def add_tokens(self, prompt: int, completion: int, source: str) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        if source not in self.token_sources:
            self.token_sources.append(source)

    @property
    def responses_per_second(self) -> float | None:
        return round(self.responses / self.wall_seconds, 3) if self.wall_seconds > 0 else None

    @property
    def cost(self) -> float | None:
        """Dollars for the tokens generated in this run; ``None`` without a price."""
        if self.price_per_million_prompt is None and self.price_per_million_completion is None:
            return None
        prompt_price = self.price_per_million_prompt or 0.0
        completion_price = self.price_per_million_completion or prompt_price
        return round((self.prompt_tokens * prompt_price + self.completion_tokens * completion_price) / 1e6, 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "wall_seconds": round(self.wall_seconds, 2),
            "responses_per_second": self.responses_per_second,
            "cache_hits": self.reused,
            "cost_usd": self.cost,
        }

    def write(self, path: str | Path) -> None:
        """Atomic write (temp file + rename): a killed run never leaves half a JSON file."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)


def accounting_markdown(accounting: dict[str, Any]) -> str:
    """The accounting as a two-column Markdown table (report and dataset card)."""
    rows = [
        ("teacher responses (question x sample)", accounting.get("responses")),
        ("reused from the cache", accounting.get("cache_hits")),
        ("generated", accounting.get("generated")),
        ("requests to the teacher", accounting.get("requests")),
        ("prompt tokens", accounting.get("prompt_tokens")),
        ("completion tokens", accounting.get("completion_tokens")),
        ("tokens counted by", ", ".join(accounting.get("token_sources") or []) or "-"),
        ("wall time (s)", accounting.get("wall_seconds")),
        ("responses/s", accounting.get("responses_per_second")),
        ("cost (USD)", "-" if accounting.get("cost_usd") is None else f"{accounting['cost_usd']:.4f}"),
    ]
    lines = ["| teacher run | value |", "|---|---|"]
    lines += [f"| {name} | {'-' if value is None else value} |" for name, value in rows]
    return "\n".join(lines)
