"""The stages of an ``fcot distill`` run: what each depends on, when a finished one is reused, what it records.

A stage's fingerprint is a hash of the settings it reads (declared with what they feed in
:mod:`fcot_plugin.pipeline.settings`) and of the content of what the stages it reads from wrote (their output
digests): a stage that ran again and wrote the same files does not re-run what follows. A local student's weights
count by content, so new weights at the same path re-train; a file's digest is reused only while its size,
modification time, change time and inode are all the same (``.content-digests.json``), and the change time cannot
be set back by hand. A re-run reuses a stage only when its fingerprint and its outputs are unchanged; otherwise the
stage's outputs are moved aside to ``.previous/`` and it runs again. The folder's layout and lock live in
:mod:`fcot_plugin.pipeline.run_folder`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import write_json_atomic
from fcot_plugin.core.numbers import NON_NEGATIVE
from fcot_plugin.core.secrets import redact
from fcot_plugin.pipeline.run_folder import BOOKKEEPING, STAGE_OUTPUTS, RunFolder, bookkeeping
from fcot_plugin.pipeline.settings import BASELINES, STAGES, DistillArguments, feeds_of
from fcot_plugin.teacher.spec import TeacherSpec
from fcot_plugin.training.checkpoints import WEIGHT_FILE

logger = logging.getLogger(__name__)

#: The stages whose outputs each stage reads.
STAGE_INPUTS = {
    "teacher": (),
    "curate": ("teacher",),
    "train": ("curate",),
    "evaluate": ("train",),
    "report": ("teacher", "curate", "train", "evaluate"),
    "push": ("curate", "train", "evaluate"),
}
#: Settings derived from a declared one (pipeline.settings): each feeds wherever its source does.
DERIVED_SETTINGS = {"student_weights": "student", "dataset_digest": "dataset"}
# Not part of what a stage produced: cards rewritten by later stages, training checkpoints (skipped where they
# are walked), and files that SQLite and locks leave beside a database while a process has it open.
_DIGEST_SKIPPED = ("README.md",)
_DIGEST_SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")
# Files up to this size are fed to a stage's digest byte by byte; larger ones by their (cached) SHA-256.
_HASH_LIMIT = 16 * 2**20
#: How often a running stage notes its seconds so far in its started marker: a stage resumed after a kill then
#: records the time of all its attempts (to within this), not only the last one's.
HEARTBEAT_SECONDS = 30.0


class PipelineError(FcotError):
    """A run that cannot go on; the message says what to do."""


# ---------------------------------------------------------------------- content digests


class ContentDigests:
    """SHA-256 of files by content; a digest is reused only while the file's size, modification time, change time
    and inode all match what they were when it was read, so a changed file is always read again."""

    def __init__(self, memo_file: Path | None) -> None:
        self.memo_file = memo_file
        self.memo: dict[str, Any] = {}
        if memo_file is not None and memo_file.is_file():
            try:
                loaded = json.loads(memo_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = {}
            self.memo = loaded if isinstance(loaded, dict) else {}
        self.changed = False

    def of(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]
        known = self.memo.get(key)
        if isinstance(known, dict) and known.get("stat") == identity and isinstance(known.get("sha256"), str):
            return known["sha256"]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**22), b""):
                digest.update(block)
        self.memo[key] = {"stat": identity, "sha256": digest.hexdigest()}
        self.changed = True
        return digest.hexdigest()

    def save(self) -> None:
        if self.changed and self.memo_file is not None and self.memo_file.parent.is_dir():
            write_json_atomic(self.memo_file, self.memo)


def _digests(run: RunFolder) -> ContentDigests:
    return ContentDigests(run.path / ".content-digests.json" if run.path.is_dir() else None)


def _hash_file(path: Path, digest: Any, digests: ContentDigests) -> None:
    stat = path.stat()
    digest.update(f"{stat.st_size}".encode())
    if stat.st_size > _HASH_LIMIT:
        digest.update(digests.of(path).encode())
        return
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)


def outputs_digest(run: RunFolder, stage: str) -> str:
    """A digest of the content of what ``stage`` wrote."""
    digest, digests = hashlib.sha256(), _digests(run)
    try:
        for name in STAGE_OUTPUTS[stage]:
            root = run.path / name
            if root.is_file():
                digest.update(name.encode())
                _hash_file(root, digest, digests)
                continue
            if not root.is_dir():
                digest.update(f"{name}:absent".encode())
                continue
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(run.path)
                if not path.is_file() or path.name in _DIGEST_SKIPPED or relative.parts[1].startswith("checkpoint-"):
                    continue
                if path.name.endswith(_DIGEST_SKIPPED_SUFFIXES):
                    continue
                digest.update(str(relative).encode())
                _hash_file(path, digest, digests)
    finally:
        digests.save()
    return digest.hexdigest()


def student_weights(student: str, run: RunFolder) -> str | None:
    """A digest of a local student's weights and config by content (None for a Hub id). A file unchanged since
    it was last read (size, modification and change time, inode) is not read again (:class:`ContentDigests`)."""
    folder = Path(student).expanduser()
    if not folder.is_dir():
        return None
    files = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and (WEIGHT_FILE.match(path.name) or path.name in ("config.json", "adapter_config.json"))
    )
    digests, digest = _digests(run), hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}:{digests.of(path)}".encode())
    digests.save()
    return digest.hexdigest()


# ---------------------------------------------------------------------- fingerprints


def dependent_settings(dependent: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The (redacted) settings that ``dependent`` (a stage, or ``baselines``) reads, as declared in
    :class:`~fcot_plugin.pipeline.settings.DistillArguments`: a new token alone does not re-run a teacher."""
    recorded = {}
    for name, feeds in feeds_of(DistillArguments).items():
        when = dict(feeds.when)
        reads = dependent in feeds.stages or (dependent == BASELINES and feeds.baselines)
        reads = reads or (dependent in when and bool(settings.get(when[dependent])))
        if reads and name in settings:
            recorded[name] = settings[name]
    for derived, source in DERIVED_SETTINGS.items():
        if source in recorded and settings.get(derived) is not None:
            recorded[derived] = settings[derived]
    if "teacher" in recorded and not settings.get("teacher_engine"):  # served by fcot: the model itself
        # the teacher as far as it decides the text (no URL, port, concurrency, secret)
        recorded["teacher"] = TeacherSpec.parse(recorded["teacher"]).identity()
    return redact(recorded)


