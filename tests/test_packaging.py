"""The wheel carries everything a user without the repository needs: task YAMLs, templates, data."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers.paths import REPO


@pytest.mark.parametrize("importable", [True, False], ids=["installed", "moved_or_removed"])
def test_pth_line_is_silent_when_fcot_is_gone(tmp_path, importable):
    """The ``.pth`` line runs at every interpreter start: a stale install must not print a traceback each time."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "fcot_lm_eval_plugins.pth").write_text((REPO / "fcot_lm_eval_plugins.pth").read_text())
    path = [str(REPO)] if importable else []
    script = (
        f"import sys, site; sys.path[:0] = {path!r}; site.addsitedir({str(site_dir)!r}); "
        "from fcot_plugin.harness.startup_hook import LmEvalPluginFinder; "
        "print(any(isinstance(f, LmEvalPluginFinder) for f in sys.meta_path))"
        if importable
        else f"import sys, site; site.addsitedir({str(site_dir)!r}); print('fcot_plugin' in sys.modules)"
    )
    # -S: no site-packages, so fcot is importable only through the path given here (the editable finder is off)
    command = [sys.executable, "-S", "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stderr == ""
    assert done.stdout.strip() == ("True" if importable else "False")
