"""``recipes/sft.py`` as users run it: the script file itself, loaded once for in-process calls.

Tests that need a real process (``accelerate launch``, a killed run) run ``python recipes/sft.py`` instead
(:data:`helpers.paths.SFT_RECIPE`).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType

from helpers.paths import SFT_RECIPE


@cache
def sft_recipe() -> ModuleType:
    """The ``recipes/sft.py`` script as a module (its ``main`` and ``make_parser``), loaded from its file once."""
    spec = importlib.util.spec_from_file_location("sft_recipe", SFT_RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
