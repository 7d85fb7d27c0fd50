"""fcot's cache folder: what fcot makes once and reuses (embedded models, llama.cpp builds, downloaded wheels)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$FCOT_CACHE``, else ``$XDG_CACHE_HOME/fcot``, else ``~/.cache/fcot``."""
    if os.environ.get("FCOT_CACHE"):
        return Path(os.environ["FCOT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "fcot"
