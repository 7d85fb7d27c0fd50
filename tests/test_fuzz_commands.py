"""Property-based (hypothesis) fuzzing of every command's parser and pre-flight checks, instead of enumerated cases.

Each command is driven, in-process, through what it runs before any work: its parser and its checks (``fcot
distill`` up to its first stage, ``fcot curate`` and ``evaluate`` up to their first write, ``recipes/sft.py`` up to
its trainer, ``fcot-eval`` up to lm-eval, the benchmark scripts up to their ``main``), with generated values: any
float (NaN, inf, 1e400), any int, any string (empty, unicode, 300-character parts, ``/proc`` paths, URLs with a
password), any JSON as ``--teacher``. The properties, for every example:

* the exit is 0 or exactly one ``<prog>: error:`` line, and never a traceback;
* no file changes outside a folder fcot marked (the sandbox of user files around each run stays as it was);
* a planted secret (a URL password, an ``Authorization`` header) appears in no output.

Select them with ``pytest -k "fuzz or hypothesis or property"``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from helpers.scripts import sft_recipe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fcot_plugin.core.command_line import exit_with_one_line

PASSWORD = "FuzzPassw0rd9"
BASIC = "ZnV6ejpwbGFudGVkLXNlY3JldA=="
EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# ---------------------------------------------------------------------- what is generated

FLOAT_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e400", "-1e400", "nan", "NaN", "inf", "-inf", "Infinity", "1e-400", "0", "-0.0", "3e-4"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
INT_TEXT = st.one_of(
    st.integers().map(str),
    st.sampled_from(["99999999999", "-1", "0", "1", str(2**32), str(2**63), str(2**64), "1e3", "nan"]),
)
URL = st.builds(
    lambda scheme, user, host, port, path: f"{scheme}://{user}:{PASSWORD}@{host}:{port}/{path}",
    st.sampled_from(["http", "https"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12),
    st.sampled_from(["127.0.0.1", "localhost", "example.invalid"]),
    st.integers(1, 65535),
    st.sampled_from(["v1/completions", "v1/chat/completions", "", "v1"]),
)
PATH_TEXT = st.one_of(
    st.sampled_from(["", ".", "./", "..", "~", "/", "/proc/fcot-x", "/proc/self/fcot", "/dev/null/x", "/sys/fcot"]),
    st.text(min_size=0, max_size=40),
    st.text("ab/", min_size=1, max_size=20),
    st.integers(250, 320).map(lambda size: "x" * size),
    st.integers(250, 320).map(lambda size: f"run/{'y' * size}/z"),
    URL,
)
STRING = st.one_of(st.text(max_size=60), PATH_TEXT, URL)
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.text(max_size=20)
    | URL,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
TEACHER_KEYS = [
    "base",
    "pretrained",
    "model",
    "base_url",
    "answer_max_gen_toks",
    "answer_trigger",
    "num_concurrent",
    "max_retries",
    "timeout",
    "seed",
    "batch_size",
    "header",
    "reasoning",
    "api_key",
    "tokenizer",
    "price_per_million_prompt",
    "max_gen_toks",
]
JSON_TEACHER = st.dictionaries(
    st.one_of(st.sampled_from(TEACHER_KEYS), st.text(max_size=12)),
    st.one_of(JSON_VALUE, st.just({"Authorization": f"Basic {BASIC}", "X-Api-Key": PASSWORD})),
    max_size=5,
).map(lambda arguments: json.dumps(arguments, allow_nan=True))


# ---------------------------------------------------------------------- the properties


class Sandbox:
    """The user's folder every example runs in: its files must come out exactly as they went in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "notes").mkdir(parents=True, exist_ok=True)
        (root / "precious.txt").write_text("the user's own")
        (root / "notes" / "plan.md").write_text("more of it")
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(path.relative_to(self.root)): path.read_bytes()
            for path in sorted(self.root.rglob("*"))
            if path.is_file()
        }

    def unchanged(self) -> None:
        assert self.snapshot() == self.before, "a file outside a marked folder changed"
        for path in self.root.iterdir():  # a folder made by the command: nothing is left in it but its marker
            assert path.name in ("precious.txt", "notes"), f"{path} was left behind"


