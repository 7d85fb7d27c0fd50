"""The built wheel carries everything a user without the repository needs (tests/test_packaging.py checks the
sources)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from helpers.paths import REPO

from fcot_plugin.tasks.names import VARIANTS, variant_tasks
from fcot_plugin.tasks.registry import TASKS


@pytest.mark.slow
def test_wheel_contents(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    names = set(zipfile.ZipFile(next(tmp_path.glob("fcot-*.whl"))).namelist())
    yamls = {name for name in names if name.startswith("fcot_plugin/task_configs/") and name.endswith(".yaml")}
    assert len(yamls) == sum(len(variant_tasks(variant)) for variant in VARIANTS) + len(VARIANTS) + 1
    assert {f"fcot_plugin/task_configs/_templates/{t}" for t, _ in VARIANTS.values()} <= names
    for task in TASKS:
        assert f"fcot_plugin/data/{task}/test.jsonl" in names
    assert "fcot_plugin/data/aqua/split_default.json" in names and "fcot_plugin/data/SOURCES.md" in names
    assert "fcot_plugin/data/paper_results.csv" in names  # the paper's numbers (fcot_plugin.tasks.paper_results)
    assert "fcot_plugin/data/prompts/few_shot_cot_prompts.json" in names  # the Few-shot-CoT baseline's exemplars
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    text = zipfile.ZipFile(next(tmp_path.glob("fcot-*.whl"))).read(entry_points).decode()
    assert "[lm_eval.models]" in text and "fcot-eval = fcot_plugin.cli.fcot_eval:main" in text
    assert "fcot_lm_eval_plugins.pth" in names  # the hook that lets plain lm_eval read the entry points
