"""fcot's commands as child processes of the tests: console scripts by path, ``fcot-eval`` and bare ``python -c``."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from helpers.paths import REPO

#: ``fcot-eval`` as a child process of this interpreter, so it imports the checkout under test.
FCOT_EVAL = [sys.executable, "-c", "from fcot_plugin.cli.fcot_eval import main; main()"]


def script(name: str) -> str:
    """A console script of this environment, by absolute path."""
    return str(Path(sysconfig.get_path("scripts")) / name)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``args`` run in ``cwd``, output captured as text (5 minutes at most)."""
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=300)


def python(*code: str, env: dict | None = None, executable: str = sys.executable) -> str:
    """The lines of ``code`` run by ``executable -c`` outside the checkout (what an installed package sees); its
    stdout, after asserting it succeeded."""
    result = subprocess.run(
        [executable, "-c", "\n".join(code)], capture_output=True, text=True, env=env, timeout=300, cwd=REPO.parent
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
