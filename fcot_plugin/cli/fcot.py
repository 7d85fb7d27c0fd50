"""``fcot <command> [options]``: ``distill`` (the whole pipeline), ``curate`` (teacher samples → training data)
and ``evaluate`` (student → accuracy in its model card).

Each command's options are a typed dataclass in :mod:`fcot_plugin.pipeline.settings`, parsed by
``HfArgumentParser`` (``fcot <command> --help`` lists them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's ``(default: x)``, except where the help states its own default or there is none (``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _parse(dataclass_type: type, argv: list[str], command: str):
    """One dataclass from ``argv``; a bad option is one line pointing at ``--help``, not the whole usage."""
    from fcot_plugin.core.command_line import parse_or_fail, settings_parser

    parser = settings_parser(dataclass_type, prog=f"fcot {command}", formatter_class=HelpFormatter)
    (args,) = parse_or_fail(parser, lambda: parser.parse_args_into_dataclasses(argv))
    return args


def _curate(argv: list[str]) -> None:
    from fcot_plugin.curation.dataset import curate, save_dataset
    from fcot_plugin.pipeline.preflight import check_writable
    from fcot_plugin.pipeline.settings import CurateArguments

    args = _parse(CurateArguments, argv, "curate")
    check_writable(args.out, "--out")
    if args.push_to_hub:
        from fcot_plugin.hub.push import require_hub_token

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
        from fcot_plugin.hub.push import push_dataset

        print(f"pushed {push_dataset(out, args.push_to_hub, private=args.private)}")


def _evaluate(argv: list[str]) -> None:
    from fcot_plugin.pipeline.evaluate import main as evaluate_main
    from fcot_plugin.pipeline.settings import EvaluateArguments

    evaluate_main(_parse(EvaluateArguments, argv, "evaluate"))


def _distill(argv: list[str]) -> None:
    from fcot_plugin.pipeline.distill import main as distill_main
    from fcot_plugin.pipeline.settings import DistillArguments

    distill_main(_parse(DistillArguments, argv, "distill"))


COMMANDS = {
    "distill": (_distill, "teacher -> curation -> SFT -> evaluation -> report, resumable, offline by default"),
    "curate": (_curate, "teacher samples (or 'paper') -> prompt/completion dataset with a card"),
    "evaluate": (_evaluate, "score a student with fcot_<task> and write the result into its model card"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """``fcot <command> ...``: dispatch to a command; an fcot error ends with one line (``--debug``: traceback)."""
    from fcot_plugin.core.command_line import debug_requested, exit_with_one_line
    from fcot_plugin.core.secrets import install_log_redaction

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
