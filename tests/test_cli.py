"""The commands a user types: fcot-eval and plain lm_eval (the installed hook finds the fcot tasks).

Console scripts are run from this interpreter's scripts folder, so the tests pass without the venv's bin on PATH.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers.commands import run, script

from fcot_plugin.tasks.names import VARIANTS, group_name


def test_task_list(tmp_path):
    result = run(script("fcot-eval"), "--tasks", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for variant in VARIANTS:
        assert group_name(variant) in result.stdout
    assert "fcot_multiarith_teacher_diverse" in result.stdout


def test_task_dir_is_printed(tmp_path):
    result = run(sys.executable, "-m", "fcot_plugin.task_dir", cwd=tmp_path)
    assert (Path(result.stdout.strip()) / "multiarith" / "fcot_multiarith.yaml").is_file()


def test_unknown_task_is_named_with_suggestions(tmp_path):
    result = run(script("fcot-eval"), "--model", "hf", "--tasks", "fcot_multiarth", cwd=tmp_path)
    assert result.returncode != 0
    assert "unknown fcot task 'fcot_multiarth'. Did you mean: fcot_multiarith" in result.stderr


def test_bad_dataset_gives_a_message_not_a_traceback(tiny_model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "How many?", "answer": "forty"}) + "\n")
    result = run(
        script("fcot-eval"),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model}",
        "--tasks",
        "fcot_multiarith",
        "--metadata",
        json.dumps({"fcot_data": str(bad)}),
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "row 0: multiarith: gold answer 'forty' is not a number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], "distill"),
        (["distill", "--help"], "--teacher"),
        (["curate", "--help"], "--samples"),
        (["evaluate", "--help"], "--dataset_format"),
    ],
)
def test_fcot_help_imports_neither_torch_nor_trl(tmp_path, argv, expected):
    """``--help`` exits before any config's ``__post_init__``: nothing heavy may load (each costs seconds)."""
    code = (
        f"import sys\nfrom fcot_plugin.cli.fcot import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'trl', 'transformers', 'lm_eval', 'datasets') if m in sys.modules])"
    )
    result = run(sys.executable, "-c", code, cwd=tmp_path)
    assert expected in result.stdout and result.stdout.strip().endswith("[]"), result.stdout + result.stderr


def test_fast_argument_parser_is_transformers_own():
    """``fcot <command>`` parses with transformers' HfArgumentParser code, loaded without the package."""
    from transformers import HfArgumentParser

    from fcot_plugin.cli.fcot import HelpFormatter
    from fcot_plugin.core.command_line import hf_argument_parser, settings_parser
    from fcot_plugin.pipeline.settings import DistillArguments

    sys.modules.pop("_fcot_hf_argparser", None)
    transformers = sys.modules.pop("transformers")
    try:
        fast = hf_argument_parser()
    finally:
        sys.modules["transformers"] = transformers
    assert fast is not HfArgumentParser and fast.__module__ == "_fcot_hf_argparser"
    helps = [
        settings_parser(DistillArguments, base=parser, formatter_class=HelpFormatter).format_help()
        for parser in (fast, HfArgumentParser)
    ]
    assert helps[0] == helps[1]
    parser = settings_parser(DistillArguments, base=fast)
    (args,) = parser.parse_args_into_dataclasses(["--task", "multiarith", "--baselines", "false"])
    assert args.task == "multiarith" and args.baselines is False


def test_help_states_each_default_once():
    from fcot_plugin.cli.fcot import HelpFormatter
    from fcot_plugin.core.command_line import settings_parser
    from fcot_plugin.pipeline.settings import CurateArguments, DistillArguments, EvaluateArguments

    for arguments in (CurateArguments, DistillArguments, EvaluateArguments):
        parser = settings_parser(arguments, formatter_class=HelpFormatter)
        formatter = parser._get_formatter()
        texts = [(formatter._get_help_string(action) or "") % vars(action) for action in parser._actions]
        assert all(text.count("(default") <= 1 and "(default: None)" not in text for text in texts), texts
        assert any("(default: " in text for text in texts)
