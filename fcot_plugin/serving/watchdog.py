"""The server's process-group leader: ``python -I -S watchdog.py <grace> <command...>``.

It runs the server, and when it gets SIGTERM or SIGINT (from :func:`fcot_plugin.serving.process.stop_group`, or
from Linux when fcot dies: the parent-death signal), or when the server exits on its own, it stops every process
of its group: SIGTERM, then SIGKILL after the grace period. vLLM needs this: its engine core outlives an API
server killed or interrupted during start-up. Standard library only, and run isolated (``-I -S``), so it starts
in milliseconds under any interpreter.
"""

import os
import signal
import subprocess
import sys
import time


def others(me: int) -> list[int]:
    """The live processes of the group ``me`` leads, except ``me``."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == me and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def stop_all(code: int, grace: float) -> None:
    """SIGTERM the whole group, wait up to ``grace`` seconds, SIGKILL what is left, exit with ``code``."""
    me = os.getpid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while others(me) and time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.2)
    for pid in others(me):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(code)


def main(argv: list[str]) -> None:
    grace, command = float(argv[0]), argv[1:]

    def on_signal(signum, frame):
        stop_all(128 + signum, grace)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = subprocess.Popen(command)
    code = server.wait()
    stop_all(code if code >= 0 else 128 - code, grace)


if __name__ == "__main__":
    main(sys.argv[1:])
