"""The repository's scripts (``recipes/sft.py``, ``benchmarks/*.py``, ``scripts/*.py``) loaded as users run them.

``python <folder>/<script>.py`` puts the script's folder first on ``sys.path`` (its siblings import) and runs the file
itself; :func:`load_script` does the same in-process, so a test calls the script's own functions. Tests that need a
real process (``accelerate launch``, a killed run) run ``python recipes/sft.py`` instead (:data:`helpers.paths`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType

from helpers.paths import REPO, SFT_RECIPE


def load_script(path: Path) -> ModuleType:
    """The script at ``path`` as a fresh module named after its file, registered in ``sys.modules`` (dataclasses look
    their module up while they are built)."""
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@cache
def sft_recipe() -> ModuleType:
    """``recipes/sft.py`` (its ``main`` and ``make_parser``), loaded once."""
    return load_script(SFT_RECIPE)


def benchmark(name: str) -> Callable[[list[str]], object]:
    """``benchmarks/<name>.py`` as its ``__main__`` runs it: ``argv`` parsed into its arguments dataclass, then its
    ``main``, with fcot's one-line errors (:func:`fcot_plugin.core.command_line.run_script`)."""
    from fcot_plugin.core.command_line import run_script

    module = load_script(REPO / "benchmarks" / f"{name}.py")
    arguments = next(
        value
        for key, value in vars(module).items()
        if key.endswith("Arguments") and getattr(value, "__module__", None) == name
    )
    return lambda argv: run_script(f"{name}.py", arguments, module.main, argv)
