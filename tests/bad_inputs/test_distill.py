"""``fcot distill``: every bad argument, student, teacher, launch config, Hub target and run folder is refused in one
line naming the fix, before anything runs; the corrected command then passes parsing and ``check_distill``."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers.one_line import distill_accepts, distill_argv, one_line_error

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.core.command_line import settings_parser
from fcot_plugin.pipeline.run_folder import RunFolder, RunLock
from fcot_plugin.pipeline.settings import DistillArguments


def distill_fails(capsys, argv: list[str], expected: str) -> str:
    return one_line_error(capsys, fcot, ["distill", *argv], "fcot", expected)


# ---------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("argv", "fixed", "expected"),
    [
        (["--task", "coinflip"], ["--task", "coin_flip"], "unknown fcot task 'coinflip'; choose one of"),
        (
            ["--task", "coin_flip", "--diverse", "4"],
            ["--task", "coin_flip", "--diverse", "1"],
            "released rationales are greedy (D=1); --diverse needs a --teacher",
        ),
        (["--task", "gsm8k"], ["--task", "multiarith"], "the paper released no teacher rationales for 'gsm8k'"),
        (
            ["--task", "coin_flip", "--epochs", "three"],
            ["--task", "coin_flip", "--epochs", "3"],
            "invalid float value: 'three' (see fcot distill --help)",
        ),
        (["--task", "coin_flip", "--no_such_option", "1"], ["--task", "coin_flip"], "['--no_such_option', '1']"),
        (
            ["--task", "coin_flip", "--push_to_hub"],
            ["--task", "coin_flip"],
            "--push_to_hub needs --hub_model_id, the repo to push to (e.g. --hub_model_id my-org/",
        ),
        (
            ["--task", "coin_flip", "--hub_model_id", "me/s", "--hub_dataset_id", "me/d"],
            ["--task", "coin_flip"],
            "--hub_model_id and --hub_dataset_id name where to push, but --push_to_hub is off",
        ),
        (
            ["--task", "coin_flip", "--launcher", "slurm"],
            ["--task", "coin_flip", "--launcher", "python"],
            "launcher must be 'python' or 'accelerate'",
        ),
        (
            ["--task", "coin_flip", "--train_sampling_strategy", "by_size"],
            ["--task", "coin_flip", "--train_sampling_strategy", "random"],
            "unknown train_sampling_strategy 'by_size'; choose one of: group_by_length, random",
        ),
    ],
)
def test_distill_bad_arguments(capsys, tmp_path, tiny_model, argv, fixed, expected):
    distill_fails(capsys, [*argv, "--run_dir", str(tmp_path / "run")], expected)
    assert not (tmp_path / "run").exists()
    distill_accepts([*fixed, "--run_dir", str(tmp_path / "run"), "--student", str(tiny_model), "--device", "cpu"])


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


# ---------------------------------------------------------------------- the student


def test_distill_missing_student(capsys, tmp_path):
    expected = "student '/no/such/student' does not exist; pass an existing model folder or a Hub model id"
    distill_fails(capsys, distill_argv(Path("/no/such/student"), tmp_path / "run"), expected)
    assert not (tmp_path / "run").exists()


def test_distill_config_only_student_without_architectures(capsys, tmp_path, tiny_model):
    student = tmp_path / "student"
    student.mkdir()
    config = json.loads((tiny_model / "config.json").read_text())
    config.pop("architectures")
    (student / "config.json").write_text(json.dumps(config))
    distill_fails(capsys, distill_argv(student, tmp_path / "run"), "has no weights (model.safetensors")
    shutil.copy(tiny_model / "model.safetensors", student)
    distill_fails(capsys, distill_argv(student, tmp_path / "run"), "config.json names no architectures")
    assert not (tmp_path / "run").exists()


def test_distill_student_that_is_not_a_causal_lm(capsys, tmp_path):
    from transformers import BertConfig

    student = tmp_path / "bert"
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config.architectures = ["BertModel"]
    config.save_pretrained(student)
    (student / "model.safetensors").write_bytes(b"")
    distill_fails(capsys, distill_argv(student, tmp_path / "run"), "is a bert model (BertModel), not a causal LM")


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


# ---------------------------------------------------------------------- teacher, launch, Hub, folder


@pytest.mark.parametrize(
    ("teacher", "fixed", "expected"),
    [
        ("pretrained=/no/such/teacher", "pretrained={model}", "--teacher pretrained '/no/such/teacher' does not"),
        ("base=zscot,pretrained=gpt2", "base=hf,pretrained={model}", "zscot cannot wrap itself; pass base=hf"),
        (
            "base=no-such-backend,pretrained=gpt2",
            "base=hf-regroup,pretrained={model}",
            "unknown base model 'no-such-backend'; choose one of",
        ),
        ("pretrained", "pretrained={model}", "'pretrained' is not key=value"),
        (
            "base=hf,dtype=bfloat16",
            "base=hf,dtype=bfloat16,pretrained={model}",
            "model args name no pretrained=<Hub id or folder>",
        ),
    ],
)
def test_distill_bad_teacher(capsys, tmp_path, tiny_model, teacher, fixed, expected):
    distill_fails(capsys, distill_argv(tiny_model, tmp_path / "run", "--teacher", teacher), expected)
    assert not (tmp_path / "run").exists()
    distill_accepts(distill_argv(tiny_model, tmp_path / "run", "--teacher", fixed.format(model=tiny_model)))


def test_distill_teacher_temperature_zero_with_several_samples(capsys, tmp_path, tiny_model):
    argv = distill_argv(
        tiny_model,
        tmp_path / "run",
        "--teacher",
        f"pretrained={tiny_model}",
        "--diverse",
        "3",
        "--teacher_temperature",
        "0",
    )
    distill_fails(capsys, argv, "fcot_samples=3 with fcot_temperature=0 would give 3 identical greedy rationales")


def test_distill_unparsable_accelerate_config(capsys, tmp_path, tiny_model):
    config = tmp_path / "broken.yaml"
    config.write_text("distributed_type: DEEPSPEED\n  num_processes: [1\n")
    argv = distill_argv(tiny_model, tmp_path / "run", "--launcher", "accelerate", "--accelerate_config", str(config))
    distill_fails(capsys, argv, f"accelerate config {config} is not valid (")
    assert not (tmp_path / "run").exists()


def test_distill_missing_accelerate_config(capsys, tmp_path, tiny_model):
    argv = distill_argv(tiny_model, tmp_path / "run", "--launcher", "accelerate", "--accelerate_config", "nope.yaml")
    distill_fails(capsys, argv, "accelerate config nope.yaml not found")


def test_distill_invalid_deepspeed_json(capsys, tmp_path, tiny_model):
    (tmp_path / "zero.json").write_text('{"zero_optimization": {"stage": 2,}}')
    config = tmp_path / "zero.yaml"
    config.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\nnum_processes: 1\nuse_cpu: true\n"
        "deepspeed_config:\n  deepspeed_config_file: zero.json\n"
    )
    argv = distill_argv(tiny_model, tmp_path / "run", "--launcher", "accelerate", "--accelerate_config", str(config))
    distill_fails(capsys, argv, f"DeepSpeed config {tmp_path / 'zero.json'} is not valid")
    assert not (tmp_path / "run").exists()


def test_distill_push_without_a_token_fails_before_anything(capsys, tmp_path, tiny_model, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    distill_fails(
        capsys,
        distill_argv(tiny_model, tmp_path / "run", "--push_to_hub", "true", "--hub_model_id", "me/student"),
        "pushing to the Hub needs a valid token",
    )
    assert not (tmp_path / "run").exists()


def test_distill_run_dir_that_is_a_file(capsys, tmp_path, tiny_model):
    (tmp_path / "taken").write_text("x")
    distill_fails(capsys, distill_argv(tiny_model, tmp_path / "taken"), f"--run_dir {tmp_path / 'taken'} is a file")
    distill_fails(capsys, distill_argv(tiny_model, tmp_path / "taken" / "run"), "is a file; pass a folder path")


def test_distill_read_only_run_dir(capsys, tmp_path, tiny_model, monkeypatch):
    # The tests run as root, which writes anywhere: the check makes (and removes) a folder, refused here.
    from fcot_plugin.core import folders

    real_mkdtemp = folders.tempfile.mkdtemp

    def mkdtemp(prefix, dir):  # noqa: A002
        if Path(dir) == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / prefix))
        return real_mkdtemp(prefix=prefix, dir=dir)

    monkeypatch.setattr(folders.tempfile, "mkdtemp", mkdtemp)
    distill_fails(
        capsys, distill_argv(tiny_model, tmp_path / "run"), f"--run_dir: permission denied ({tmp_path / 'run'})"
    )
    assert not (tmp_path / "run").exists()


def test_distill_damaged_stage_record(capsys, tmp_path, tiny_model):
    RunFolder(tmp_path / "run").mark()
    (tmp_path / "run" / "stages").mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "run" / "stages" / "teacher.json").write_text("")
    damaged = tmp_path / "run" / "stages" / "teacher.json"
    distill_fails(
        capsys, distill_argv(tiny_model, tmp_path / "run"), f"{damaged} is damaged (Expecting value); pass --restart"
    )


def test_distill_on_a_folder_another_run_holds(capsys, tmp_path, tiny_model):
    (tmp_path / "run").mkdir()
    with RunLock(RunFolder(tmp_path / "run")):
        line = distill_fails(capsys, distill_argv(tiny_model, tmp_path / "run"), "is in use by another fcot run (pid")
    assert f"pid {os.getpid()} on " in line and "wait for it to finish, or pass another --run_dir" in line


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


# ---------------------------------------------------------------------- engines


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
    (
        ["--eval_engine", "sglang"],
        ["--eval_engine", "hf"],
        "unknown --eval_engine 'sglang'; choose one of: hf-regroup, hf, vllm",
    ),
    (
        ["--eval_engine", "vllm", "--lora", "true"],
        ["--eval_engine", "hf-regroup", "--lora", "true"],
        "a --lora student is an adapter: pass --eval_engine hf-regroup",
    ),
    (
        ["--eval_engine", "vllm", "--student", "T5"],
        ["--eval_engine", "hf-regroup", "--student", "T5"],
        "is an encoder-decoder model: pass --eval_engine hf-regroup",
    ),
    (
        ["--eval_engine", "vllm"],
        ["--eval_engine", "hf-regroup"],
        "has no bin/python; create it with `make vllm VLLM_VENV=",
    ),
]


@pytest.mark.parametrize(("bad", "fixed", "expected"), EVAL_ENGINE_CASES, ids=[c[2][:30] for c in EVAL_ENGINE_CASES])
def test_distill_eval_engine_arguments(capsys, monkeypatch, tmp_path, tiny_model, tiny_t5, bad, fixed, expected):
    """What --eval_engine vllm cannot score is refused before the first stage; --eval_engine hf-regroup scores it."""
    monkeypatch.setenv("FCOT_VLLM_VENV", str(tmp_path / "no-venv"))  # the last case: no vLLM environment
    run_dir = tmp_path / "run"
    bad, fixed = ([str(tiny_t5) if word == "T5" else word for word in words] for words in (bad, fixed))
    one_line_error(capsys, fcot, ["distill", *distill_argv(tiny_model, run_dir, *bad)], "fcot", expected)
    assert not run_dir.exists()
    distill_accepts(distill_argv(tiny_model, run_dir, *fixed))
