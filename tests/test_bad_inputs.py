"""Every bad input a user can type ends with one line naming the fix: no traceback, no partial files.

Most cases call the three entry points in-process (``fcot``, ``fcot-eval``, ``recipes/sft.py``); a few run the
real console scripts to check the exit status and that ``--debug`` brings the traceback back.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.one_line import distill_accepts, one_line_error
from helpers.paths import REPO, SFT_RECIPE
from helpers.recipe import sft_recipe

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.cli.fcot_eval import main as eval_main
from fcot_plugin.pipeline.run_folder import RunFolder, RunLock


def distill_fails(capsys, argv: list[str], expected: str) -> str:
    return one_line_error(capsys, fcot, ["distill", *argv], "fcot", expected)


def tiny_distill(tiny_model: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["--task", "coin_flip", "--student", str(tiny_model), "--run_dir", str(run_dir), *extra]


# ---------------------------------------------------------------------- fcot distill: arguments


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


# ---------------------------------------------------------------------- fcot distill: the student


def test_distill_missing_student(capsys, tmp_path):
    expected = "student '/no/such/student' does not exist; pass an existing model folder or a Hub model id"
    distill_fails(capsys, tiny_distill(Path("/no/such/student"), tmp_path / "run"), expected)
    assert not (tmp_path / "run").exists()


def test_distill_config_only_student_without_architectures(capsys, tmp_path, tiny_model):
    student = tmp_path / "student"
    student.mkdir()
    config = json.loads((tiny_model / "config.json").read_text())
    config.pop("architectures")
    (student / "config.json").write_text(json.dumps(config))
    distill_fails(capsys, tiny_distill(student, tmp_path / "run"), "has no weights (model.safetensors")
    shutil.copy(tiny_model / "model.safetensors", student)
    distill_fails(capsys, tiny_distill(student, tmp_path / "run"), "config.json names no architectures")
    assert not (tmp_path / "run").exists()


def test_distill_student_that_is_not_a_causal_lm(capsys, tmp_path):
    from transformers import BertConfig

    student = tmp_path / "bert"
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config.architectures = ["BertModel"]
    config.save_pretrained(student)
    (student / "model.safetensors").write_bytes(b"")
    distill_fails(capsys, tiny_distill(student, tmp_path / "run"), "is a bert model (BertModel), not a causal LM")


# ---------------------------------------------------------------------- fcot distill: teacher, launch, Hub, folder


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
    distill_fails(capsys, tiny_distill(tiny_model, tmp_path / "run", "--teacher", teacher), expected)
    assert not (tmp_path / "run").exists()
    distill_accepts(
        tiny_distill(tiny_model, tmp_path / "run", "--teacher", fixed.format(model=tiny_model), "--device", "cpu")
    )


def test_distill_teacher_temperature_zero_with_several_samples(capsys, tmp_path, tiny_model):
    argv = tiny_distill(
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
    argv = tiny_distill(tiny_model, tmp_path / "run", "--launcher", "accelerate", "--accelerate_config", str(config))
    distill_fails(capsys, argv, f"accelerate config {config} is not valid (")
    assert not (tmp_path / "run").exists()


def test_distill_missing_accelerate_config(capsys, tmp_path, tiny_model):
    argv = tiny_distill(tiny_model, tmp_path / "run", "--launcher", "accelerate", "--accelerate_config", "nope.yaml")
    distill_fails(capsys, argv, "accelerate config nope.yaml not found")


def test_distill_invalid_deepspeed_json(capsys, tmp_path, tiny_model):
    (tmp_path / "zero.json").write_text('{"zero_optimization": {"stage": 2,}}')
    config = tmp_path / "zero.yaml"
    config.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\nnum_processes: 1\nuse_cpu: true\n"
        "deepspeed_config:\n  deepspeed_config_file: zero.json\n"
    )
    argv = tiny_distill(tiny_model, tmp_path / "run", "--launcher", "accelerate", "--accelerate_config", str(config))
    distill_fails(capsys, argv, f"DeepSpeed config {tmp_path / 'zero.json'} is not valid")
    assert not (tmp_path / "run").exists()


def test_distill_push_without_a_token_fails_before_anything(capsys, tmp_path, tiny_model, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    distill_fails(
        capsys,
        tiny_distill(tiny_model, tmp_path / "run", "--push_to_hub", "me"),
        "pushing to the Hub needs a valid token",
    )
    assert not (tmp_path / "run").exists()


def test_distill_run_dir_that_is_a_file(capsys, tmp_path, tiny_model):
    (tmp_path / "taken").write_text("x")
    distill_fails(capsys, tiny_distill(tiny_model, tmp_path / "taken"), f"--run_dir {tmp_path / 'taken'} is a file")
    distill_fails(capsys, tiny_distill(tiny_model, tmp_path / "taken" / "run"), "is a file; pass a folder path")


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
        capsys, tiny_distill(tiny_model, tmp_path / "run"), f"--run_dir: permission denied ({tmp_path / 'run'})"
    )
    assert not (tmp_path / "run").exists()


def test_distill_damaged_stage_record(capsys, tmp_path, tiny_model):
    (tmp_path / "run" / "stages").mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text("{}")  # a run folder of an earlier fcot (no marker)
    (tmp_path / "run" / "stages" / "teacher.json").write_text("")
    damaged = tmp_path / "run" / "stages" / "teacher.json"
    distill_fails(
        capsys, tiny_distill(tiny_model, tmp_path / "run"), f"{damaged} is damaged (Expecting value); pass --restart"
    )


def test_distill_on_a_folder_another_run_holds(capsys, tmp_path, tiny_model):
    (tmp_path / "run").mkdir()
    with RunLock(RunFolder(tmp_path / "run")):
        line = distill_fails(capsys, tiny_distill(tiny_model, tmp_path / "run"), "is in use by another fcot run (pid")
    assert f"pid {os.getpid()} on " in line and "wait for it to finish, or pass another --run_dir" in line


# ---------------------------------------------------------------------- fcot curate and fcot evaluate


def curate_fails(capsys, argv: list[str], expected: str) -> str:
    return one_line_error(capsys, fcot, ["curate", "--task", "coin_flip", *argv], "fcot", expected)


def test_curate_samples_file_that_is_not_json(capsys, tmp_path):
    samples = tmp_path / "samples_fcot_coin_flip_teacher_2026-01-01T00-00-00.000000.jsonl"
    samples.write_text("this is not json\n")
    curate_fails(capsys, ["--samples", str(samples), "--out", str(tmp_path / "data")], f"{samples}:1: not JSON")
    assert not (tmp_path / "data").exists()


def test_curate_folder_with_two_teacher_runs(capsys, tmp_path):
    for stamp in ("2026-01-01T00-00-00.000000", "2026-01-02T00-00-00.000000"):
        (tmp_path / "out" / "model").mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / "model" / f"samples_fcot_coin_flip_teacher_{stamp}.jsonl").write_text("")
    line = curate_fails(
        capsys, ["--samples", str(tmp_path / "out"), "--out", str(tmp_path / "data")], "holds 2 teacher runs ("
    )
    assert "2026-01-01" in line and "2026-01-02" in line and "curation reads exactly one" in line


@pytest.mark.parametrize(
    ("argv", "fixed", "expected"),
    [
        (
            ["--samples", "/no/such/samples"],
            ["--samples", "paper"],
            "/no/such/samples does not exist; pass an lm-eval output folder",
        ),
        (
            ["--samples", "paper", "--format", "chat"],
            ["--samples", "paper", "--format", "vanilla"],
            "unknown dataset format 'chat'; choose one of: fcot, vanilla",
        ),
    ],
)
def test_curate_bad_arguments(capsys, tmp_path, argv, fixed, expected):
    curate_fails(capsys, [*argv, "--out", str(tmp_path / "data")], expected)
    assert not (tmp_path / "data").exists()
    fcot(["curate", "--task", "coin_flip", *fixed, "--out", str(tmp_path / "data")])  # the corrected command runs
    assert (tmp_path / "data" / "dataset_dict.json").is_file()


def test_curate_existing_out_and_out_under_a_file(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    curate_fails(capsys, ["--samples", "paper", "--out", str(tmp_path / "data")], "already exists; choose another")
    (tmp_path / "file").write_text("x")
    curate_fails(capsys, ["--samples", "paper", "--out", str(tmp_path / "file" / "data")], "is a file")


def test_evaluate_missing_model(capsys, tmp_path):
    one_line_error(
        capsys,
        fcot,
        ["evaluate", "--model", str(tmp_path / "nope"), "--task", "coin_flip"],
        "fcot",
        f"--model '{tmp_path / 'nope'}' does not exist",
    )


# ---------------------------------------------------------------------- fcot-eval


TEACHER = ["--tasks", "fcot_coin_flip_teacher"]


@pytest.mark.parametrize(
    ("argv", "fixed", "expected"),
    [
        (
            ["--tasks", "multiarith"],
            ["--tasks", "fcot_multiarith"],
            "unknown task 'multiarith': fcot tasks carry the fcot_ prefix, did you mean",
        ),
        (
            [*TEACHER, "--metadata", "{fcot_samples: 2"],
            [*TEACHER, "--metadata", '{"fcot_samples": 1}'],
            "--metadata is not JSON",
        ),
        (
            [*TEACHER, "--metadata", '{"fcot_samples": "four"}'],
            [*TEACHER, "--metadata", '{"fcot_samples": 1}'],
            "fcot_samples must be a whole number >= 1, got 'four'",
        ),
        (
            [*TEACHER, "--metadata", '{"fcot_samples": 2, "fcot_temperature": 0}'],
            [*TEACHER, "--metadata", '{"fcot_samples": 2, "fcot_temperature": 0.7}'],
            "identical greedy rationales",
        ),
        (
            [*TEACHER, "--metadata", '{"fcot_samples": 2}'],
            [*TEACHER, "--metadata", '{"fcot_samples": 1}'],
            'add "fcot_temperature"',
        ),
        (
            ["--model", "hf", "--model_args", "pretrained=/no/such/model", "--tasks", "fcot_coin_flip"],
            ["--model", "hf", "--model_args", "pretrained={model}", "--tasks", "fcot_coin_flip"],
            "--model_args pretrained '/no/such/model' does not exist",
        ),
        (
            ["--model", "zscot", "--model_args", "base=zscot,pretrained=gpt2", *TEACHER],
            ["--model", "zscot", "--model_args", "base=hf,pretrained={model}", *TEACHER],
            "zscot cannot wrap itself",
        ),
    ],
)
def test_fcot_eval_bad_arguments(capsys, tiny_model, argv, fixed, expected):
    from fcot_plugin.cli.fcot_eval import fcot_task_names
    from fcot_plugin.pipeline.preflight import check_lm_eval_arguments

    one_line_error(capsys, eval_main, argv, "fcot-eval", expected)
    check_lm_eval_arguments([arg.replace("{model}", str(tiny_model)) for arg in fixed], fcot_task_names())  # fixed


# ---------------------------------------------------------------------- recipes/sft.py


def sft_fails(capsys, argv: list[str], expected: str) -> str:
    return one_line_error(capsys, sft_recipe().main, argv, "sft.py", expected)


RECIPE = str(REPO / "recipes" / "SmolLM2-135M-Instruct" / "sft" / "config_fcot.yaml")


@pytest.mark.parametrize(
    ("argv", "fixed", "expected"),
    [
        (
            ["--num_train_epochs", "three"],
            ["--num_train_epochs", "3"],
            "--num-train-epochs: invalid float value: 'three' (see sft.py --help)",
        ),
        (
            ["--config", "/no/such/recipe.yaml"],
            ["--config", RECIPE],
            "No such file or directory: '/no/such/recipe.yaml'",
        ),
        (["--task", "coinflip"], ["--task", "coin_flip"], "unknown fcot task 'coinflip'"),
        (
            ["--dataset_name", "x", "--model_name_or_path", "y"],
            ["--dataset_name", "x", "--model_name_or_path", "y", "--task", "multiarith"],
            "task is required (e.g. task: multiarith)",
        ),
    ],
)
def test_sft_bad_arguments(capsys, tmp_path, argv, fixed, expected):
    common = ["--output_dir", str(tmp_path / "out"), "--use_cpu", "true"]
    sft_fails(capsys, [*argv, *common], expected)
    assert not (tmp_path / "out").exists()
    script_args, _, _ = sft_recipe().make_parser().parse_args_and_config([*fixed, *common])  # the fix parses
    assert not (tmp_path / "out").exists()


def test_sft_bad_recipe_files(capsys, tmp_path):
    recipe = f"task: coin_flip\nuse_cpu: true\noutput_dir: {tmp_path / 'out'}\nlearning_rat: 0.1\n"
    (tmp_path / "unknown.yaml").write_text(recipe)
    sft_fails(
        capsys, ["--config", str(tmp_path / "unknown.yaml")], "Unknown arguments from config file: ['--learning_rat'"
    )
    (tmp_path / "broken.yaml").write_text("task: coin_flip\n  learning_rate: [\n")
    sft_fails(capsys, ["--config", str(tmp_path / "broken.yaml")], "mapping values are not allowed here")


def test_sft_missing_dataset_and_model(capsys, tmp_path, tiny_model):
    base = ["--task", "coin_flip", "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"]
    sft_fails(
        capsys,
        [*base, "--dataset_name", str(tmp_path / "nope"), "--model_name_or_path", str(tiny_model)],
        f"could not load the training dataset '{tmp_path / 'nope'}'",
    )
    fcot(["curate", "--task", "coin_flip", "--samples", "paper", "--out", str(tmp_path / "data")])
    sft_fails(
        capsys,
        [*base, "--dataset_name", str(tmp_path / "data"), "--model_name_or_path", str(tmp_path / "m")],
        f"cannot load the student '{tmp_path / 'm'}'",
    )
    sft_fails(
        capsys,
        [
            *base,
            "--dataset_name",
            str(tmp_path / "data"),
            "--model_name_or_path",
            str(tiny_model),
            "--push_to_hub",
            "true",
        ],
        "push_to_hub needs hub_model_id",
    )
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- benchmarks/*.py


def benchmark(name: str):
    """A benchmark script as a module (its siblings importable), parsed and run as its ``__main__`` does."""
    from fcot_plugin.core.command_line import run_script

    sys.path.insert(0, str(REPO / "benchmarks"))  # seed_spread.py imports its sibling paper_table.py
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    arguments = next(
        value
        for key, value in vars(module).items()
        if key.endswith("Arguments") and getattr(value, "__module__", None) == name
    )
    return lambda argv: run_script(f"{name}.py", arguments, module.main, argv)


@pytest.mark.parametrize(
    ("script", "argv", "expected"),
    [
        ("sft_throughput", ["--task", "coinflip"], "unknown fcot task 'coinflip'"),
        ("sft_throughput", ["--task", "aqua"], "the paper released no teacher rationales for 'aqua'"),
        ("sft_throughput", ["--student", "./no/such/model"], "--student './no/such/model' does not exist"),
        ("sft_throughput", ["--steps", "0"], "--steps must be >= 1, got 0"),
        ("sft_throughput", ["--warmup_steps", "-1"], "--warmup_steps must be >= 0, got -1"),
        ("sft_throughput", ["--fcot_overrides", "{bad"], "--fcot_overrides is not JSON"),
        ("sft_throughput", ["--fcot_overrides", '{"paddingfree": false}'], "not options: ['paddingfree']"),
        ("sft_throughput", ["--fcot_overrides", "[1]"], "must be a JSON object of FcotSFTConfig options"),
        ("sft_throughput", ["--precision", "fp16"], "unknown precision 'fp16'"),
        ("eval_speed", ["--student", "/no/such/student"], "--student '/no/such/student' does not exist"),
        ("eval_speed", ["--task", "coinflip"], "unknown fcot task 'coinflip'"),
        ("eval_speed", ["--device", "tpu"], "--device must be cpu or cuda, got 'tpu'"),
        ("eval_speed", ["--limit", "0"], "--limit must be >= 1, got 0"),
        ("eval_speed", ["--train_epochs", "0"], "--train_epochs must be > 0, got 0.0"),
        ("teacher_throughput", ["--model", "./no/such/model"], "--model './no/such/model' does not exist"),
        ("teacher_throughput", ["--num_concurrent", "0"], "--num_concurrent must be >= 1, got 0"),
        ("teacher_throughput", ["--limit", "ten"], "--limit: invalid int value: 'ten'"),
        ("paper_table", ["--tasks", "aqua"], "no teacher rationales for 'aqua'"),
        ("seed_spread", ["--tables", "/no/such/table.json"], "/no/such/table.json: not a table paper_table.py wrote"),
    ],
)
def test_benchmark_scripts_bad_arguments(capsys, tmp_path, script, argv, expected):
    one_line_error(capsys, benchmark(script), [*argv, "--output", str(tmp_path / "out")], f"{script}.py", expected)
    assert not any(tmp_path.iterdir())  # refused before anything was written


# ---------------------------------------------------------------------- real processes, and --debug


def test_console_scripts_exit_non_zero_with_one_line(tmp_path):
    result = subprocess.run(
        ["fcot", "distill", "--task", "coin_flip", "--epochs", "three"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "fcot: error: argument --epochs: invalid float value: 'three' (see fcot distill --help)"
    ]
    result = subprocess.run(
        [sys.executable, str(SFT_RECIPE), "--num_train_epochs", "three"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "sft.py: error: argument --num_train_epochs/--num-train-epochs: invalid float value: 'three' "
        "(see sft.py --help)"
    )


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    argv = ["distill", "--task", "coin_flip", "--student", "/no/such/student", "--run_dir", str(tmp_path / "r")]
    with pytest.raises(ValueError, match="does not exist"):
        fcot([*argv, "--debug"])
    monkeypatch.setenv("FCOT_DEBUG", "1")
    with pytest.raises(ValueError, match="does not exist"):
        fcot(argv)


def test_only_fcot_errors_become_one_line(monkeypatch, tmp_path):
    """A bug (any other exception) keeps its traceback: the CLI does not hide every ValueError."""
    from fcot_plugin.pipeline import distill as pipeline

    def bug(args):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(pipeline, "main", bug)
    with pytest.raises(ValueError, match="a bug, not bad input"):
        fcot(["distill", "--task", "coin_flip", "--run_dir", str(tmp_path / "r")])


def test_curate_on_a_full_disk_leaves_nothing(capsys, tmp_path, monkeypatch):
    import errno

    import datasets

    def no_space(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", no_space)
    curate_fails(capsys, ["--samples", "paper", "--out", str(tmp_path / "data")], "the disk is full writing")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy
