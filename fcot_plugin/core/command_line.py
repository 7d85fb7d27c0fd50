"""The command line every fcot command and benchmark script shares: one-line errors, ``--debug``, argument parsing.

Only :class:`~fcot_plugin.core.errors.FcotError` (and the argument errors of a command's parser) become a one-line
exit; any other exception is a bug and keeps its traceback. ``--debug`` or ``FCOT_DEBUG=1`` shows the traceback of
an ``FcotError`` too.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, NoReturn

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.numbers import FCOT_RANGE, check_ranges
from fcot_plugin.core.secrets import install_log_redaction

#: Field-metadata keys of fcot's own (what a setting feeds, its range), kept away from argparse
FCOT_METADATA = "fcot_feeds"
_PRIVATE_METADATA = (FCOT_METADATA, FCOT_RANGE)
DEBUG_FLAG = "--debug"
DEBUG_ENV = "FCOT_DEBUG"


def debug_requested(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether tracebacks were asked for, and ``argv`` without ``--debug``.

    ``--debug <value>`` is left alone: it is TrainingArguments' own option (e.g. ``--debug underflow_overflow``).
    """
    argv = list(argv)
    flags = [i for i, arg in enumerate(argv) if arg == DEBUG_FLAG and (i + 1 == len(argv) or argv[i + 1][:1] == "-")]
    rest = [arg for i, arg in enumerate(argv) if i not in flags]
    env = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return env or bool(flags), rest


def os_error_of(error: BaseException) -> OSError | None:
    """The ``OSError`` behind ``error``: itself, its cause or context, or the OS error a Rust library (safetensors'
    ``SafetensorError``: ``IoError(Os { code: 28, ... })``) names in its message; None for any other error."""
    import re

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError):
            return error
        found = re.search(r"Os \{ code: (\d+)", str(error)) if type(error).__name__ == "SafetensorError" else None
        if found:
            number = int(found[1])
            return OSError(number, os.strerror(number))
        error = error.__cause__ or error.__context__
    return None


def exit_with_one_line(prog: str, function: Callable[[], Any], debug: bool) -> Any:
    """Run ``function``; an :class:`FcotError` ends the process with ``<prog>: error: <message>``.

    So do Ctrl-C (exit 130: what finished is kept, the same command resumes) and every error of the operating
    system (a full disk, also while safetensors saves; a read-only, forbidden, missing or over-long path; a link
    loop): the path, the reason and the fix. Any other exception is a bug and keeps its traceback.
    """
    from fcot_plugin.core.folders import os_error_line
    from fcot_plugin.core.secrets import redact_text

    if not debug:
        quiet_leftover_tasks()
    try:
        return function()
    except FcotError as error:
        if debug:
            raise
        print(f"{prog}: error: {redact_text(' '.join(str(error).split()))}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print(
            f"{prog}: interrupted; what finished is kept, and the same command carries on from there", file=sys.stderr
        )
        raise SystemExit(130) from None
    except Exception as error:
        os_error = os_error_of(error)
        if debug or (os_error is None and not _impossible_path(error)):
            raise
        line = (
            os_error_line(os_error)
            if os_error is not None
            else ("a path holds a character no path can have (NUL, or a lone surrogate); pass another path")
        )
        print(f"{prog}: error: {redact_text(line)}", file=sys.stderr)
        raise SystemExit(1) from None


class _LeftoverTaskFilter(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" records and their tracebacks.

    lm-eval's API models send a batch of requests as asyncio tasks. When one fails (a server's HTTP 400, a dropped
    connection), fcot reports it in one line, and the requests still in flight then fail as lm-eval closes its
    session; asyncio logs each of those, traceback and all, when it collects them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Task exception was never retrieved")


def quiet_leftover_tasks() -> None:
    """Keep asyncio's leftover-task tracebacks out of the terminal (``--debug`` shows them)."""
    log = logging.getLogger("asyncio")
    if not any(isinstance(existing, _LeftoverTaskFilter) for existing in log.filters):
        log.addFilter(_LeftoverTaskFilter())


def _impossible_path(error: BaseException) -> bool:
    """The error the os module raises for a path no file system takes (a NUL byte, an unencodable character)."""
    if isinstance(error, UnicodeEncodeError):
        return "surrogates not allowed" in str(error)
    return isinstance(error, ValueError) and "embedded null" in str(error)


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
    from fcot_plugin.core.numbers import COUNT

    for name in names:
        COUNT.check(name, getattr(args, name))


def run_script(prog: str, arguments: type, script_main: Callable[[Any], Any], argv: list[str]) -> None:
    """A script's command line (the benchmarks'): its dataclass parsed by ``HfArgumentParser``, tokens kept out
    of the logs, and every user error one line (``--debug``: the traceback)."""
    import logging

    debug, argv = debug_requested(argv)

    def cli() -> None:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
        install_log_redaction()
        parser = settings_parser(arguments)
        (args,) = parse_or_fail(parser, lambda: parser.parse_args_into_dataclasses(args=argv))
        check_ranges(args)  # every float finite, every int 64-bit, every declared range: before any work
        check_script_paths(args)
        script_main(args)

    exit_with_one_line(prog, cli, debug)


#: A script's path options by name, and what it writes there: ``<output>.json``/``.md`` files, or folders
SCRIPT_OUTPUT_FILES = ("output",)
SCRIPT_OUTPUT_FOLDERS = ("runs_dir", "save_student")


def check_script_paths(args: Any) -> None:
    """A benchmark's output paths, through the one safety check every fcot command makes
    (:mod:`fcot_plugin.core.folders`): never empty, the current folder, home or the root; writable."""
    from fcot_plugin.core.folders import check_output_file, check_output_folder

    for name in SCRIPT_OUTPUT_FILES:
        if getattr(args, name, None) is not None:
            check_output_file(getattr(args, name), f"--{name}")
    for name in SCRIPT_OUTPUT_FOLDERS:
        if getattr(args, name, None) is not None:
            check_output_folder(getattr(args, name), f"--{name}", replaces=False)


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


def settings_parser(dataclass_types: Any, *, base: type | None = None, **kwargs: Any) -> Any:
    """``HfArgumentParser`` over ``dataclass_types`` that hands argparse only what argparse takes.

    fcot's settings carry what they feed in their field metadata (under :data:`FCOT_METADATA`, see
    :mod:`fcot_plugin.pipeline.settings`); ``HfArgumentParser`` passes a field's metadata to ``add_argument``,
    which would refuse that key. ``base``: the parser class to extend (default: :func:`hf_argument_parser`'s).
    """
    base = base or hf_argument_parser()

    class SettingsParser(base):
        @staticmethod
        def _parse_dataclass_field(parser, field):
            if any(key in field.metadata for key in _PRIVATE_METADATA):
                field = copy.copy(field)
                kept = {k: v for k, v in field.metadata.items() if k not in _PRIVATE_METADATA}
                field.metadata = MappingProxyType(kept)
            base._parse_dataclass_field(parser, field)

    return SettingsParser(dataclass_types, **kwargs)
