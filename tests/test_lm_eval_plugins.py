"""Plain ``lm_eval`` finds the fcot tasks and ``--model zscot`` through the interpreter-start hook.

``tests/test_cli.py`` runs ``lm_eval --model hf --tasks fcot_multiarith`` in this environment (editable install).
"""

from __future__ import annotations

import os
import types

from helpers.commands import python

from fcot_plugin.harness import entry_points as lm_eval_plugins
from fcot_plugin.harness.startup_hook import DISABLE_VARIABLE
from fcot_plugin.tasks.names import task_config_dir


class FakeTaskManager:
    def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
        self.include_path = include_path


def fake_manager_module(tmp_path, source: str = "class TaskManager: ...\n") -> types.ModuleType:
    file = tmp_path / "manager.py"
    file.write_text(source)
    module = types.ModuleType("lm_eval.tasks.manager")
    module.__file__ = str(file)
    module.TaskManager = type("TaskManager", (FakeTaskManager,), {"__init__": FakeTaskManager.__init__})
    return module


def test_plugin_task_paths_name_the_installed_task_folder():
    assert str(task_config_dir()) in lm_eval_plugins.plugin_task_paths()


def test_task_manager_gets_plugin_folders_before_the_users(tmp_path, monkeypatch):
    monkeypatch.setattr(lm_eval_plugins, "plugin_task_paths", lambda: ["/plugin/tasks"])
    module = fake_manager_module(tmp_path)
    lm_eval_plugins.patch_task_manager(module)
    lm_eval_plugins.patch_task_manager(module)  # idempotent
    assert module.TaskManager().include_path == ["/plugin/tasks"]
    assert module.TaskManager(include_path="/mine").include_path == ["/plugin/tasks", "/mine"]
    assert module.TaskManager(include_path=["/plugin/tasks"]).include_path == ["/plugin/tasks"]
    # a caller that indexes only its own folders gets exactly those
    assert module.TaskManager(include_path="/mine", include_defaults=False).include_path == "/mine"


def test_hook_stands_down_when_lm_eval_reads_entry_points(tmp_path, monkeypatch):
    monkeypatch.setattr(lm_eval_plugins, "plugin_task_paths", lambda: ["/plugin/tasks"])
    module = fake_manager_module(tmp_path, "from importlib.metadata import entry_points\n")
    lm_eval_plugins.patch_task_manager(module)
    assert module.TaskManager().include_path is None


def test_models_are_registered_lazily_and_hf_stays():
    out = python(
        "import sys",
        "from lm_eval.api.registry import get_model, model_registry",
        "import lm_eval.models",
        "print(model_registry._objs['zscot'], 'fcot_plugin.harness.zscot' in sys.modules)",
        "print(model_registry._objs['hf-regroup'], 'fcot_plugin.harness.hf_regroup' in sys.modules)",
        "print(get_model('zscot').__name__, get_model('hf-regroup').__name__, get_model('hf').__name__)",
    )
    assert out.split() == [
        "fcot_plugin.harness.zscot:ZeroShotCoT",
        "False",
        "fcot_plugin.harness.hf_regroup:RegroupingHFLM",
        "False",
        "ZeroShotCoT",
        "RegroupingHFLM",
        "HFLM",
    ]


def test_interpreter_start_imports_only_the_finder_and_the_switch_turns_it_off():
    check = (
        "import sys",
        "finders = [type(f).__name__ for f in sys.meta_path]",
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('lm_eval', 'torch', 'transformers', 'datasets')]",
        "print(finders.count('LmEvalPluginFinder'), 'fcot_plugin.harness.entry_points' in sys.modules, heavy)",
    )
    assert python(*check).split() == ["1", "False", "[]"]
    assert python(*check, env={**os.environ, DISABLE_VARIABLE: "1"}).split() == ["0", "False", "[]"]
