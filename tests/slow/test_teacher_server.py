"""A served teacher, end to end: a real ``transformers serve`` process, lm-eval's ``local-completions``, zscot.

No HTTP layer is mocked: every request goes to the server over loopback. ``pytest -k "serve or server"``
selects these tests.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.commands import FCOT_EVAL
from helpers.serving import (
    build_served_model,
    cache_rows,
    free_port,
    killed_once_cached,
    sampling_model,
    transformers_serve,
)

from fcot_plugin.harness.zscot import ZeroShotCoT
from fcot_plugin.teacher.cache import CacheMismatchError
from fcot_plugin.teacher.server import TeacherError


@pytest.fixture(scope="module")
def served_model(tmp_path_factory) -> Path:
    return build_served_model(tmp_path_factory.mktemp("served") / "tiny-sampling")


@pytest.fixture(scope="module")
def server(served_model, tmp_path_factory):
    with transformers_serve(served_model, tmp_path_factory.mktemp("serve-log") / "serve.log") as url:
        yield url


def model_args(url: str, model: Path, **extra: object) -> str:
    args = {"base": "local-completions", "base_url": url, "model": str(model), "tokenized_requests": False, **extra}
    return ",".join(f"{key}={value}" for key, value in args.items())


def fcot_eval(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*FCOT_EVAL, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def results_and_samples(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())
    samples = [json.loads(line) for line in sorted(out.rglob("samples_*.jsonl"))[-1].read_text().splitlines()]
    return results, samples


@pytest.mark.slow
def test_serve_greedy_teacher_through_fcot_eval_reuses_responses_and_counts_tokens(server, served_model, tmp_path):
    common = [
        "--model",
        "zscot",
        "--tasks",
        "fcot_coin_flip_teacher",
        "--limit",
        "2",
        "--gen_kwargs",
        "max_gen_toks=8",
        "--use_cache",
        str(tmp_path / "cache" / "teacher"),
        "--log_samples",
    ]
    first = fcot_eval(*common, "--model_args", model_args(server, served_model), "--output_path", "one", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "cache: rationales 0 reused, 2 generated; answers 0 reused, 2 generated" in first.stdout
    results, samples = results_and_samples(tmp_path / "one")
    accounting = results["config"]["fcot_teacher_accounting"]
    assert accounting["requests"] == 4  # 2 rationales + 2 answers, one HTTP request each
    assert accounting["token_sources"] == ["server usage"]
    assert 0 < accounting["completion_tokens"] <= 2 * 8 + 2 * 32 and accounting["prompt_tokens"] > 0
    assert accounting["responses_per_second"] > 0 and accounting["cost_usd"] is None
    assert len(cache_rows(tmp_path / "cache" / "teacher_rank0.fcot.sqlite")) == 4

    second = fcot_eval(*common, "--model_args", model_args(server, served_model), "--output_path", "two", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "cache: rationales 2 reused, 0 generated; answers 2 reused, 0 generated" in second.stdout
    again, same = results_and_samples(tmp_path / "two")
    assert again["config"]["fcot_teacher_accounting"]["requests"] == 0
    assert [sample["resps"] for sample in same] == [sample["resps"] for sample in samples]

    # another stage-2 trigger never reuses an answer; the rationales (stage 1) do not depend on it
    typed = model_args(server, served_model, answer_trigger="typed", price_per_million_prompt=2.0)
    third = fcot_eval(*common, "--model_args", typed, "--output_path", "three", cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "cache: rationales 2 reused, 0 generated; answers 0 reused, 2 generated" in third.stdout
    accounting = results_and_samples(tmp_path / "three")[0]["config"]["fcot_teacher_accounting"]
    assert accounting["requests"] == 2
    tokens = accounting["prompt_tokens"] + accounting["completion_tokens"]
    assert accounting["cost_usd"] == pytest.approx(tokens * 2.0 / 1e6)


@pytest.mark.slow
def test_serve_sampled_teacher_killed_mid_run_restarts_where_it_stopped(server, served_model, tmp_path):
    cache = tmp_path / "cache" / "teacher_rank0.fcot.sqlite"
    command = [
        *FCOT_EVAL,
        "--model",
        "zscot",
        "--model_args",
        model_args(server, served_model),
        "--tasks",
        "fcot_coin_flip_teacher_diverse",
        "--metadata",
        '{"fcot_samples": 3}',
        "--limit",
        "3",
        "--gen_kwargs",
        "max_gen_toks=12",
        "--use_cache",
        str(tmp_path / "cache" / "teacher"),
        "--log_samples",
        "--output_path",
        "out",
    ]
    code = killed_once_cached(command, tmp_path, cache, responses=2, timeout=300)
    assert code == -signal.SIGKILL, "the run finished before it could be killed"
    before = cache_rows(cache)
    finished_rationales = [text for stage, text in before.values() if stage == 1]
    finished_answers = sum(stage == 2 for stage, _ in before.values())
    assert 2 <= len(before) < 18

    restart = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert restart.returncode == 0, restart.stderr[-3000:]
    rationales = len(finished_rationales)
    assert (
        f"cache: rationales {rationales} reused, {9 - rationales} generated; answers {finished_answers} reused, "
        f"{9 - finished_answers} generated"
    ) in restart.stdout
    results, samples = results_and_samples(tmp_path / "out")
    # only what had not finished was generated: 9 rationales and 9 answers in all, one HTTP request each
    assert results["config"]["fcot_teacher_accounting"]["requests"] == 18 - len(before)
    after = cache_rows(cache)
    assert len(after) == 18 and all(after[key] == value for key, value in before.items())
    responses = [response for sample in samples for response in sample["resps"][0]]
    assert len(responses) == 9
    for rationale in finished_rationales:  # each finished sample is in the output as it was generated
        assert any(response.startswith(rationale) for response in responses)
    rationales = {stage_text for stage, stage_text in after.values() if stage == 1}
    assert len(rationales) > 3, "the 3 samples of a question should differ (one seed per sample)"


def test_unreachable_server_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1/completions"
    with pytest.raises(TeacherError, match=r"^cannot reach the teacher server at .*; start it first") as error:
        ZeroShotCoT.create_from_arg_string(f"base=local-completions,base_url={url},model=m,cache={tmp_path / 'c'}")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "c").exists()  # nothing written


def test_a_server_that_never_answers_times_out_in_one_line(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/completions"
    try:
        with pytest.raises(TeacherError, match=r"did not answer within 1 s.*raise timeout="):
            ZeroShotCoT.create_from_arg_string(f"base=local-completions,base_url={url},model=m,timeout=1")
    finally:
        listener.close()


def test_a_model_the_server_does_not_serve_is_one_line(server, served_model):
    with pytest.raises(TeacherError, match=rf"serves '{served_model}', not 'gpt-5'; pass model=<one of those>"):
        ZeroShotCoT.create_from_arg_string(model_args(server, Path("gpt-5")))


def test_server_error_answer_is_one_line_and_keeps_the_cache_clean(server, served_model, tmp_path):
    from lm_eval.api.instance import Instance

    cache = tmp_path / "teacher.sqlite"
    # tokenized_requests=True sends token ids, which transformers serve answers with HTTP 400
    lm = ZeroShotCoT.create_from_arg_string(
        model_args(server, served_model, cache=cache, max_retries=1).replace(
            "tokenized_requests=False", "tokenized_requests=True"
        )
    )
    doc = {"fcot_task": "coin_flip", "question": "A coin is heads up. Is it still heads up?"}
    request = Instance("generate_until", doc, ("Q: x\nA: Let's think step by step.", {"max_gen_toks": 4}), 0)
    with pytest.raises(
        TeacherError, match=r"answered HTTP 400 .*prompt must be a string.* after 1 tries; check"
    ) as error:
        lm.generate_until([request])
    assert "\n" not in str(error.value) and "run again with --use_cache" not in str(error.value)
    assert cache_rows(cache) == {}


def test_one_cache_file_is_the_ledger_of_every_teacher(server, served_model, tmp_path):
    cache = tmp_path / "teacher.sqlite"
    first = ZeroShotCoT.create_from_arg_string(model_args(server, served_model, cache=cache))
    # another port, concurrency or retry count is the same teacher ...
    same = ZeroShotCoT.create_from_arg_string(
        model_args(server, served_model, cache=cache, num_concurrent=2, max_retries=5)
    )
    assert same.cache.key(1, "Q", {}, 0) == first.cache.key(1, "Q", {}, 0)
    # ... another model argument is another teacher in the same file: its own entries, nothing of the first's
    other = ZeroShotCoT.create_from_arg_string(model_args(server, served_model, cache=cache, max_gen_toks=9))
    assert other.cache.key(1, "Q", {}, 0) != first.cache.key(1, "Q", {}, 0)
    (tmp_path / "not-a-cache").write_text("hello\n" * 100)
    with pytest.raises(CacheMismatchError, match="is not an fcot teacher cache"):
        ZeroShotCoT.create_from_arg_string(model_args(server, served_model, cache=tmp_path / "not-a-cache"))


@pytest.mark.slow
def test_fcot_distill_with_a_served_teacher_survives_its_death_and_diverse_reasoning(served_model, tmp_path):
    """``fcot distill --teacher <served> --diverse 4``: the server dies mid-teacher, is restarted, the run resumes.

    The teacher is the embedded SmolLM2-135M-Instruct (a random tiny model never answers a coin flip, and curation
    rightly refuses a teacher with no correct rationale); the student is the tiny model.
    """
    from fcot_plugin.training.students import EMBEDDED_STUDENT, resolve_student

    teacher_model = sampling_model(Path(resolve_student(EMBEDDED_STUDENT)), tmp_path / "smollm2-sampling")
    port = free_port()
    teacher = model_args(f"http://127.0.0.1:{port}/v1/completions", teacher_model, answer_max_gen_toks=4)
    command = [
        sys.executable,
        "-m",
        "fcot_plugin.cli.fcot",
        "distill",
        "--task",
        "coin_flip",
        "--teacher",
        teacher,
        "--diverse",
        "4",
        "--teacher_max_gen_toks",
        "16",
        "--train_limit",
        "2",
        "--student",
        str(served_model),
        "--run_dir",
        "run",
        "--eval_limit",
        "1",
        "--epochs",
        "1",
        "--batch_size",
        "4",
        "--max_gen_toks",
        "8",
        "--eval_batch_size",
        "4",
        "--device",
        "cpu",
        "--baselines",
        "false",
    ]
    cache = tmp_path / "run" / "teacher-cache.sqlite"
    with transformers_serve(teacher_model, tmp_path / "serve1.log", port=port) as url:
        assert str(port) in url
        with (tmp_path / "first.err").open("w") as err:
            run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and run.poll() is None and not cache_rows(cache):
                time.sleep(0.1)
    # the server is gone mid-run (the context manager stopped it)
    run.wait(timeout=300)
    stderr = (tmp_path / "first.err").read_text()
    assert run.returncode == 1, stderr[-3000:]
    (line,) = [line.split("fcot: error: ", 1)[1] for line in stderr.splitlines() if "fcot: error: " in line]
    assert "Traceback" not in stderr
    assert "the teacher server at" in line and "stopped answering" in line and "run the same command again" in line
    kept = cache_rows(cache)
    assert kept and not (tmp_path / "run" / "stages" / "teacher.json").exists()

    with transformers_serve(teacher_model, tmp_path / "serve2.log", port=port):
        resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    finished = {stage: sum(kept_stage == stage for kept_stage, _ in kept.values()) for stage in (1, 2)}
    assert (
        f"cache: rationales {finished[1]} reused, {8 - finished[1]} generated; answers {finished[2]} reused, "
        f"{8 - finished[2]} generated"
    ) in resumed.stdout
    accounting = json.loads((tmp_path / "run" / "teacher" / "accounting.json").read_text())
    assert accounting["responses"] == 8 and accounting["requests"] == 16 - len(kept)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Teacher run" in report and f"| requests to the teacher | {16 - len(kept)} |" in report
    assert "curated rationales per question" in report
    card = (tmp_path / "run" / "data" / "README.md").read_text()
    assert "requests to the teacher" in card
