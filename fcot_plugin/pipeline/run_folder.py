"""The layout of an ``fcot distill`` run folder, its lock, and what each stage depended on.

Every reader of a run folder (the pipeline, the report, the benchmarks) goes through :class:`RunFolder`, so
the layout lives here only::

    config.json             the settings of the latest run (tokens redacted)
    tasks/                  --dataset: the lm-eval tasks of the user's data, with the data and fcot_task.json
    teacher/                lm-eval output of the teacher (absent for the paper's rationales)
    teacher-cache.sqlite    the teacher's ledger: every response it was paid for, kept when the teacher stage runs
                            again under other settings (only --restart moves it aside, to .previous/)
    data/                   curated dataset + card
    train.yaml              the recipe config the student was trained with (usable with recipes/sft.py)
    student/                the trained student (Hugging Face folder + card with results); with epoch selection
                            the validation-chosen epoch, and student/checkpoint-N/ the chosen and the last epoch
    validation/epoch-<k>/   lm-eval results of epoch k on the held-out validation slice (data/validation.json)
    eval/<name>/            lm-eval results and samples of the trained student: student (and student_last)
    baselines/<name>/       the untrained student's (zeroshot, zscot) and baseline.json, the settings they were
                            scored under: kept while those hold, so training longer does not score them again
    report.md, report.json, accuracy.png, epochs.png (validation accuracy per epoch)
    report.html             one self-contained page: the accuracies, every teacher rationale kept or rejected
                            with the reason, and the student's test outputs before and after training
    stages/<stage>.json     written when a stage finishes: its results, and under "fcot_stage" its fingerprint
    stages/<stage>.started.json   written when a stage starts: an interrupted stage resumes only under it
    .previous/<time>/       outputs that a --restart or a changed setting replaced (moved here, never reused)
    .fcot.lock              the running fcot process (pid, host, command)
    .fcot-folder.json       the marker: made by fcot distill (core.folders); only the entries above ever move

Anything else in the folder is the user's: ``--restart`` and a changed setting move only the entries of this layout,
and a folder without the marker that holds files is refused before anything runs. When a stage is reused or run
again, and what its record holds, is :mod:`fcot_plugin.pipeline.stages`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import read_json_object
from fcot_plugin.core.folders import mark_folder, written_entries
from fcot_plugin.core.secrets import redact_text
from fcot_plugin.pipeline.settings import STAGES

# What each stage writes (relative to the run folder), moved aside when it runs again from scratch.
STAGE_OUTPUTS = {
    "teacher": ("teacher",),
    "curate": ("data",),
    "train": ("train.yaml", "student", "validation"),
    "evaluate": ("eval",),
    "report": ("report.md", "report.json", "report.html", "accuracy.png", "epochs.png"),
    "push": (),
}
# The untrained student's baselines, scored by the evaluate stage; they depend on the settings that feed
# ``baselines`` (pipeline.settings), none of training's.
BASELINE_NAMES = ("zeroshot", "zscot")
BASELINE_RECORD = "baseline.json"  # beside a baseline's results: the settings it was scored under
BOOKKEEPING = "fcot_stage"  # the key of a stage record that holds its fingerprint, settings and output digest
TEACHER_CACHE = "teacher-cache.sqlite"
RESTART_FIX = "pass --restart to start the run over (earlier outputs move to .previous/)"
#: Every top-level entry fcot distill writes in a run folder (besides STAGE_OUTPUTS): --restart moves only these
RUN_ENTRIES = (
    "config.json",
    "stages",
    "baselines",
    "logs",
    "tasks",
    TEACHER_CACHE,
    f"{TEACHER_CACHE}-wal",
    f"{TEACHER_CACHE}-shm",
    f"{TEACHER_CACHE}.lock",
    ".student-weights.json",
    ".content-digests.json",
)
MADE_BY = "fcot distill"


class RunFolder:
    """Paths of a run folder and readers of its state files (each damaged file is named with its fix)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    # ------------------------------------------------------------------ layout
    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def tasks_dir(self) -> Path:
        """``--dataset``: the lm-eval task folder of the user's data (YAMLs, data, fcot_task.json)."""
        return self.path / "tasks"

    @property
    def stages_dir(self) -> Path:
        return self.path / "stages"

    @property
    def teacher_dir(self) -> Path:
        return self.path / "teacher"

    @property
    def teacher_cache(self) -> Path:
        """The teacher's response cache: outside ``teacher/``, so a teacher that runs again reads it."""
        return self.path / TEACHER_CACHE

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def train_config(self) -> Path:
        return self.path / "train.yaml"

    @property
    def student_dir(self) -> Path:
        return self.path / "student"

    def eval_dir(self, name: str) -> Path:
        """Where evaluation ``name`` is kept: baselines/ for the untrained student's (kept across re-training)."""
        return self.path / ("baselines" if name in BASELINE_NAMES else "eval") / name

    def baseline_record(self, name: str) -> Path:
        return self.eval_dir(name) / BASELINE_RECORD

    def validation_dir(self, epoch: int) -> Path:
        return self.path / "validation" / f"epoch-{epoch}"

    @property
    def report_md(self) -> Path:
        return self.path / "report.md"

    @property
    def report_json(self) -> Path:
        return self.path / "report.json"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def plot(self) -> Path:
        return self.path / "accuracy.png"

    @property
    def epochs_plot(self) -> Path:
        return self.path / "epochs.png"

    @property
    def lock_file(self) -> Path:
        return self.path / ".fcot.lock"

    @property
    def previous_dir(self) -> Path:
        return self.path / ".previous"

    def stage_file(self, stage: str) -> Path:
        return self.stages_dir / f"{stage}.json"

    def started_file(self, stage: str) -> Path:
        return self.stages_dir / f"{stage}.started.json"

    # ------------------------------------------------------------------ safety
    def mark(self) -> None:
        """Create the folder with its marker, listing every entry of the layout above."""
        mark_folder(self.path, MADE_BY, self.own_entries())

    @staticmethod
    def own_entries() -> list[str]:
        """The top-level entries of the layout above: the only ones fcot distill moves or replaces."""
        outputs = {name.split("/")[0] for names in STAGE_OUTPUTS.values() for name in names}
        return sorted({*outputs, *RUN_ENTRIES})

    # ------------------------------------------------------------------ readers
    def config(self) -> dict[str, Any]:
        return read_json_object(self.config_file, RESTART_FIX, required={"task": str})

    def stage_record(self, stage: str) -> dict[str, Any] | None:
        """What a finished stage recorded, or None when it has not finished."""
        path = self.stage_file(stage)
        if not path.is_file():
            return None
        record = read_json_object(path, RESTART_FIX)
        kept = record.get(BOOKKEEPING, {})
        if (
            not isinstance(kept, dict)
            or not isinstance(kept.get("settings", {}), dict)
            or not all(isinstance(kept.get(key), str | None) for key in ("fingerprint", "outputs"))
        ):
            raise FcotError(f"{path} is damaged ({BOOKKEEPING} is not a stage record); {RESTART_FIX}")
        return record

    def started_record(self, stage: str) -> dict[str, Any] | None:
        path = self.started_file(stage)
        return read_json_object(path, RESTART_FIX) if path.is_file() else None

    def stage_records(self) -> dict[str, dict[str, Any]]:
        """The records of every finished stage, in pipeline order."""
        return {stage: record for stage in STAGES if (record := self.stage_record(stage)) is not None}

    def results(self, stage: str) -> dict[str, Any]:
        """A finished stage's results (what the stage returned), without its bookkeeping."""
        return {key: value for key, value in (self.stage_record(stage) or {}).items() if key != BOOKKEEPING}

    def all_results(self) -> dict[str, dict[str, Any]]:
        """The results of every finished stage, in pipeline order."""
        return {stage: self.results(stage) for stage in self.stage_records()}

    # ------------------------------------------------------------------ moving aside
    def move_aside(self, names: tuple[str, ...] | list[str], stamp: str) -> Path | None:
        """Move the named entries into ``.previous/<stamp>/``; returns that folder if anything moved."""
        target = self.previous_dir / stamp
        moved = False
        for name in names:
            source = self.path / name
            if not source.exists() and not source.is_symlink():
                continue
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(destination))
            moved = True
        return target if moved else None

    def move_everything_aside(self, stamp: str) -> Path | None:
        """``--restart``: every earlier output fcot wrote goes to ``.previous/<stamp>/``; the user's files stay."""
        if not self.path.is_dir():
            return None
        keep = {self.previous_dir.name, self.lock_file.name}
        names = written_entries(self.path)
        return self.move_aside([name for name in names if name not in keep], stamp)


