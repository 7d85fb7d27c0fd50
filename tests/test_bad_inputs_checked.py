"""Bad inputs refused in one line before anything runs, and the corrected command then accepted.

Each case: a non-zero exit, exactly one ``<prog>: error:`` line naming the problem, no traceback, nothing written;
then the corrected command passes the same checks (``fcot distill`` up to its first stage: parsing and
``check_distill``; ``fcot curate`` to the end; ``fcot evaluate`` and ``recipes/sft.py`` through parsing).
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from helpers.one_line import one_line_error
from helpers.recipe import sft_recipe

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.core.command_line import exit_with_one_line, settings_parser
from fcot_plugin.pipeline.preflight import check_distill
from fcot_plugin.pipeline.settings import DistillArguments, EvaluateArguments


def distill_accepts(argv: list[str]) -> None:
    (args,) = settings_parser(DistillArguments).parse_args_into_dataclasses(argv)
    check_distill(args)


def distill_argv(tiny_model: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["--task", "coin_flip", "--student", str(tiny_model), "--run_dir", str(run_dir), "--device", "cpu", *extra]


RANGES = [
    (["--epochs", "0"], ["--epochs", "1"], "--epochs must be > 0, got 0.0"),
    (["--epochs", "-1"], ["--epochs", "2"], "--epochs must be > 0, got -1.0"),
    (["--train_limit", "-2"], ["--train_limit", "2"], "--train_limit must be >= 1, got -2"),
    (["--train_limit", "0"], ["--train_limit", "3"], "--train_limit must be >= 1, got 0"),
    (["--learning_rate", "0"], ["--learning_rate", "3e-4"], "--learning_rate must be > 0, got 0.0"),
    (["--learning_rate=-1e-4"], ["--learning_rate", "1e-4"], "--learning_rate must be > 0, got -0.0001"),
    (["--batch_size", "0"], ["--batch_size", "4"], "--batch_size must be >= 1, got 0"),
    (["--eval_limit", "0"], ["--eval_limit", "2"], "--eval_limit must be >= 1, got 0"),
    (["--eval_batch_size", "-4"], ["--eval_batch_size", "4"], "--eval_batch_size must be >= 1, got -4"),
    (["--max_gen_toks", "0"], ["--max_gen_toks", "8"], "--max_gen_toks must be >= 1, got 0"),
    (["--validation_size", "-0.1"], ["--validation_size", "0.1"], "--validation_size must be >= 0, got -0.1"),
    (["--num_processes", "0"], ["--num_processes", "1"], "--num_processes must be >= 1, got 0"),
    (["--seed", "-1"], ["--seed", "0"], "--seed must be between 0 and 4294967295, got -1"),
    (
        ["--validation_seed", "-3"],
        ["--validation_seed", "3"],
        "--validation_seed must be between 0 and 4294967295, got -3",
    ),
]


@pytest.mark.parametrize(("bad", "fixed", "expected"), RANGES, ids=[" ".join(case[0]) for case in RANGES])
def test_distill_numbers_out_of_range(capsys, tmp_path, tiny_model, bad, fixed, expected):
    run_dir = tmp_path / "run"
    one_line_error(capsys, fcot, ["distill", *distill_argv(tiny_model, run_dir, *bad)], "fcot", expected)
    assert not run_dir.exists()
    distill_accepts(distill_argv(tiny_model, run_dir, *fixed))


TEACHER_CASES = [
    (["--teacher_max_gen_toks", "-5"], ["--teacher_max_gen_toks", "16"], "--teacher_max_gen_toks must be >= 1"),
    (["--teacher_max_gen_toks", "0"], ["--teacher_max_gen_toks", "16"], "--teacher_max_gen_toks must be >= 1"),
    (["--diverse", "0"], ["--diverse", "2"], "--diverse must be >= 1, got 0"),
    (["--teacher_temperature", "-0.5"], ["--teacher_temperature", "0.5"], "--teacher_temperature must be >= 0"),
]


@pytest.mark.parametrize(("bad", "fixed", "expected"), TEACHER_CASES, ids=[" ".join(c[0]) for c in TEACHER_CASES])
def test_distill_teacher_numbers_out_of_range(capsys, tmp_path, tiny_model, bad, fixed, expected):
    teacher = ["--teacher", f"pretrained={tiny_model}"]
    run_dir = tmp_path / "run"
    argv = ["distill", *distill_argv(tiny_model, run_dir, *teacher, *bad)]
    one_line_error(capsys, fcot, argv, "fcot", expected)
    distill_accepts(distill_argv(tiny_model, run_dir, *teacher, *fixed))


@pytest.mark.parametrize(
    ("teacher", "fixed", "expected"),
    [
        (
            "{model}answer_trigerr=typed",
            "{model}answer_trigger=typed",
            "'answer_trigerr' is not an argument of zscot or of its base 'hf-regroup'; did you mean 'answer_trigger'?",
        ),
        ("{model}dtyp=float32", "{model}dtype=float32", "did you mean 'dtype'?"),
        (
            "base=local-completions,model=m,base_url=http://127.0.0.1:9/v1/completions,num_concurent=4,tokenizer={path}",
            "base=hf,{model}answer_max_gen_toks=4",
            "'num_concurent' is not an argument of zscot or of its base "
            "'local-completions'; did you mean 'num_concurrent'?",
        ),
        (
            '{{"pretrained": "{path}", "answer_trigger": "x",}}',
            '{{"pretrained": "{path}", "answer_trigger": "\\nTherefore, among A through E, the answer is"}}',
            "--teacher is not a valid JSON object",
        ),
        ("[1, 2]", "pretrained={path}", "'[1' is not key=value"),
    ],
)
def test_distill_teacher_arguments(capsys, tmp_path, tiny_model, teacher, fixed, expected):
    model = f"pretrained={tiny_model},"
    bad, good = (text.format(model=model, path=tiny_model) for text in (teacher, fixed))
    run_dir = tmp_path / "run"
    one_line_error(capsys, fcot, ["distill", *distill_argv(tiny_model, run_dir, "--teacher", bad)], "fcot", expected)
    distill_accepts(distill_argv(tiny_model, run_dir, "--teacher", good))


def test_a_trigger_with_commas_reaches_the_teacher_through_json(tmp_path, tiny_model):
    (args,) = settings_parser(DistillArguments).parse_args_into_dataclasses(
        distill_argv(
            tiny_model,
            tmp_path / "r",
            ("--teacher"),
            json.dumps({"pretrained": str(tiny_model), "answer_trigger": "Therefore, among A through E,"}),
        )
    )
    model_args = args.teacher_spec.model_args(cache="c.sqlite")
    assert model_args == {
        "cache": "c.sqlite",
        "pretrained": str(tiny_model),
        "answer_trigger": "Therefore, among A through E,",
    }


def student_copy(tiny_model: Path, tmp_path: Path) -> Path:
    student = tmp_path / "student"
    shutil.copytree(tiny_model, student)
    return student


def test_a_student_without_a_tokenizer(capsys, tmp_path, tiny_model):
    student = student_copy(tiny_model, tmp_path)
    moved = tmp_path / "tokenizer"
    moved.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
        if (student / name).exists():
            shutil.move(str(student / name), moved / name)
    argv = distill_argv(student, tmp_path / "run")
    one_line_error(capsys, fcot, ["distill", *argv], "fcot", "has no tokenizer (no tokenizer.json or tokenizer_config")
    for path in moved.iterdir():
        shutil.move(str(path), student / path.name)
    distill_accepts(argv)


def test_a_student_with_cut_short_weights(capsys, tmp_path, tiny_model):
    student = student_copy(tiny_model, tmp_path)
    weights = student / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as handle:
        handle.truncate(size // 2)
    argv = distill_argv(student, tmp_path / "run")
    one_line_error(capsys, fcot, ["distill", *argv], "fcot", "model.safetensors cannot be read (")
    shutil.copy(tiny_model / "model.safetensors", weights)
    distill_accepts(argv)


def test_evaluate_eval_engine_unknown(capsys, tiny_model):
    base = ["--model", str(tiny_model), "--task", "coin_flip"]
    expected = "unknown --eval_engine 'sglang'; choose one of: hf, vllm"
    one_line_error(capsys, fcot, ["evaluate", *base, "--eval_engine", "sglang"], "fcot", expected)
    settings_parser(EvaluateArguments).parse_args_into_dataclasses([*base, "--eval_engine", "hf"])


@pytest.mark.parametrize(
    ("bad", "fixed", "expected"),
    [
        (["--limit", "0"], ["--limit", "2"], "--limit must be >= 1, got 0"),
        (["--batch_size", "0"], ["--batch_size", "8"], "--batch_size must be >= 1, got 0"),
        (["--max_gen_toks", "-1"], ["--max_gen_toks", "8"], "--max_gen_toks must be >= 1, got -1"),
    ],
)
def test_evaluate_numbers_out_of_range(capsys, tiny_model, bad, fixed, expected):
    base = ["--model", str(tiny_model), "--task", "coin_flip"]
    one_line_error(capsys, fcot, ["evaluate", *base, *bad], "fcot", expected)
    settings_parser(EvaluateArguments).parse_args_into_dataclasses([*base, *fixed])


@pytest.mark.parametrize(
    ("bad", "fixed", "expected"),
    [
        (["--num_train_epochs", "-2"], ["--num_train_epochs", "2"], "num_train_epochs must be > 0 (or set max_steps)"),
        (["--learning_rate", "0"], ["--learning_rate", "3e-4"], "learning_rate must be > 0, got 0.0"),
        (
            ["--per_device_train_batch_size", "0"],
            ["--per_device_train_batch_size", "2"],
            "per_device_train_batch_size must be >= 1, got 0",
        ),
        (
            ["--gradient_accumulation_steps", "0"],
            ["--gradient_accumulation_steps", "2"],
            "gradient_accumulation_steps must be >= 1, got 0",
        ),
    ],
)
def test_sft_numbers_out_of_range(capsys, tmp_path, tiny_model, bad, fixed, expected):
    base = [
        "--task",
        "coin_flip",
        "--model_name_or_path",
        str(tiny_model),
        "--dataset_name",
        "x",
        "--output_dir",
        str(tmp_path / "out"),
        "--use_cpu",
        "true",
        "--report_to",
        "none",
    ]
    one_line_error(capsys, sft_recipe().main, [*base, *bad], "sft.py", expected)
    assert not (tmp_path / "out").exists()
    sft_recipe().make_parser().parse_args_and_config([*base, *fixed])


def paper_samples(tmp_path: Path, name: str, split: str = "train", questions: int = 3) -> Path:
    """A samples file as lm-eval writes it, from the paper's rationales (``split`` picks the questions)."""
    from fcot_plugin.tasks.registry import load_rows

    lines = []
    for doc_id, row in enumerate(load_rows("coin_flip", split)[:questions]):
        doc = {
            "fcot_task": "coin_flip",
            "sample_index": row["sample_index"],
            "question": row["question"],
            "answer": row["answer"],
        }
        response = f" The coin is flipped.\nTherefore, the answer is {row['answer'].lower()}."
        lines.append(json.dumps({"doc_id": doc_id, "doc": doc, "resps": [[response]], "filter": "fcot"}))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_samples_file_is_judged_by_what_it_holds(capsys, tmp_path):
    out = tmp_path / "data"
    renamed = paper_samples(tmp_path, "my_teacher_run.jsonl")  # any name: its content is train-split teacher output
    fcot(["curate", "--task", "coin_flip", "--samples", str(renamed), "--out", str(out)])
    assert (out / "dataset_dict.json").is_file()
    capsys.readouterr()
    test_split = paper_samples(tmp_path, "samples_fcot_coin_flip_teacher_2026-01-01T00-00-00.000000.jsonl", "test")
    one_line_error(
        capsys,
        fcot,
        ["curate", "--task", "coin_flip", "--samples", str(test_split), "--out", str(tmp_path / "leak")],
        "fcot",
        "is not from coin_flip's train split",
    )
    assert not (tmp_path / "leak").exists()


