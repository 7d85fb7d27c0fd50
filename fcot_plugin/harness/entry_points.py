"""Plain ``lm_eval`` sees every installed plugin's tasks and models, although lm-eval 0.4.13 reads no entry points.

The wheel ships ``fcot_lm_eval_plugins.pth``, which calls :func:`fcot_plugin.harness.startup_hook.install` at
interpreter start: one meta-path finder, nothing else imported. This module is loaded only when lm-eval's own
imports reach it:

* when ``lm_eval.tasks.manager`` loads, ``TaskManager`` gets the folders named by the ``lm_eval.tasks`` entry points
  of every installed distribution, after the built-in tasks and before ``--include_path`` (a user's folder wins a
  name clash), whenever it indexes the built-in tasks;
* when ``lm_eval.models`` loads, each ``lm_eval.models`` entry point (``name = "module:Class"``) is registered as a
  lazy placeholder, so ``--model name`` imports the plugin only when it is used (and after lm-eval's own models,
  so ``hf`` stays); an entry point that names a module is imported so its ``@register_model`` runs.

It stands down for a group when lm-eval reads that group's entry points itself, and entirely when
``FCOT_NO_LM_EVAL_HOOK=1``.
"""

from __future__ import annotations

import sys

TASKS_GROUP = "lm_eval.tasks"
MODELS_GROUP = "lm_eval.models"


def _warn(message: str) -> None:
    import logging

    logging.getLogger(__name__).warning(message)


def _entry_points(group: str) -> list:
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def reads_entry_points(*files: str | None) -> bool:
    """Whether lm-eval's own code in ``files`` calls ``entry_points`` (a release that discovers plugins itself)."""
    for file in files:
        if not file:
            continue
        try:
            with open(file, encoding="utf-8") as handle:
                if "entry_points" in handle.read():
                    return True
        except OSError:
            continue
    return False


# ---------------------------------------------------------------------- tasks


def plugin_task_paths() -> list[str]:
    """The task folders named by ``lm_eval.tasks`` entry points: a package (its folder) or ``module:attr``
    (a path, or a callable returning one)."""
    from importlib.resources import files

    paths: list[str] = []
    for entry_point in _entry_points(TASKS_GROUP):
        try:
            if entry_point.attr:
                target = entry_point.load()
                target = target() if callable(target) else target
            else:
                target = files(entry_point.module)
            path = str(target)
        except Exception as error:  # a broken plugin must not take lm-eval down with it
            _warn(f"ignoring lm_eval.tasks entry point {entry_point.value!r}: {error}")
            continue
        if path not in paths:
            paths.append(path)
    return paths


def patch_task_manager(module) -> None:
    """Wrap ``TaskManager.__init__`` so that plugin task folders are indexed with the built-in tasks."""
    import functools
    import inspect

    task_manager = module.TaskManager
    original = task_manager.__init__
    if getattr(original, "_fcot_plugins", False) or reads_entry_points(
        module.__file__, getattr(sys.modules.get("lm_eval.tasks._index"), "__file__", None)
    ):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if bound.arguments.get("include_defaults", True):
            user = bound.arguments.get("include_path")
            user_paths = [] if user is None else list(user) if isinstance(user, list | tuple) else [user]
            extra = [path for path in plugin_task_paths() if path not in {str(p) for p in user_paths}]
            if extra:
                bound.arguments["include_path"] = [*extra, *user_paths]
        original(*bound.args, **bound.kwargs)

    __init__._fcot_plugins = True
    task_manager.__init__ = __init__


# ---------------------------------------------------------------------- models


def register_plugin_models(module) -> None:
    """Register every ``lm_eval.models`` entry point that lm-eval does not know yet."""
    import importlib

    registry = sys.modules["lm_eval.api.registry"]
    if reads_entry_points(registry.__file__, module.__file__):
        return
    for entry_point in _entry_points(MODELS_GROUP):
        if entry_point.name in registry.model_registry:
            continue
        try:
            if entry_point.attr:
                registry.model_registry.register(entry_point.name, target=f"{entry_point.module}:{entry_point.attr}")
            else:
                importlib.import_module(entry_point.module)
        except Exception as error:
            _warn(f"ignoring lm_eval.models entry point {entry_point.value!r}: {error}")


PATCHES = {"lm_eval.tasks.manager": patch_task_manager, "lm_eval.models": register_plugin_models}
