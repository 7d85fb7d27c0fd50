"""A durable cache of teacher responses: nothing a paid teacher finished is generated twice.

lm-eval's ``--use_cache`` cannot do this job for a teacher: it skips sampled requests, keys on
``(prompt, gen_kwargs)`` without the repeat index (D samples share one entry) or zscot's stage-2 trigger, and
writes only when a whole batch returns. This cache is one SQLite file in WAL mode with ``synchronous=FULL``:
each entry is committed (and on disk) the moment its response is known, so a run killed at any point keeps
everything that finished.

The file is the ledger of everything a teacher was paid for, and it is never thrown away: one file holds the
responses of any number of teachers. An entry's key is everything that changes the text: the teacher's
fingerprint (the base model and every argument that changes the text), stage, prompt, generation kwargs and
sample index (the stage-2 prompt holds the rationale and the trigger; its kwargs hold the answer budget). A run
with other settings reads what still matches and generates only the rest.

One process at a time writes a cache file: it holds an ``flock`` on ``<file>.lock`` while the cache is open, and a
second run on the same file stops at once with a line naming the holder, so two runs never pay for the same
response twice.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError

SCHEMA = "fcot-teacher-cache/2"


class CacheMismatchError(FcotError):
    """The file is not an fcot teacher cache."""


class CacheInUseError(FcotError):
    """Another process has the cache file open."""


# path -> [descriptor, users]: this process's locks (several teachers in one process may share a file)
_HELD: dict[str, list[int]] = {}


def _lock(path: Path) -> None:
    lock_path = str(path.with_name(path.name + ".lock"))
    if lock_path in _HELD:
        _HELD[lock_path][1] += 1
        return
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(descriptor)
        if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise CacheInUseError(
            f"the teacher cache {path} is in use by {holder}; two runs sharing one cache would pay for the same "
            "responses twice: wait for that run to finish, or pass another cache path"
        ) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _HELD[lock_path] = [descriptor, 1]


def _unlock(path: Path) -> None:
    lock_path = str(path.with_name(path.name + ".lock"))
    held = _HELD.get(lock_path)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        os.close(held[0])
        del _HELD[lock_path]


def _open(path: Path) -> sqlite3.Connection:
    """The ledger file, its tables created: autocommit, WAL, every commit synced (``synchronous=FULL``)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, stage INTEGER NOT NULL, "
        "text TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER)"
    )
    return db


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def entry_key(stage: int, prompt: str, gen_kwargs: dict[str, Any], sample: int, teacher: dict[str, Any]) -> str:
    """The key of one response: teacher, stage (1 rationale, 2 answer), exact prompt, generation kwargs, sample
    index."""
    body = {"stage": stage, "prompt": prompt, "gen_kwargs": gen_kwargs, "sample": sample, "teacher": teacher}
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


class ResponseCache:
    """``get``/``put`` of one teacher's responses (``fingerprint``) in a ledger file shared by every teacher."""

    def __init__(self, path: str | Path, fingerprint: dict[str, Any]) -> None:
        self.path = Path(path).expanduser()
        self.fingerprint = fingerprint
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _lock(self.path)  # before SQLite opens: creating the file is not raced either
        try:
            self._db = _open(self.path)
            self._check_schema()
        except sqlite3.DatabaseError as error:
            _unlock(self.path)
            raise CacheMismatchError(
                f"{self.path} is not an fcot teacher cache ({error}); pass another cache path"
            ) from None

    def _check_schema(self) -> None:
        """Record the schema of a new file; refuse a file of another schema (its keys would never match)."""
        schema = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if schema is None:
            if self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]:
                raise sqlite3.DatabaseError("responses without a schema")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA,))
        elif schema != (SCHEMA,):
            raise sqlite3.DatabaseError(f"schema {schema[0]}, not {SCHEMA}")

    def key(self, stage: int, prompt: str, gen_kwargs: dict[str, Any], sample: int) -> str:
        """This teacher's key for one response (see :func:`entry_key`)."""
        return entry_key(stage, prompt, gen_kwargs, sample, self.fingerprint)

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
        _unlock(self.path)


def copy_entries(source: str | Path, target: str | Path) -> int:
    """Copy every response of the ledger ``source`` that ``target`` lacks into ``target`` (created if missing);
    returns how many were added.

    Several run folders of one teacher (D=1, then D=4 of the same questions) each keep their own ledger; seeding the
    next one with the earlier one's entries means no sample is generated twice. Entries are keyed by teacher, so a
    copied entry only ever serves the teacher that wrote it. Both files are held under their locks meanwhile.
    """
    source, target = Path(source).expanduser(), Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)  # a run folder not made yet: its lock file goes there too
    _lock(source)
    try:
        _lock(target)
        try:
            with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as db:
                schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                rows = db.execute("SELECT * FROM responses").fetchall() if schema == (SCHEMA,) else None
            if rows is None:
                raise CacheMismatchError(
                    f"{source} is not an fcot teacher ledger of schema {SCHEMA}; let the run generate its responses "
                    "instead"
                )
            db = _open(target)
            try:
                schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if schema not in (None, (SCHEMA,)):
                    raise CacheMismatchError(
                        f"{target} is a teacher ledger of schema {schema[0]}; pass another target"
                    )
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA,))
                before = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                db.execute("BEGIN")
                db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
                return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] - before
            finally:
                db.close()
        finally:
            _unlock(target)
    finally:
        _unlock(source)