def test_a_samples_file_that_is_not_utf8(capsys, tmp_path):
    samples = paper_samples(tmp_path, "samples.jsonl")
    good = samples.read_bytes()
    samples.write_bytes(b"\xff\xfe" + good)
    out = tmp_path / "data"
    argv = ["curate", "--task", "coin_flip", "--samples", str(samples), "--out", str(out)]
    one_line_error(capsys, fcot, argv, "fcot", "is not UTF-8 text (byte 0); pass the samples_*.jsonl file")
    assert not out.exists()
    samples.write_bytes(good)
    fcot(argv)
    assert (out / "dataset_dict.json").is_file()


def test_a_data_file_that_is_not_utf8(tmp_path):
    from fcot_plugin.tasks.registry import DatasetError, read_jsonl

    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(DatasetError, match="is not UTF-8 text \\(byte 17\\); save it as UTF-8 JSON lines"):
        read_jsonl(path)
    path.write_text('{"question": "café", "answer": "1"}\n', encoding="utf-8")
    assert read_jsonl(path)[0]["question"] == "café"


def raising(error: BaseException):
    def function():
        raise error

    return function


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        (KeyboardInterrupt(), 130, "prog: interrupted; what finished is kept, and the same command carries on"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/data/run/student"),
            1,
            "prog: error: the disk is full (/data/run/student); free some space and run the same command again",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/data/run/student"),
            1,
            "prog: error: permission denied (/data/run/student); make it writable and run the same command again",
        ),
        (OSError(errno.EROFS, "Read-only file system", "/ro"), 1, "prog: error: read-only file system (/ro)"),
    ],
)
def test_ctrl_c_a_full_disk_and_an_unwritable_path_are_one_line(capsys, error, code, expected):
    with pytest.raises(SystemExit) as exit_info:
        exit_with_one_line("prog", raising(error), debug=False)
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.strip() == expected or (err.count("\n") == 1 and err.startswith(expected)), err
    assert exit_with_one_line("prog", lambda: 7, debug=False) == 7  # the corrected run goes through


