"""``fcot <command> [options]``: ``distill`` (the whole pipeline), ``curate`` (teacher samples → training data),
``evaluate`` (student → accuracy in its model card), ``task`` (your own data → an lm-eval task folder) and
``report`` (a run folder's report.md and report.html).

Each command's options are a typed dataclass in :mod:`fcot_plugin.pipeline.settings`, parsed by
``HfArgumentParser`` (``fcot <command> --help`` lists them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


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
    from fcot_plugin.curation.dataset import check_out, curate, curation_line, save_dataset
    from fcot_plugin.pipeline.settings import CurateArguments

    args = _parse(CurateArguments, argv, "curate")
    check_out(args.out, args.overwrite)  # the user's own folders are refused before anything runs
    if args.push_to_hub:
        from fcot_plugin.hub.push import check_push_target

        check_push_target(
            args.hub_dataset_id, what="--hub_dataset_id"
        )  # before anything is written: the id, the token, the right to write
    result = curate(
        args.task,
        args.samples,
        args.dataset_format,
        args.deduplicate,
        args.all_completions,
        decontaminate=args.decontaminate,
    )
    print(curation_line(result))
    pushed: list[str] = []

    def push(staging: Path) -> None:  # before --out exists: a failed push leaves nothing behind
        from fcot_plugin.hub.push import push_dataset

        pushed.append(push_dataset(staging, args.hub_dataset_id, private=args.private))

    out = save_dataset(result, args.out, overwrite=args.overwrite, before_rename=push if args.push_to_hub else None)
    print(f"wrote {out} (dataset card: {out / 'README.md'})")
    if pushed:
        print(f"pushed {pushed[0]}")


def _evaluate(argv: list[str]) -> None:
    from fcot_plugin.pipeline.settings import EvaluateArguments

    args = _parse(EvaluateArguments, argv, "evaluate")  # first: an argument error needs no heavy import

    from fcot_plugin.pipeline.evaluate import main as evaluate_main

    evaluate_main(args)


def _distill(argv: list[str]) -> None:
    from fcot_plugin.pipeline.settings import DistillArguments

    args = _parse(DistillArguments, argv, "distill")  # first: an argument error needs no heavy import

    from fcot_plugin.pipeline.distill import main as distill_main

    distill_main(args)


def _report(argv: list[str]) -> None:
    from fcot_plugin.core.command_line import parse_or_fail, settings_parser
    from fcot_plugin.pipeline.settings import ReportArguments

    parser = settings_parser(ReportArguments, prog="fcot report", formatter_class=HelpFormatter)
    parser.add_argument("run_dir", nargs="?", default=argparse.SUPPRESS, metavar="RUN_DIR", help="the run folder")
    (args,) = parse_or_fail(parser, lambda: parser.parse_args_into_dataclasses(argv))

    from fcot_plugin.pipeline.report import report_command

    html = report_command(args.run_dir)
    print(f"wrote {html} (and report.md beside it)")
    if args.open:
        import webbrowser

        webbrowser.open(html.resolve().as_uri())


def _task(argv: list[str]) -> None:
    from fcot_plugin.pipeline.settings import TaskArguments

    args = _parse(TaskArguments, argv, "task")

    from fcot_plugin.core.folders import check_output_folder, mark_folder
    from fcot_plugin.tasks.names import task_name
    from fcot_plugin.tasks.own_data import build_task
    from fcot_plugin.tasks.task_folder import write_task_folder

    check_output_folder(args.out, "--out", made_by="fcot task")  # the user's own folders are refused first
    own = build_task(args)  # every row checked before anything is written
    out = write_task_folder(own.name, own.answer_type, own.splits, own.provenance, args.out)
    mark_folder(out, "fcot task", (entry.name for entry in out.iterdir()))
    rows = own.provenance["rows"]
    print(
        f"{task_name(own.name)} ({own.answer_type}): {rows['train']} train and {rows['test']} test questions "
        f"-> {out}\nlm_eval --model hf --model_args pretrained=MODEL --include_path {out} --tasks "
        f"{task_name(own.name)}"
    )


COMMANDS = {
    "distill": (_distill, "teacher -> curation -> SFT -> evaluation -> report, resumable, offline by default"),
    "curate": (_curate, "teacher samples (or 'paper') -> prompt/completion dataset with a card"),
    "evaluate": (_evaluate, "score a student with fcot_<task> and write the result into its model card"),
    "report": (_report, "write a run folder's report.md and report.html again (--open: open it in the browser)"),
    "task": (_task, "your own data (--dataset) as an lm-eval task folder: student, baseline and teacher tasks"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """``fcot <command> ...``: dispatch to a command; an fcot error ends with one line (``--debug``: traceback).

    Secrets (model args, ``--hub_token``, ``HF_TOKEN``...) are redacted from the logs and the terminal first.
    """
    from fcot_plugin.core.secrets import guard_terminal

    argv = list(sys.argv[1:] if argv is None else argv)
    guard_terminal(argv)  # before parsing: an argument error echoes what it refuses (--hub_token <value>)

    from fcot_plugin.core.command_line import debug_requested, exit_with_one_line

    debug, argv = debug_requested(argv)
    if not argv or argv[0] not in COMMANDS:
        listing = "\n".join(f"  {name:<10} {help_text}" for name, (_, help_text) in COMMANDS.items())
        print(f"usage: fcot <command> [options]   (fcot <command> --help)\n\ncommands:\n{listing}")
        raise SystemExit(0 if argv in ([], ["-h"], ["--help"]) else 2)
    command, _ = COMMANDS[argv[0]]
    exit_with_one_line("fcot", lambda: command(argv[1:]), debug)


if __name__ == "__main__":
    main()
