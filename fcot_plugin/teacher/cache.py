"""A durable cache of teacher responses: nothing a paid teacher finished is generated twice.

lm-eval's ``--use_cache`` cannot do this job for a teacher: it skips sampled requests, keys on
``(prompt, gen_kwargs)`` without the repeat index (D samples share one entry) or zscot's stage-2 trigger, and
writes only when a whole batch returns. This cache is one SQLite file in WAL mode with ``synchronous=FULL``:
each entry is committed (and on disk) the moment its response is known, so a run killed at any point keeps
everything that finished.

The file holds one teacher: its fingerprint (the base model and every argument that changes the text) is stored
when the file is made, and a different teacher gets a one-line error instead of another model's responses.
An entry's key is everything else that changes the text: stage, prompt, generation kwargs and sample index
(the stage-2 prompt holds the rationale and the trigger; its kwargs hold the answer budget).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError

SCHEMA = "fcot-teacher-cache/1"


class CacheMismatchError(FcotError):
    """The cache file belongs to another teacher, or is not an fcot cache at all."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def entry_key(stage: int, prompt: str, gen_kwargs: dict[str, Any], sample: int) -> str:
    """The key of one response: stage (1 rationale, 2 answer), exact prompt, generation kwargs, sample index."""
    payload = _canonical({"stage": stage, "prompt": prompt, "gen_kwargs": gen_kwargs, "sample": sample})
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """``get``/``put`` of teacher responses in one SQLite file that belongs to one teacher ``fingerprint``."""

    def __init__(self, path: str | Path, fingerprint: dict[str, Any]) -> None:
        self.path = Path(path).expanduser()
        self.fingerprint = fingerprint
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, stage INTEGER NOT NULL, "
                "text TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER)"
            )
        except sqlite3.DatabaseError as error:
            raise CacheMismatchError(
                f"{self.path} is not an fcot teacher cache ({error}); pass another cache path"
            ) from None
        self._check_fingerprint()

    def _check_fingerprint(self) -> None:
        wanted = {"schema": SCHEMA, **self.fingerprint}
        row = self._db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        if row is None:
            if self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]:
                raise CacheMismatchError(f"{self.path} has responses but no teacher fingerprint; pass another path")
            self._db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (_canonical(wanted),))
            return
        stored = json.loads(row[0])
        if _canonical(stored) != _canonical(wanted):
            changed = sorted(
                key for key in {**stored, **wanted} if _canonical(stored.get(key)) != _canonical(wanted.get(key))
            )
            details = ", ".join(f"{key}: {stored.get(key)!r} -> {wanted.get(key)!r}" for key in changed)
            raise CacheMismatchError(
                f"the teacher cache {self.path} was made by another teacher or settings ({details}); "
                "pass another cache path, or delete the file to regenerate every response"
            )

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT text FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, stage: int, text: str, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        """Store one response; committed and synced before this returns (autocommit, WAL, synchronous=FULL)."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
            (key, stage, text, prompt_tokens, completion_tokens),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