def test_every_os_error_is_one_line_and_debug_keeps_its_traceback(capsys):
    with pytest.raises(SystemExit):
        exit_with_one_line("prog", raising(FileNotFoundError(errno.ENOENT, "gone", "/proc/x")), debug=False)
    assert capsys.readouterr().err.strip() == (
        "prog: error: no such file or folder (/proc/x); pass a path in a folder that exists and can hold files"
    )
    with pytest.raises(FileNotFoundError):
        exit_with_one_line("prog", raising(FileNotFoundError(errno.ENOENT, "gone", "/x")), debug=True)


def test_fcot_eval_a_task_found_nowhere(capsys, tiny_model):
    from fcot_plugin.cli.fcot_eval import main as eval_main

    argv = ["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "fcto_coin_flip", "--limit", "1"]
    line = one_line_error(capsys, eval_main, argv, "fcot-eval", "unknown task 'fcto_coin_flip' (neither fcot's nor")
    assert "did you mean: fcot_coin_flip" in line


def test_curate_push_to_a_bad_repo_id_leaves_nothing_and_the_corrected_command_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "data"
    argv = ["curate", "--task", "coin_flip", "--samples", "paper", "--out", str(out)]
    one_line_error(capsys, fcot, [*argv, "--push_to_hub", "user/coin flip"], "fcot", "is not a valid Hub repo id")
    assert not out.exists()
    fcot(argv)
    assert (out / "dataset_dict.json").is_file()


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (["--teacher_engine", "vllm"], "--teacher_engine vllm serves the model --teacher names, so --teacher is a"),
        (["--teacher_engine", "sglang", "--teacher", "x"], "unknown --teacher_engine 'sglang'; choose one of: vllm"),
        (["--teacher_engine", "transformers", "--teacher", "pretrained=x"], "--teacher is a model folder or Hub id"),
    ],
)
def test_distill_teacher_engine_arguments(capsys, tmp_path, tiny_model, bad, expected):
    run_dir = tmp_path / "run"
    one_line_error(capsys, fcot, ["distill", *distill_argv(tiny_model, run_dir, *bad)], "fcot", expected)
    assert not run_dir.exists()
    distill_accepts(
        distill_argv(tiny_model, run_dir, "--teacher_engine", "transformers", "--teacher", str(tiny_model))
    )


