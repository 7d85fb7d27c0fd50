"""fcot never deletes, moves or overwrites a file it did not write: the one check every command makes first.

A folder an fcot command writes into carries a marker, ``.fcot-folder.json``, naming the command that made it
and the entries it wrote there. ``--overwrite``, ``--restart`` and ``.previous/`` only ever touch entries a
marker lists; anything else in the folder is the
user's and stays where it is.

:func:`check_output_folder` runs before anything else does. It refuses, in one line:

* an empty path, ``.``, the current folder, ``$HOME``, ``/`` or any folder above one of them;
* a folder that holds files and carries no marker (unless the command recognises it as its own: ``adopt``, a run
  folder whose run is starting);
* a path that cannot be a folder here: a file in the way, a part over 255 bytes, a symbolic-link loop, a
  read-only or forbidden place, ``/proc``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.secrets import redact_text

MARKER = ".fcot-folder.json"
#: The longest file name (one path part) Linux and macOS file systems take, in bytes
NAME_MAX = 255


#: Why the operating system refused, in words a user acts on, and what to do
_REASONS = {
    errno.ENOSPC: ("the disk is full", "free some space and run the same command again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space and run the same command again"),
    errno.EROFS: ("read-only file system", "pass a path on a writable file system"),
    errno.EACCES: ("permission denied", "make it writable and run the same command again"),
    errno.EPERM: ("operation not permitted", "make it writable and run the same command again"),
    errno.ENAMETOOLONG: ("a file name is too long", "pass a shorter path"),
    errno.ELOOP: ("a symbolic link loop", "fix the link or pass another path"),
    errno.ENOENT: ("no such file or folder", "pass a path in a folder that exists and can hold files"),
    errno.ENOTDIR: ("a part of the path is a file", "pass a folder path"),
}


def _os_error_reason(error: OSError) -> str:
    """The system's reason, or the first line of a library's message (an ``OSError`` without an errno, such as
    transformers' "Can't load tokenizer for ..."), cut to fit one line."""
    if error.strerror:
        return error.strerror.lower()
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__.lower()
    first = redact_text(lines[0])
    return first if len(first) <= 200 else first[:199] + "…"


def os_error_line(error: OSError, what: str = "") -> str:
    """One line for an ``OSError``: what it was about, the reason, the path, and what to do about it."""
    unknown = (_os_error_reason(error), "check the path and run the same command again")
    reason, fix = _REASONS.get(error.errno, unknown)
    where = f" ({error.filename})" if error.filename is not None else ""
    return f"{what + ': ' if what else ''}{reason}{where}; {fix}"


def check_path_text(text: str, what: str) -> None:
    """A path holds no character a file name cannot have: NUL, or a lone surrogate the file system cannot encode."""
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError:
        encoded = b"\0"
    if b"\0" in encoded:
        raise FcotError(f"{what} {text!r} holds a character no path can have (NUL or a lone surrogate); pass a path")


def _absolute(text: str, what: str) -> Path:
    if not text.strip():
        raise FcotError(f"{what} is empty; pass a folder path, e.g. runs/my-run")
    check_path_text(text, what)
    absolute = Path(os.path.abspath(Path(text).expanduser()))
    for part in absolute.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise FcotError(
                f"{what} {text[:60]!r}...: a part of the path is {size} bytes, over the {NAME_MAX} a file name can "
                f"have; pass a shorter path"
            )
    return absolute


def _resolved(absolute: Path, what: str) -> Path:
    try:
        return absolute.resolve(strict=False)
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        raise FcotError(f"{what} {absolute}: a symbolic link loop; fix the link or pass another path") from None
    except OSError as error:
        raise FcotError(os_error_line(error, what)) from None


def _protected(resolved: Path) -> str | None:
    """Why ``resolved`` may never be an output folder: the current folder, home, the root, or above one."""
    places = {}
    for name, place in (("the current folder", Path.cwd), ("your home folder", Path.home), ("the root folder", None)):
        try:
            places[name] = Path("/") if place is None else place().resolve()
        except (OSError, RuntimeError, KeyError):  # no home (HOME unset, no passwd entry): nothing to protect
            continue
    for name, place in places.items():
        if resolved == place:
            return f"is {name}"
    for name, place in places.items():
        if place.is_relative_to(resolved):
            return f"holds {name}"
    return None


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a folder fcot made (``{"made_by": ..., "entries": [...]}``), None where there is none."""
    path = Path(folder) / MARKER
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("made_by"), str):
        return None
    entries = marker.get("entries")
    marker["entries"] = [name for name in entries if isinstance(name, str)] if isinstance(entries, list) else []
    return marker


def _probe(existing: Path, absolute: Path, what: str) -> None:
    """Make and remove a folder in ``existing``: the one sure way to know the path can be written."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fcot-probe-", dir=existing))
    except OSError as error:
        if error.filename is None or str(error.filename).startswith(str(existing / ".fcot-probe-")):
            error.filename = str(absolute)
        raise FcotError(os_error_line(error, what)) from None


