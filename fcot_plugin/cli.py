"""Command-line entry points.

``fcot <command> [options]``: ``distill`` (the whole pipeline), ``curate`` (teacher samples → training
data) and ``evaluate`` (student → accuracy in its model card). Each command's options are a typed dataclass in
:mod:`fcot_plugin.configs`, parsed by ``HfArgumentParser`` (``fcot <command> --help`` lists them).

``fcot-eval`` is ``lm_eval`` with the plugin loaded: it imports fcot (registering ``--model zscot``),
adds the fcot task folder to ``--include_path`` and hands every other argument to lm-eval unchanged.
``fcot-eval --tasks list`` lists the fcot tasks and groups.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence

LM_EVAL_SUBCOMMANDS = ("run", "ls", "validate")


def fcot_task_names() -> list[str]:
    """Every fcot task and group name, from the YAMLs lm-eval would index."""
    from lm_eval.tasks import TaskManager

    from fcot_plugin.task_dir import task_config_dir

    manager = TaskManager(include_path=str(task_config_dir()), include_defaults=False)
    return sorted(manager.all_tasks)


def print_task_list() -> None:
    from fcot_plugin.task_dir import VARIANTS, group_name, task_name
    from fcot_plugin.tasks import TASKS

    names = set(fcot_task_names())
    width = max(len("fcot_all"), *(len(group_name(variant)) for variant in VARIANTS))
    print(f"{'group':<{width}}  tasks")
    for variant in VARIANTS:
        members = [task_name(task, variant) for task in TASKS]
        missing = [member for member in members if member not in names]
        if missing:
            raise RuntimeError(f"task YAMLs missing from the install: {missing}")
        print(f"{group_name(variant):<{width}}  {', '.join(members)}")
    print(f"{'fcot_all':<{width}}  every group above")


def _option_value(argv: list[str], option: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == option and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


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


def with_fcot_include_path(argv: list[str]) -> list[str]:
    """``argv`` with the fcot task folder added to ``--include_path``; user folders are kept and win name clashes."""
    from fcot_plugin.task_dir import task_config_dir

    folder = str(task_config_dir())
    argv = list(argv)
    for index, arg in enumerate(argv):
        if arg == "--include_path" and index + 1 < len(argv):
            argv[index + 1] = f"{folder}:{argv[index + 1]}"
            return argv
        if arg.startswith("--include_path="):
            argv[index] = f"--include_path={folder}:{arg.split('=', 1)[1]}"
            return argv
    return [*argv, "--include_path", folder]


def eval_main(argv: Sequence[str] | None = None) -> None:
    """``fcot-eval``: lm-eval's CLI with the fcot plugin loaded."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["--tasks", "list"], ["--tasks=list"], ["list"]):
        print_task_list()
        return

    import fcot_plugin.lm_eval_hooks  # noqa: F401  registers --model zscot
    from fcot_plugin.tasks import DatasetError

    requested = _option_value(argv, "--tasks")
    if requested:
        check_fcot_task_names(requested)
    if argv and (argv[0] in LM_EVAL_SUBCOMMANDS or argv[0].startswith("-")):
        argv = with_fcot_include_path(argv)

    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except DatasetError as error:
        raise SystemExit(f"fcot-eval: {error}") from None


def _curate(argv: list[str]) -> None:
    from transformers import HfArgumentParser

    from fcot_plugin.configs import CurateArguments
    from fcot_plugin.curate import curate, save_dataset

    (args,) = HfArgumentParser(CurateArguments).parse_args_into_dataclasses(argv)
    if args.push_to_hub:
        from fcot_plugin.hub import require_hub_token

        require_hub_token()  # before anything is written
    result = curate(args.task, args.samples, args.format, args.deduplicate, args.all_completions)
    stats = result.stats
    print(
        f"{args.task}: {stats.questions} questions, {stats.rationales} teacher rationales, {stats.correct} correct "
        f"(filter rate {stats.filter_rate:.1%}), {stats.duplicates} duplicates removed -> {stats.rows} rows "
        f"covering {stats.questions_covered} questions"
    )
    out = save_dataset(result, args.out, overwrite=args.overwrite)
    print(f"wrote {out} (dataset card: {out / 'README.md'})")
    if args.push_to_hub:
        from fcot_plugin.hub import push_dataset

        print(f"pushed {push_dataset(out, args.push_to_hub, private=args.private)}")


def _evaluate(argv: list[str]) -> None:
    from transformers import HfArgumentParser

    from fcot_plugin.configs import EvaluateArguments
    from fcot_plugin.evaluate import main as evaluate_main

    (args,) = HfArgumentParser(EvaluateArguments).parse_args_into_dataclasses(argv)
    evaluate_main(args)


def _distill(argv: list[str]) -> None:
    from transformers import HfArgumentParser

    from fcot_plugin.configs import DistillArguments
    from fcot_plugin.pipeline import main as distill_main

    (args,) = HfArgumentParser(DistillArguments).parse_args_into_dataclasses(argv)
    distill_main(args)


COMMANDS = {
    "distill": (_distill, "teacher -> curation -> SFT -> evaluation -> report, resumable, offline by default"),
    "curate": (_curate, "teacher samples (or 'paper') -> prompt/completion dataset with a card"),
    "evaluate": (_evaluate, "score a student with fcot_<task> and write the result into its model card"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """``fcot <command> ...``: dispatch to a command; errors in the user's input end with a one-line message."""
    from fcot_plugin.curate import CurationError
    from fcot_plugin.hub import HubError
    from fcot_plugin.pipeline import PipelineError
    from fcot_plugin.tasks import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        listing = "\n".join(f"  {name:<10} {help_text}" for name, (_, help_text) in COMMANDS.items())
        print(f"usage: fcot <command> [options]   (fcot <command> --help)\n\ncommands:\n{listing}")
        raise SystemExit(0 if argv in ([], ["-h"], ["--help"]) else 2)
    command, _ = COMMANDS[argv[0]]
    try:
        command(argv[1:])
    except (CurationError, DatasetError, HubError, PipelineError, FileNotFoundError, ValueError) as error:
        raise SystemExit(f"fcot {argv[0]}: {error}") from None


if __name__ == "__main__":
    main()