def holds(prog: str, check, sandbox: Sandbox) -> None:
    """Run ``check`` as the command's entry point does; assert the properties."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(sandbox.root):
        from fcot_plugin.core.secrets import RedactingStream

        sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)  # what guard_terminal does
        try:
            exit_with_one_line(prog, check, debug=False)
            code = 0
        except SystemExit as error:
            code = error.code
    text = out.getvalue() + err.getvalue()
    assert "Traceback" not in text, text[-2000:]
    assert PASSWORD not in text and BASIC not in text, text[-2000:]
    if code not in (0, None):
        lines = [line for line in err.getvalue().splitlines() if line.startswith(f"{prog}: error: ")]
        assert len(lines) == 1, err.getvalue()[-2000:]
    sandbox.unchanged()


def float_fields(dataclass_type) -> list[str]:
    return [item.name for item in fields(dataclass_type) if "float" in str(item.type)]


def int_fields(dataclass_type) -> list[str]:
    return [item.name for item in fields(dataclass_type) if "int" in str(item.type) and "bool" not in str(item.type)]


# ---------------------------------------------------------------------- fcot distill, curate, evaluate


def _distill(argv: list[str]):
    from fcot_plugin.cli.fcot import _parse
    from fcot_plugin.core.secrets import guard_terminal
    from fcot_plugin.pipeline.preflight import check_distill
    from fcot_plugin.pipeline.settings import DistillArguments

    def check() -> None:
        guard_terminal(argv)
        check_distill(_parse(DistillArguments, argv, "distill"))

    return check


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    return Sandbox(tmp_path_factory.mktemp("user"))


@pytest.fixture(scope="module")
def distill_numbers():
    from fcot_plugin.pipeline.settings import DistillArguments

    return float_fields(DistillArguments), int_fields(DistillArguments)


@EXAMPLES
@given(data=st.data())
def test_fuzz_distill_numbers_property(data, sandbox, tiny_model, distill_numbers):
    floats, ints = distill_numbers
    name = data.draw(st.sampled_from(floats + ints))
    value = data.draw(FLOAT_TEXT if name in floats else INT_TEXT)
    argv = [
        "--task",
        "coin_flip",
        "--student",
        str(tiny_model),
        "--device",
        "cpu",
        "--run_dir",
        "runs/x",
        f"--{name}",
        value,
    ]
    holds("fcot", _distill(argv), sandbox)


@EXAMPLES
@given(run_dir=PATH_TEXT, restart=st.booleans())
def test_fuzz_distill_paths_property(run_dir, restart, sandbox, tiny_model):
    argv = [
        "--task",
        "coin_flip",
        "--student",
        str(tiny_model),
        "--device",
        "cpu",
        "--run_dir",
        run_dir,
        *(["--restart"] if restart else []),
    ]
    holds("fcot", _distill(argv), sandbox)


@settings(EXAMPLES, max_examples=150)
@given(teacher=st.one_of(JSON_TEACHER, STRING, URL.map(lambda url: f"base=local-completions,base_url={url},model=m")))
def test_fuzz_distill_teacher_json_hypothesis(teacher, sandbox, tiny_model):
    argv = [
        "--task",
        "coin_flip",
        "--student",
        str(tiny_model),
        "--device",
        "cpu",
        "--run_dir",
        "runs/x",
        "--teacher",
        teacher,
    ]
    holds("fcot", _distill(argv), sandbox)


@EXAMPLES
@given(out=PATH_TEXT, overwrite=st.booleans(), samples=st.one_of(st.just("paper"), PATH_TEXT))
def test_fuzz_curate_paths_property(out, overwrite, samples, sandbox):
    from fcot_plugin.cli.fcot import _parse
    from fcot_plugin.curation.dataset import check_out
    from fcot_plugin.pipeline.settings import CurateArguments

    argv = ["--task", "coin_flip", "--samples", samples, "--out", out, *(["--overwrite"] if overwrite else [])]

    def check() -> None:
        args = _parse(CurateArguments, argv, "curate")
        check_out(args.out, args.overwrite)

    holds("fcot", check, sandbox)


@EXAMPLES
@given(data=st.data())
def test_fuzz_evaluate_property(data, sandbox, tiny_model):
    from fcot_plugin.cli.fcot import _parse
    from fcot_plugin.pipeline.preflight import check_model_folder, check_writable
    from fcot_plugin.pipeline.settings import EvaluateArguments

    name = data.draw(st.sampled_from(int_fields(EvaluateArguments)))
    argv = [
        "--model",
        data.draw(st.one_of(st.just(str(tiny_model)), PATH_TEXT)),
        "--task",
        "coin_flip",
        f"--{name}",
        data.draw(INT_TEXT),
        "--output_path",
        data.draw(PATH_TEXT),
    ]

    def check() -> None:
        args = _parse(EvaluateArguments, argv, "evaluate")
        check_model_folder(args.model, "--model")
        if args.output_path:
            check_writable(args.output_path, "--output_path")

    holds("fcot", check, sandbox)


# ---------------------------------------------------------------------- recipes/sft.py, fcot-eval, benchmarks


@pytest.fixture(scope="module")
def sft_numbers():
    from trl import ModelConfig

    from fcot_plugin.training.config import FcotScriptArguments, FcotSFTConfig

    classes = (FcotScriptArguments, FcotSFTConfig, ModelConfig)
    floats = sorted({name for klass in classes for name in float_fields(klass)})
    ints = sorted({name for klass in classes for name in int_fields(klass)} - {"local_rank", "world_size"})
    return floats, ints


@settings(EXAMPLES, max_examples=150)
@given(data=st.data())
def test_fuzz_sft_recipe_property(data, sandbox, sft_numbers):
    from fcot_plugin.core.command_line import parse_or_fail
    from fcot_plugin.training.checkpoints import check_training_output, training_record

    floats, ints = sft_numbers
    name = data.draw(st.sampled_from(floats + ints))
    output_dir = data.draw(st.one_of(st.just("out/student"), PATH_TEXT))
    argv = [
        "--task",
        "coin_flip",
        "--dataset_name",
        "data",
        "--use_cpu",
        "true",
        "--output_dir",
        output_dir,
        f"--{name}",
        data.draw(FLOAT_TEXT if name in floats else INT_TEXT),
    ]

    def check() -> None:
        parser = sft_recipe().make_parser()
        script_args, training_args, _ = parse_or_fail(parser, lambda: parser.parse_args_and_config(argv))
        check_training_output(training_args.output_dir, training_record("coin_flip", "data", "fcot"))

    holds("sft.py", check, sandbox)


@EXAMPLES
@given(
    metadata=st.dictionaries(st.sampled_from(["fcot_samples", "fcot_temperature", "other"]), JSON_VALUE, max_size=3),
    model_args=st.one_of(JSON_TEACHER, STRING),
)
def test_fuzz_fcot_eval_metadata_property(metadata, model_args, sandbox, tiny_model):
    from fcot_plugin.pipeline.preflight import check_lm_eval_arguments

    argv = [
        "--model",
        "hf",
        "--model_args",
        model_args or f"pretrained={tiny_model}",
        "--tasks",
        "fcot_coin_flip_teacher",
        "--metadata",
        json.dumps(metadata, allow_nan=True),
    ]
    holds("fcot-eval", lambda: check_lm_eval_arguments(argv, []), sandbox)


@settings(EXAMPLES, max_examples=100)
@given(data=st.data())
def test_fuzz_benchmark_scripts_property(data, sandbox):
    from helpers.scripts import benchmark

    from fcot_plugin.core.command_line import check_ranges, check_script_paths, parse_or_fail, settings_parser

    script = data.draw(st.sampled_from(["plan", "eval_speed", "paper_table", "sft_throughput", "teacher_throughput"]))
    benchmark(script)  # the script loaded as a module (sys.modules[script]), as run_script runs it
    module = sys.modules[script]
    dataclass_type = next(
        value
        for key, value in vars(module).items()
        if key.endswith("Arguments") and getattr(value, "__module__", None) == script
    )
    floats, ints = float_fields(dataclass_type), int_fields(dataclass_type)
    name = data.draw(st.sampled_from(floats + ints + ["output"]))
    value = data.draw(FLOAT_TEXT if name in floats else INT_TEXT if name in ints else PATH_TEXT)
    argv = [f"--{name}", value, *(["--vllm", "false"] if script == "eval_speed" else [])]

    def check() -> None:
        parser = settings_parser(dataclass_type)
        (args,) = parse_or_fail(parser, lambda: parser.parse_args_into_dataclasses(args=argv))
        check_ranges(args)
        check_script_paths(args)

    holds(f"{script}.py", check, sandbox)


# ---------------------------------------------------------------------- secrets anywhere in text


@settings(EXAMPLES, max_examples=300)
@given(prefix=st.text(max_size=30), url=URL, suffix=st.text(max_size=30), as_json=st.booleans())
def test_fuzz_secrets_by_structure_property(prefix, url, suffix, as_json):
    from fcot_plugin.core.secrets import redact, redact_text

    text = f"{prefix} {url} {suffix}"
    assert PASSWORD not in redact_text(text)
    teacher = {"base_url": url, "header": {"Authorization": f"Basic {BASIC}"}, prefix: {"api_key": PASSWORD}}
    cleaned = json.dumps(redact(teacher)) if as_json else redact_text(repr(teacher))
    assert PASSWORD not in cleaned and BASIC not in cleaned


def test_fuzz_environment_is_clean():
    """No planted secret is left in the environment the other fuzz tests ran in."""
    assert PASSWORD not in "".join(os.environ.values())
