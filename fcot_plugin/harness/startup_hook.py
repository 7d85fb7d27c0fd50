"""The interpreter-start half of :mod:`fcot_plugin.harness.entry_points`: kept tiny, since every Python start runs it.

``fcot_lm_eval_plugins.pth`` calls :func:`install`, which adds one meta-path finder. The finder ignores every
import but ``lm_eval.tasks.manager`` and ``lm_eval.models``; for those it runs lm-eval's own loader and then the
patch from ``lm_eval_plugins``. ``FCOT_NO_LM_EVAL_HOOK=1`` switches it off.
"""

import os
import sys

DISABLE_VARIABLE = "FCOT_NO_LM_EVAL_HOOK"
WATCHED = ("lm_eval.tasks.manager", "lm_eval.models")


def disabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def _patch(module) -> None:
    from fcot_plugin.harness.entry_points import PATCHES

    try:
        PATCHES[module.__name__](module)
    except Exception as error:  # lm-eval must keep working without the plugins
        import logging

        logging.getLogger(__name__).warning("fcot could not add plugin entry points to %s: %s", module.__name__, error)


class _PatchAfterExec:
    """Loader proxy: puts the real loader back on the module, runs it, then patches the module."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _patch(module)


class LmEvalPluginFinder:
    """Finds nothing itself: asks the finders after it and wraps the loader of a watched module."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchAfterExec(spec.loader)
                return spec
        return None


def install(force: bool = False) -> None:
    """Add the finder (once); patch the watched modules that are already imported. ``force`` ignores the switch."""
    if (disabled() and not force) or any(isinstance(finder, LmEvalPluginFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, LmEvalPluginFinder())
    for name in WATCHED:
        if name in sys.modules:
            _patch(sys.modules[name])