def check_output_folder(
    path: str | Path | None,
    what: str,
    *,
    adopt: Callable[[Path], bool] | None = None,
    replaces: bool = True,
    made_by: str | None = None,
) -> Path:
    """The absolute path of an output folder that is safe to write into, or one line saying why not.

    ``replaces``: the command may replace or move what it wrote there before (``--overwrite``, ``--restart``,
    resumes); then only an empty folder, one with fcot's marker, or one ``adopt`` recognises as the command's own
    is taken, never the current folder, home or the root. A command that only adds new files (lm-eval's
    results) passes False: any folder that can be written then does, the current one included; the path is still
    checked (not empty, no NUL, no part over 255 bytes, no link loop, writable). ``made_by``: the command whose
    folders these are; one another fcot command made (a run folder as ``fcot curate --out``) is refused too.
    """
    text = "" if path is None else str(path)
    absolute = _absolute(text, what)
    resolved = _resolved(absolute, what)
    why = _protected(resolved)
    if why and replaces:
        raise FcotError(f"{what} {text!r} {why}; pass a new folder for fcot's outputs, e.g. runs/my-run")
    try:
        if resolved.exists() and not resolved.is_dir():
            raise FcotError(f"{what} {absolute} is a file; pass a folder")
        if resolved.is_dir():
            entries = sorted(entry.name for entry in resolved.iterdir())
            marker = read_marker(resolved)
            if replaces and made_by and marker and marker["made_by"] != made_by:
                raise FcotError(
                    f"{what} {absolute} was made by {marker['made_by']}, not {made_by}; pass another folder"
                )
            if replaces and entries and marker is None and not (adopt and adopt(resolved)):
                shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                raise FcotError(
                    f"{what} {absolute} holds files fcot did not write ({shown}); fcot replaces only what it wrote "
                    f"itself, so pass a new or empty folder"
                )
        existing = resolved
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise FcotError(f"{what} {absolute} cannot be made: {existing} is a file; pass a folder path")
    except OSError as error:
        raise FcotError(os_error_line(error, what)) from None
    _probe(existing, absolute, what)
    return absolute


def check_output_file(path: str | Path | None, what: str) -> Path:
    """A file fcot is to write (a benchmark's ``<output>.json``): not empty, not a folder, in a writable place."""
    text = "" if path is None else str(path)
    absolute = _absolute(text, what)
    resolved = _resolved(absolute, what)
    if resolved.is_dir() and _protected(resolved):
        raise FcotError(f"{what} {text!r} {_protected(resolved)}; pass a file path, e.g. results/run")
    check_output_folder(resolved.parent, f"{what}'s folder", replaces=False)
    return absolute


def mark_folder(folder: str | Path, made_by: str, entries: Iterable[str] = (), **record: Any) -> Path:
    """Create ``folder`` if needed and record (in its marker) the command that made it and the entries it wrote;
    entries a marker already lists stay listed. ``record``: more that the command reads back (sft.py: its task)."""
    from fcot_plugin.core.files import write_json_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = read_marker(folder) or {}
    listed = sorted({*marker.get("entries", []), *entries} - {MARKER})
    write_json_atomic(
        folder / MARKER, {**marker, **record, "made_by": marker.get("made_by", made_by), "entries": listed}
    )
    return folder


def written_entries(folder: str | Path) -> list[str]:
    """The entries of ``folder`` fcot wrote: those its marker lists."""
    folder = Path(folder)
    listed = {*(read_marker(folder) or {}).get("entries", [])} - {MARKER}
    return sorted(
        name
        for name in listed
        if "/" not in name
        and name not in ("", ".", "..")
        and ((folder / name).exists() or (folder / name).is_symlink())
    )


def remove_written(folder: str | Path, names: Iterable[str]) -> list[str]:
    """Delete the ``names`` of ``folder`` fcot wrote (see :func:`written_entries`); nothing else. Returns them."""
    folder = Path(folder)
    removed = []
    for name in names:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(name)
    return removed
