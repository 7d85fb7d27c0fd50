"""Plain ``lm_eval`` finds the fcot tasks through the interpreter-start hook in a fresh venv with the wheel installed,
and in the editable install (the hook's unit tests: tests/test_lm_eval_plugins.py)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers.commands import python
from helpers.paths import REPO

from fcot_plugin.harness.startup_hook import DISABLE_VARIABLE


def fresh_venv(path: Path) -> Path:
    """A venv without fcot whose dependencies come from this interpreter's site-packages, added as a plain path
    (so none of this environment's .pth files run there), with lm-eval's ``lm_eval`` console script."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    venv_python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(venv_python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "_fcot_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (script,) = [ep for ep in importlib.metadata.distribution("lm_eval").entry_points if ep.name == "lm_eval"]
    lm_eval = path / "bin" / "lm_eval"
    lm_eval.write_text(
        f"#!{venv_python}\nimport sys\nfrom {script.module} import {script.attr}\nsys.exit({script.attr}())\n"
    )
    lm_eval.chmod(0o755)
    return path


def pip_install(venv: Path, *args: str) -> None:
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps"]
    subprocess.run([*pip, "--no-build-isolation", "-q", *args], check=True, capture_output=True)


def run_lm_eval(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != DISABLE_VARIABLE}
    return subprocess.run(
        [str(venv / "bin" / "lm_eval"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


@pytest.mark.slow
def test_plain_lm_eval_after_installing_the_wheel(tiny_model, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    venv = fresh_venv(tmp_path / "venv")
    pip_install(venv, str(next(tmp_path.glob("fcot-*.whl"))))

    listing = run_lm_eval(venv, "ls", "tasks", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert "fcot_multiarith_teacher" in listing.stdout and "fcot_all" in listing.stdout

    teacher = run_lm_eval(
        venv,
        "--model",
        "zscot",
        "--model_args",
        f"base=hf,pretrained={tiny_model},answer_max_gen_toks=2",
        "--tasks",
        "fcot_multiarith_teacher,fcot_*_zscot",
        "--gen_kwargs",
        "max_gen_toks=4",
        "--limit",
        "1",
        "--device",
        "cpu",
        "--output_path",
        str(tmp_path / "zscot"),
        cwd=tmp_path,
    )
    assert teacher.returncode == 0, teacher.stderr[-3000:]
    results = json.loads(next((tmp_path / "zscot").rglob("results_*.json")).read_text())["results"]
    assert {"fcot_multiarith_teacher", "fcot_coin_flip_zscot", "fcot_strategy_qa_zscot"} <= set(results)
    assert sum(name.endswith("_zscot") for name in results) == 12

    student = run_lm_eval(
        venv,
        "--model",
        "hf-regroup",
        "--model_args",
        f"pretrained={tiny_model},segment_tokens=2",
        "--tasks",
        "fcot_coin_flip",
        "--gen_kwargs",
        "max_gen_toks=5",
        "--limit",
        "3",
        "--device",
        "cpu",
        "--output_path",
        str(tmp_path / "student"),
        cwd=tmp_path,
    )
    assert student.returncode == 0, student.stderr[-3000:]
    assert "fcot_coin_flip" in json.loads(next((tmp_path / "student").rglob("results_*.json")).read_text())["results"]


@pytest.mark.slow
def test_editable_install_ships_the_hook(tmp_path):
    venv = fresh_venv(tmp_path / "venv")
    pip_install(venv, "-e", str(REPO))
    out = python(
        "import lm_eval.tasks.manager as manager",
        "from fcot_plugin.harness.entry_points import plugin_task_paths",
        "print(manager.TaskManager.__init__._fcot_plugins, plugin_task_paths())",
        executable=str(venv / "bin" / "python"),
    )
    assert out.split(None, 1) == ["True", f"[{str(REPO / 'task_configs')!r}]\n"]
