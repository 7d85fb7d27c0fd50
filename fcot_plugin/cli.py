"""Command-line entry points.

``fcot <command> [options]``: ``distill`` (the whole pipeline), ``curate`` (teacher samples → training
data) and ``evaluate`` (student → accuracy in its model card). Each command's options are a typed dataclass in
:mod:`fcot_plugin.configs`, parsed by ``HfArgumentParser`` (``fcot <command> --help`` lists them).

``fcot-eval`` is ``lm_eval`` with the plugin hook forced on (see :mod:`fcot_plugin.lm_eval_hook`; plain ``lm_eval``
gets the same from the installed ``.pth`` file), plus early checks of fcot task names and
``fcot-eval --tasks list``, which lists the fcot tasks and groups without indexing lm-eval's own.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's ``(default: x)``, except where the help states its own default or there is none (``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def fcot_task_names() -> list[str]:
    """Every fcot task and group name, from the YAMLs lm-eval would index."""
    from lm_eval.tasks import TaskManager

    from fcot_plugin.task_dir import task_config_dir

    manager = TaskManager(include_path=str(task_config_dir()), include_defaults=False)
    return sorted(manager.all_tasks)


def print_task_list() -> None:
    from fcot_plugin.task_dir import VARIANTS, group_name, task_name, variant_tasks

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


def eval_main(argv: Sequence[str] | None = None) -> None:
    """``fcot-eval``: lm-eval's CLI with the fcot plugin loaded; an fcot error is one line (``--debug``: traceback)."""
    from fcot_plugin.errors import debug_requested, exit_with_one_line

    debug, argv = debug_requested(sys.argv[1:] if argv is None else argv)
    if argv in (["--tasks", "list"], ["--tasks=list"], ["list"]):
        print_task_list()
        return

    from fcot_plugin import lm_eval_hook
    from fcot_plugin.preflight import check_lm_eval_arguments, option_value
    from fcot_plugin.secrets import install_log_redaction

    requested = option_value(argv, "--tasks")
    if requested:
        check_fcot_task_names(requested)
    lm_eval_hook.install(force=True)  # what the .pth file does at start, even with FCOT_NO_LM_EVAL_HOOK set
    known = fcot_task_names() if requested else []
    exit_with_one_line("fcot-eval", lambda: check_lm_eval_arguments(argv, known), debug)
    install_log_redaction()

    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *argv]
    exit_with_one_line("fcot-eval", cli_evaluate, debug)
    output_path = option_value(argv, "--output_path")
    if output_path:  # lm-eval records --model_args verbatim: no token stays in its files
        from fcot_plugin.secrets import scrub_files, secret_values

        scrub_files(output_path, secret_values([option_value(argv, "--model_args")]))


def hf_argument_parser() -> type:
    """transformers' ``HfArgumentParser``, without importing the ``transformers`` package when it can.

    Importing ``transformers`` takes 1-2 s, which ``fcot <command> --help`` should not pay. Its ``hf_argparser.py``
    needs only the standard library and yaml, so it is loaded from its own file; should a release give it a
    package-relative import, that fails with ``ImportError`` and the package import is used instead.
    """
    import importlib.util
    from pathlib import Path

    if "transformers" not in sys.modules and "_fcot_hf_argparser" not in sys.modules:
        spec = importlib.util.find_spec("transformers")  # locates the package without running its __init__
        path = Path(spec.submodule_search_locations[0]) / "hf_argparser.py" if spec else None
        if path is not None and path.is_file():
            module_spec = importlib.util.spec_from_file_location("_fcot_hf_argparser", path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules["_fcot_hf_argparser"] = module  # dataclasses resolves the module's names through it
            try:
                module_spec.loader.exec_module(module)
            except ImportError:
                del sys.modules["_fcot_hf_argparser"]
    if "_fcot_hf_argparser" in sys.modules:
        return sys.modules["_fcot_hf_argparser"].HfArgumentParser
    from transformers import HfArgumentParser

    return HfArgumentParser


def _parse(dataclass_type: type, argv: list[str], command: str):
    """One dataclass from ``argv``; a bad option is one line pointing at ``--help``, not the whole usage."""
    from fcot_plugin.errors import parse_or_fail

    parser = hf_argument_parser()(dataclass_type, prog=f"fcot {command}", formatter_class=HelpFormatter)
    (args,) = parse_or_fail(parser, lambda: parser.parse_args_into_dataclasses(argv))
    return args


def _curate(argv: list[str]) -> None:
    from fcot_plugin.configs import CurateArguments
    from fcot_plugin.curate import curate, save_dataset
    from fcot_plugin.preflight import check_writable

    args = _parse(CurateArguments, argv, "curate")
    check_writable(args.out, "--out")
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
    from fcot_plugin.configs import EvaluateArguments
    from fcot_plugin.evaluate import main as evaluate_main

    evaluate_main(_parse(EvaluateArguments, argv, "evaluate"))


def _distill(argv: list[str]) -> None:
    from fcot_plugin.configs import DistillArguments
    from fcot_plugin.pipeline import main as distill_main

    distill_main(_parse(DistillArguments, argv, "distill"))


COMMANDS = {
    "distill": (_distill, "teacher -> curation -> SFT -> evaluation -> report, resumable, offline by default"),
    "curate": (_curate, "teacher samples (or 'paper') -> prompt/completion dataset with a card"),
    "evaluate": (_evaluate, "score a student with fcot_<task> and write the result into its model card"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """``fcot <command> ...``: dispatch to a command; an fcot error ends with one line (``--debug``: traceback)."""
    from fcot_plugin.errors import debug_requested, exit_with_one_line
    from fcot_plugin.secrets import install_log_redaction

    debug, argv = debug_requested(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        listing = "\n".join(f"  {name:<10} {help_text}" for name, (_, help_text) in COMMANDS.items())
        print(f"usage: fcot <command> [options]   (fcot <command> --help)\n\ncommands:\n{listing}")
        raise SystemExit(0 if argv in ([], ["-h"], ["--help"]) else 2)
    command, _ = COMMANDS[argv[0]]
    install_log_redaction()
    exit_with_one_line("fcot", lambda: command(argv[1:]), debug)


if __name__ == "__main__":
    main()
