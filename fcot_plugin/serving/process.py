"""A server process for the length of a ``with`` block, whatever the engine: started under the
:mod:`~fcot_plugin.serving.watchdog` in its own process group, progress while the model loads, ready when
``/v1/models`` lists the model, and stopped, with every process of its group, when the block ends, fails, or the
process gets Ctrl-C or SIGTERM. An ``atexit`` hook and, on Linux, the parent-death signal (sent when the thread
that entered the block ends, or the process is killed) are the fallbacks. The server's output goes to a log
file; a server that dies during start-up is one line naming it.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fcot_plugin.core.secrets import scrub_files, secret_values
from fcot_plugin.serving import watchdog
from fcot_plugin.serving.endpoint import HOST, EngineError, served_names

PROGRESS_EVERY = 10.0  # seconds between start-up progress lines
STOP_GRACE = 15.0  # seconds a stopping server gets before SIGKILL


def cpu_count() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def tail(path: Path, lines: int = 1, size: int = 8192) -> list[str]:
    """The last non-empty lines of ``path`` (stripped), or [] if it cannot be read."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    found = [" ".join(line.split()) for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return found[-lines:]


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - no /proc: ask the kernel whether the group has anyone left
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(process: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    """Stop the server's process group (its leader, the watchdog, stops the rest); SIGKILL whatever is left a
    little after ``grace`` seconds, and reap the leader."""
    pgid = process.pid  # start_new_session: the leader's pid is the group's id
    if process.poll() is None:
        process.terminate()
    deadline = time.monotonic() + grace + 10
    while time.monotonic() < deadline:
        process.poll()
        if process.returncode is not None and not group_members(pgid):
            break
        time.sleep(0.2)
    else:
        _signal_group(pgid, signal.SIGKILL)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot end
        pass


def _kill_group_at_exit(process: subprocess.Popen) -> None:
    """The ``atexit`` fallback: nothing of the server outlives this interpreter."""
    if process.poll() is None or group_members(process.pid):
        _signal_group(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the server's watchdog SIGTERM if this process dies without cleaning
    up (SIGKILL, the OOM killer). Prepared here, so the child after ``fork`` only makes one C call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)
    return lambda: prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)


@contextmanager
def _stop_on_sigterm(on_signal: Callable[[], None]) -> Iterator[None]:
    """For the block: SIGTERM raises ``KeyboardInterrupt`` (so ``finally`` blocks run, as for Ctrl-C); a handler
    the program set already is called after ``on_signal``. Only the main thread can set handlers; elsewhere the
    ``atexit`` hook and the parent-death signal remain."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return

    def handler(signum, frame):
        if callable(previous):
            on_signal()
            previous(signum, frame)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report(line: str) -> None:
    print(f"fcot: {line}", file=sys.stderr, flush=True)


@contextmanager
def running_server(
    command: Sequence[str],
    env: dict[str, str],
    log_path: Path,
    *,
    engine: str,
    model: str,
    name: str,
    port: int,
    start_timeout: float,
    progress: Callable[[str], None] | None,
) -> Iterator[int]:
    """Run ``command`` under the watchdog for the block; yield its pid once ``/v1/models`` on ``port`` lists
    ``name``."""
    base = f"http://{HOST}:{port}/v1"
    say = progress or (lambda line: None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", watchdog.__file__, str(STOP_GRACE), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )

    def at_exit() -> None:  # one per server: atexit.unregister removes every registration of a function
        _kill_group_at_exit(process)

    atexit.register(at_exit)
    try:
        with _stop_on_sigterm(lambda: stop_group(process)):
            started = time.monotonic()
            next_report = started + PROGRESS_EVERY
            say(f"starting {engine} for {model} on port {port} (pid {process.pid}, log {log_path})")
            while True:
                code = process.poll()
                if code is not None:
                    last = " | ".join(tail(log_path, 3)) or "(empty)"
                    raise EngineError(
                        f"the {engine} server for {model} exited with code {code} during start-up; see "
                        f"{log_path}, which ends: {last}"
                    )
                served = served_names(f"{base}/models")
                if served is not None and name in served:
                    break
                now = time.monotonic()
                if now - started > start_timeout:
                    raise EngineError(
                        f"the {engine} server for {model} did not serve it within {start_timeout:g} s; see "
                        f"{log_path} (last line: {' '.join(tail(log_path)) or '(empty)'})"
                    )
                if now >= next_report:
                    say(f"{engine} loading {model}: {now - started:.0f} s; log: {' '.join(tail(log_path))[:200]}")
                    next_report = now + PROGRESS_EVERY
                time.sleep(0.5)
            called = f" as {name}" if name != model else ""
            say(
                f"{engine} serves {model}{called} at {base}/completions (ready after "
                f"{time.monotonic() - started:.0f} s)"
            )
            yield process.pid
    finally:
        stop_group(process, STOP_GRACE)
        atexit.unregister(at_exit)
        scrub_files(log_path, secret_values())  # the server wrote its log itself, past fcot's redaction
