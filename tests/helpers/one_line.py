"""What every bad-input test checks: one ``prog: error:`` line, no traceback; and what a corrected command passes."""

from __future__ import annotations

import pytest


def one_line_error(capsys, entry_point, argv: list[str], prog: str, expected: str) -> str:
    """Run ``entry_point(argv)``: a non-zero exit and exactly one ``prog: error:`` line that contains ``expected``."""
    with pytest.raises(SystemExit) as exit_info:
        entry_point(argv)
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(lines) == 1, err[-2000:]
    assert expected in lines[0], lines[0]
    return lines[0]


def distill_argv(student, run_dir, *extra: str) -> list[str]:
    """A small ``fcot distill`` on the CPU: Coin Flip, ``student`` (a folder) into ``run_dir``, then ``extra``."""
    return ["--task", "coin_flip", "--student", str(student), "--run_dir", str(run_dir), "--device", "cpu", *extra]


def distill_accepts(argv: list[str]) -> None:
    """The corrected ``fcot distill`` gets through parsing and every check made before the first stage."""
    from fcot_plugin.core.command_line import settings_parser
    from fcot_plugin.pipeline.preflight import check_distill
    from fcot_plugin.pipeline.settings import DistillArguments

    (args,) = settings_parser(DistillArguments).parse_args_into_dataclasses(argv)
    check_distill(args)