def stage_settings(stage: str, settings: dict[str, Any]) -> dict[str, Any]:
    return dependent_settings(stage, settings)


def baseline_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The (redacted) settings the untrained student's baselines depend on: none of training's."""
    return dependent_settings(BASELINES, settings)


def fingerprint(run: RunFolder, stage: str, settings: dict[str, Any]) -> str:
    """Hash of ``stage``'s settings and of the content the stages it reads wrote."""
    inputs = {upstream: bookkeeping(run.stage_record(upstream)).get("outputs") for upstream in STAGE_INPUTS[stage]}
    payload = json.dumps({"settings": dependent_settings(stage, settings), "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def changed_settings(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``epochs: 1 -> 2, seed: 42 -> 1``: which recorded settings differ."""
    keys = sorted(key for key in {*old, *new} if old.get(key) != new.get(key))
    return ", ".join(f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys)


def record_stage(
    run: RunFolder, stage: str, fingerprint_value: str, settings: dict[str, Any], results: dict, attempts: int = 1
) -> None:
    """Write ``stages/<stage>.json`` (results + bookkeeping) atomically, then drop the stage's started marker.

    ``attempts`` counts the runs it took (a kill and a resume make two); ``results["seconds"]`` covers them all.
    """
    stage_info = {
        "fingerprint": fingerprint_value,
        "settings": stage_settings(stage, settings),
        "outputs": outputs_digest(run, stage),
        "attempts": attempts,
    }
    write_json_atomic(run.stage_file(stage), {**redact(results), BOOKKEEPING: stage_info})
    run.started_file(stage).unlink(missing_ok=True)


# ---------------------------------------------------------------------- the runner


def _count(value: Any, default: float) -> Any:
    """A number from a started marker, or ``default`` where the marker predates it or was edited by hand."""
    return value if NON_NEGATIVE.holds(value) else default


class StageClock:
    """A stage's seconds over all its attempts, kept in its started marker while it runs.

    A kill leaves no chance to write anything, so the marker is rewritten every :data:`HEARTBEAT_SECONDS`; the
    attempt that finishes adds its own time to what the marker says the earlier ones took.
    """

    def __init__(self, marker_file: Path, marker: dict[str, Any], earlier_seconds: float) -> None:
        self.marker_file = marker_file
        self.marker = marker
        self.earlier_seconds = earlier_seconds
        self._started_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"{marker_file.stem} clock", daemon=True)

    def seconds(self) -> float:
        return self.earlier_seconds + time.monotonic() - self._started_at

    def _write(self) -> None:
        write_json_atomic(self.marker_file, {**self.marker, "seconds": round(self.seconds(), 1)})

    def _note(self) -> None:
        """``_write`` while the stage runs or ends: a full disk is the stage's to report; the marker keeps its
        last figure."""
        try:
            self._write()
        except OSError:
            pass

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._note()

    def __enter__(self) -> StageClock:
        self._write()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is not None:  # interrupted or failed: the next attempt starts from the exact figure
            self._note()


class StageRunner:
    """Runs a stage unless it finished with the same fingerprint and outputs; records what it returns.

    ``stamp`` names the ``.previous/<stamp>/`` folder that receives whatever this run replaces.
    """

    def __init__(self, folder: RunFolder, settings: dict[str, Any], stamp: str) -> None:
        self.folder = folder
        self.settings = settings
        self.stamp = stamp

    def run(self, number: int, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        total = len(STAGES)
        expected = fingerprint(self.folder, stage, self.settings)
        earlier: dict[str, Any] = {}  # the started marker of an interrupted attempt this run resumes
        found = self.folder.stage_record(stage)
        if found is not None:
            record = bookkeeping(found)
            if record.get("fingerprint") == expected and record.get("outputs") == outputs_digest(self.folder, stage):
                logger.info(
                    "[%d/%d] %s: done in an earlier run with the same settings and inputs, skipped",
                    number,
                    total,
                    stage,
                )
                return self.folder.results(stage)
            self._start_over(number, stage, self._why_again(stage, record, expected))
        else:
            started = self.folder.started_record(stage)
            if started is not None and started.get("fingerprint") == expected:
                logger.info("[%d/%d] %s: resuming an interrupted run", number, total, stage)
                earlier = started
            else:
                self._start_over(number, stage, "interrupted under other settings" if started else None)
        marker = {
            "fingerprint": expected,
            "settings": stage_settings(stage, self.settings),
            "attempts": _count(earlier.get("attempts"), 1) + 1 if earlier else 1,
        }
        logger.info("[%d/%d] %s ...", number, total, stage)
        with StageClock(self.folder.started_file(stage), marker, _count(earlier.get("seconds"), 0.0)) as clock:
            try:
                results = work()
            except OSError as error:
                raise self._disk_error(stage, error) from None
        results["seconds"] = round(clock.seconds(), 1)
        attempts = marker["attempts"]
        record_stage(self.folder, stage, expected, self.settings, results, attempts)
        over = f" over {attempts} attempts" if attempts > 1 else ""
        logger.info("[%d/%d] %s: finished in %.0f s%s", number, total, stage, results["seconds"], over)
        return results

    def _why_again(self, stage: str, record: dict[str, Any], expected: str) -> str:
        changed = changed_settings(record.get("settings", {}), stage_settings(stage, self.settings))
        if changed:
            return f"settings changed ({changed})"
        if record.get("fingerprint") != expected:
            return "an earlier stage ran again or changed"
        return "its outputs changed or went missing since it finished"

    def _start_over(self, number: int, stage: str, reason: str | None) -> None:
        stages = self.folder.stages_dir.name
        names = [*STAGE_OUTPUTS[stage], f"{stages}/{stage}.json", f"{stages}/{stage}.started.json"]
        moved = self.folder.move_aside(names, self.stamp)
        if reason:
            where = f"; earlier outputs moved to {moved}" if moved else ""
            logger.info("[%d/%d] %s: %s, running it again%s", number, len(STAGES), stage, reason, where)

    def _disk_error(self, stage: str, error: OSError) -> Exception:
        where = error.filename or self.folder.path
        again = f"finished stages are kept and {stage} starts over"
        if error.errno == errno.ENOSPC:
            return PipelineError(
                f"the disk is full (stage {stage}, {where}); free some space and run the same command again: {again}"
            )
        if error.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            return PipelineError(
                f"cannot write {where} (stage {stage}: {error.strerror}); make it writable and run "
                f"the same command again: {again}"
            )
        return error