# ---------------------------------------------------------------------- the lock


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """One writer per run folder: an ``flock`` on ``.fcot.lock`` that names its holder.

    The kernel drops the lock when its process dies, so a lock file left by a killed run is taken over; a
    second live run fails at once with a line naming the holder (pid, host, start time, command).
    """

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.descriptor: int | None = None
        self.taken_over: dict[str, Any] | None = None

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.run.lock_file.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return {}

    def acquire(self) -> RunLock:
        path = self.run.lock_file
        while True:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(descriptor)
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                holder = self.holder()
                raise FcotError(
                    f"{self.run.path} is in use by another fcot run (pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')} since {holder.get('started', '?')}: {holder.get('command', '?')}); "
                    f"wait for it to finish, or pass another --run_dir"
                ) from None
            try:
                same_file = os.fstat(descriptor).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(descriptor)  # the previous holder removed the file between our open and flock: retry
        previous = self.holder()
        if previous.get("pid"):
            alive = previous.get("host") == socket.gethostname() and _process_alive(int(previous["pid"]))
            self.taken_over = {**previous, "alive": alive}
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": redact_text(" ".join(sys.argv)),
        }
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(info) + "\n").encode(), 0)
        os.fsync(descriptor)
        self.descriptor = descriptor
        return self

    def release(self) -> None:
        if self.descriptor is None:
            return
        self.run.lock_file.unlink(missing_ok=True)  # while still holding it, so no one locks a dead file
        os.close(self.descriptor)
        self.descriptor = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()


def bookkeeping(record: dict[str, Any] | None) -> dict[str, Any]:
    """The fingerprint, settings and output digest a stage record holds (empty for none)."""
    return (record or {}).get(BOOKKEEPING) or {}