EVAL_ENGINE_CASES = [
    (["--eval_engine", "sglang"], ["--eval_engine", "hf"], "unknown --eval_engine 'sglang'; choose one of: hf, vllm"),
    (
        ["--eval_engine", "vllm", "--lora", "true"],
        ["--eval_engine", "hf", "--lora", "true"],
        "a --lora student is an adapter: pass --eval_engine hf",
    ),
    (
        ["--eval_engine", "vllm", "--student", "T5"],
        ["--eval_engine", "hf", "--student", "T5"],
        "is an encoder-decoder model: pass --eval_engine hf",
    ),
    (["--eval_engine", "vllm"], ["--eval_engine", "hf"], "has no bin/python; create it with `make vllm VLLM_VENV="),
]


@pytest.mark.parametrize(("bad", "fixed", "expected"), EVAL_ENGINE_CASES, ids=[c[2][:30] for c in EVAL_ENGINE_CASES])
def test_distill_eval_engine_arguments(capsys, monkeypatch, tmp_path, tiny_model, tiny_t5, bad, fixed, expected):
    """What --eval_engine vllm cannot score is refused before the first stage; --eval_engine hf scores it."""
    monkeypatch.setenv("FCOT_VLLM_VENV", str(tmp_path / "no-venv"))  # the last case: no vLLM environment
    run_dir = tmp_path / "run"
    bad, fixed = ([str(tiny_t5) if word == "T5" else word for word in words] for words in (bad, fixed))
    one_line_error(capsys, fcot, ["distill", *distill_argv(tiny_model, run_dir, *bad)], "fcot", expected)
    assert not run_dir.exists()
    distill_accepts(distill_argv(tiny_model, run_dir, *fixed))
