"""``fcot-eval``: ``lm_eval`` with the plugin hook forced on, plus early checks of fcot task names.

Plain ``lm_eval`` gets the same plugins from the installed ``.pth`` file (:mod:`fcot_plugin.harness.startup_hook`).
``fcot-eval --tasks list`` lists the fcot tasks and groups without indexing lm-eval's own.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence


def fcot_task_names() -> list[str]:
    """Every fcot task and group name, from the YAMLs lm-eval would index."""
    from lm_eval.tasks import TaskManager

    from fcot_plugin.tasks.names import task_config_dir

    manager = TaskManager(include_path=str(task_config_dir()), include_defaults=False)
    return sorted(manager.all_tasks)


def print_task_list() -> None:
    from fcot_plugin.tasks.names import VARIANTS, group_name, task_name, variant_tasks

    names = set(fcot_task_names())
    width = max(len("fcot_all"), *(len(group_name(variant)) for variant in VARIANTS))
    print(f"{'group':<{width}}  tasks")
    for variant in VARIANTS:
        members = [task_name(task, variant) for task in variant_tasks(variant)]
        missing = [member for member in members if member not in names]
        if missing:
            raise RuntimeError(f"task YAMLs missing from the install: {missing}")
        print(f"{group_name(variant):<{width}}  {', '.join(members)}")
    print(f"{'fcot_all':<{width}}  every group above")


def check_fcot_task_names(requested: str) -> None:
    """Fail early, with suggestions, on an fcot task name that does not exist (lm-eval only says 'not found')."""
    import fnmatch

    known = fcot_task_names()
    for name in requested.split(","):
        name = name.strip()
        if not name.startswith("fcot") or name.endswith(".yaml"):
            continue
        if any(fnmatch.fnmatchcase(candidate, name) for candidate in known):
            continue
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise SystemExit(f"fcot-eval: unknown fcot task {name!r}.{hint} List them with: fcot-eval --tasks list")


def tasks_named(evaluate, known: list[str]) -> None:
    """Run lm-eval; a task name it finds nowhere (lm-eval's own tasks included) is one line with the closest fcot
    names, not lm-eval's traceback."""
    from fcot_plugin.core.errors import FcotError

    try:
        evaluate()
    except ValueError as error:
        message = str(error)
        if not message.startswith("Tasks not found"):
            raise
        missing = message.split(":", 1)[1].strip()
        close = difflib.get_close_matches(missing.split(",")[0].strip(), known or fcot_task_names(), n=3)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        raise FcotError(
            f"unknown task {missing!r} (neither fcot's nor lm-eval's){hint} List fcot's with: fcot-eval --tasks list"
        ) from None


def main(argv: Sequence[str] | None = None) -> None:
    """``fcot-eval``: lm-eval's CLI with the fcot plugin loaded; an fcot error is one line (``--debug``: traceback).

    Secrets (``--model_args ...,token=...``, ``HF_TOKEN``...) are redacted from the logs and the terminal first,
    lm-eval's summary line of the model args included, and scrubbed from the files under ``--output_path``.
    """
    from fcot_plugin.core.secrets import guard_terminal

    argv = list(sys.argv[1:] if argv is None else argv)
    guard_terminal(argv)

    from fcot_plugin.core.command_line import debug_requested, exit_with_one_line

    debug, argv = debug_requested(argv)
    if argv in (["--tasks", "list"], ["--tasks=list"], ["list"]):
        print_task_list()
        return

    from fcot_plugin.harness import startup_hook
    from fcot_plugin.pipeline.preflight import check_lm_eval_arguments, option_value

    requested = option_value(argv, "--tasks")
    if requested:
        check_fcot_task_names(requested)
    startup_hook.install(force=True)  # what the .pth file does at start, even with FCOT_NO_LM_EVAL_HOOK set
    known = fcot_task_names() if requested else []
    exit_with_one_line("fcot-eval", lambda: check_lm_eval_arguments(argv, known), debug)

    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *argv]
    try:
        exit_with_one_line("fcot-eval", lambda: tasks_named(cli_evaluate, known), debug)
    finally:  # lm-eval records --model_args verbatim: no secret stays in its files, even after a failure
        output_path = option_value(argv, "--output_path") or option_value(argv, "-o")
        if output_path:
            from fcot_plugin.core.secrets import scrub_files, secret_values

            scrub_files(output_path, secret_values(argv=argv))


if __name__ == "__main__":
    main()
