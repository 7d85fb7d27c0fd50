"""fcot's own error class, and the one-line exit that every fcot command gives for it.

Only :class:`FcotError` (and the argument errors of a command's parser) become a one-line exit; any other
exception is a bug and keeps its traceback. ``--debug`` or ``FCOT_DEBUG=1`` shows the traceback of an
``FcotError`` too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

DEBUG_FLAG = "--debug"
DEBUG_ENV = "FCOT_DEBUG"


class FcotError(ValueError):
    """Input or state fcot cannot use; the message names the problem and the fix.

    A ``ValueError`` so that code validating arguments (dataclass ``__post_init__``) keeps its usual type.
    """


def debug_requested(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether tracebacks were asked for, and ``argv`` without ``--debug``.

    ``--debug <value>`` is left alone: it is TrainingArguments' own option (e.g. ``--debug underflow_overflow``).
    """
    argv = list(argv)
    flags = [i for i, arg in enumerate(argv) if arg == DEBUG_FLAG and (i + 1 == len(argv) or argv[i + 1][:1] == "-")]
    rest = [arg for i, arg in enumerate(argv) if i not in flags]
    env = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return env or bool(flags), rest


def exit_with_one_line(prog: str, function: Callable[[], Any], debug: bool) -> Any:
    """Run ``function``; an :class:`FcotError` ends the process with ``<prog>: error: <message>``."""
    try:
        return function()
    except FcotError as error:
        if debug:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def parse_or_fail(parser: Any, parse: Callable[[], Any]) -> Any:
    """Parse arguments with ``parser`` (an ``HfArgumentParser``); every parsing failure is one ``FcotError``.

    argparse prints the whole usage (over 100 lines for TRL's configs) before its message; here the message
    comes alone and points at ``--help``. Errors raised while parsing (a dataclass ``__post_init__``, an
    unknown YAML key, a missing ``--config`` file) are by definition about the user's arguments.
    """
    import yaml

    def fail(message: str) -> NoReturn:
        raise FcotError(f"{message} (see {parser.prog} --help)")

    parser.error = fail
    try:
        return parse()
    except FcotError:
        raise
    except (ValueError, OSError, yaml.YAMLError) as error:
        raise FcotError(" ".join(str(error).split()) or repr(error)) from error


def check_positive(args: Any, *names: str) -> None:
    """Counts a script's arguments must hold (questions, steps, batch sizes): each at least 1, or one line."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise FcotError(f"--{name} must be >= 1, got {value}")


def run_script(prog: str, arguments: type, script_main: Callable[[Any], Any], argv: list[str]) -> None:
    """A script's command line (the benchmarks'): its dataclass parsed by ``HfArgumentParser``, tokens kept out
    of the logs, and every user error one line (``--debug``: the traceback)."""
    import logging

    from transformers import HfArgumentParser

    from fcot_plugin.secrets import install_log_redaction

    debug, argv = debug_requested(argv)

    def cli() -> None:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
        install_log_redaction()
        parser = HfArgumentParser(arguments)
        (args,) = parse_or_fail(parser, lambda: parser.parse_args_into_dataclasses(args=argv))
        script_main(args)

    exit_with_one_line(prog, cli, debug)
