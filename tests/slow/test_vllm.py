"""vLLM on the CPU, for real: ``make vllm``'s environment, :func:`fcot_plugin.serving.served.served_model`, and
fcot's two-stage teacher through a served SmolLM2-135M-Instruct. Nothing is mocked.

The tests skip (with the reason) when no vLLM environment is found: run ``make vllm`` first. One server, started
once for the module, serves the teacher runs; the no-orphan tests start their own in a child process.
``pytest -m vllm`` selects this module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.commands import FCOT_EVAL
from helpers.paths import REPO
from helpers.runs import SMALL_RUN
from helpers.serving import cache_rows, killed_once_cached

from fcot_plugin.serving.endpoint import EngineError
from fcot_plugin.serving.served import served_model
from fcot_plugin.serving.vllm import vllm_python

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SAMPLES, QUESTIONS = 4, 4  # D and --limit of the teacher runs
CACHE_LINE = re.compile(r"cache: rationales (\d+) reused, (\d+) generated; answers (\d+) reused, (\d+) generated")


# -------------------------------------------------------------------------------------------------- helpers


def samples_of(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())
    samples = [json.loads(line) for line in sorted(out.rglob("samples_*.jsonl"))[-1].read_text().splitlines()]
    return results, samples


def teacher_command(model_args: str, cache: Path, out: str) -> list[str]:
    return [
        *FCOT_EVAL,
        "--model",
        "zscot",
        "--model_args",
        model_args,
        "--tasks",
        "fcot_coin_flip_teacher_diverse",
        "--metadata",
        json.dumps({"fcot_samples": SAMPLES}),
        "--limit",
        str(QUESTIONS),
        "--gen_kwargs",
        "max_gen_toks=24",
        "--use_cache",
        str(cache),
        "--log_samples",
        "--output_path",
        out,
    ]


def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, process group, start time) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """``root`` and every process below it: pid -> start time (to tell a reused pid from the same process)."""
    stats = {int(entry): proc_stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit()}
    found = {root: stats[root][3]} if stats.get(root) else {}
    grew = True
    while grew:
        grew = False
        for pid, stat in stats.items():
            if stat and pid not in found and stat[1] in found:
                found[pid] = stat[3]
                grew = True
    return found


def engine_core_runs(root: int) -> bool:
    for pid in descendants(root):
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("VLLM::Engine"):
                return True
        except OSError:
            pass
    return False


def still_running(processes: dict[int, int], pgid: int) -> list[int]:
    """Which of ``processes`` (and of process group ``pgid``) still run; zombies do not count."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = proc_stat(int(entry))
        if stat is None or stat[0] in ("Z", "X"):
            continue
        if stat[2] == pgid or processes.get(int(entry)) == stat[3]:
            alive.append(int(entry))
    return alive


def wait_until(condition, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


# ------------------------------------------------------------------------------------- the environment itself


def test_vllm_python_follows_the_variables_and_says_what_to_do(monkeypatch, tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    monkeypatch.setenv("FCOT_VLLM_VENV", str(venv))
    assert vllm_python() == venv / "bin" / "python"
    monkeypatch.setenv("FCOT_VLLM_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(EngineError, match=r"^FCOT_VLLM_PYTHON=.* is not a file"):
        vllm_python()
    monkeypatch.delenv("FCOT_VLLM_PYTHON")
    monkeypatch.setenv("FCOT_VLLM_VENV", str(tmp_path / "missing"))
    with pytest.raises(EngineError, match=r"has no bin/python; create it with `make vllm VLLM_VENV="):
        vllm_python()


def test_make_vllm_again_is_quick_and_names_the_venv(vllm_env):
    venv = vllm_env.parent.parent
    if not (venv / "pyvenv.cfg").is_file():
        pytest.skip(f"{vllm_env} is not the python of a virtual environment (FCOT_VLLM_PYTHON)")
    command = ["make", "-s", "-C", str(REPO), "vllm"] if shutil.which("make") else ["bash", "scripts/vllm_env.sh"]
    started = time.monotonic()
    again = subprocess.run(
        command, cwd=REPO, env={**os.environ, "VLLM_VENV": str(venv)}, capture_output=True, text=True, timeout=300
    )
    seconds = time.monotonic() - started
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"ready in {venv}" in again.stdout and f"python: {venv}/bin/python" in again.stdout
    assert "installing" not in again.stdout
    assert seconds < 120, f"an installed environment took {seconds:.0f} s to check"


def test_a_server_that_dies_during_start_up_is_one_line_naming_its_log(vllm_env, tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("{}")
    log = tmp_path / "dead.log"
    with pytest.raises(EngineError) as error:
        with served_model(not_a_model, "vllm", log, kv_cache_gib=1, start_timeout=600, progress=None):
            pass
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"the vllm server for {not_a_model} exited with code ")
    assert f"during start-up; see {log}, which ends: " in message
    assert log.read_text().startswith("$ ") and "vllm.entrypoints.openai.api_server" in log.read_text()


# --------------------------------------------------------------------------------------------- no orphans

SERVE_SCRIPT = """
import sys, time
from fcot_plugin.serving.served import served_model

with served_model(sys.argv[1], "vllm", sys.argv[2], kv_cache_gib=1) as served:
    print("READY", served.pid, flush=True)
    time.sleep(3600)
"""


@pytest.mark.parametrize(
    ("signum", "when"),
    [(signal.SIGTERM, "mid-start"), (signal.SIGINT, "after ready"), (signal.SIGKILL, "mid-start")],
    ids=["SIGTERM-mid-start", "SIGINT-after-ready", "SIGKILL-parent-mid-start"],
)
def test_served_model_leaves_no_process_behind(vllm_env, student, tmp_path, signum, when):
    """A script inside ``served_model`` gets a signal; afterwards nothing of its vLLM server runs.

    SIGTERM and SIGINT go through the context manager's cleanup; SIGKILL leaves no cleanup to the script, and
    the parent-death signal stops the server instead.
    """
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    out, err = tmp_path / "script.out", tmp_path / "script.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        runner = subprocess.Popen(
            [sys.executable, str(script), str(student), str(tmp_path / "server.log")],
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
        )
    pid = None
    try:

        def server_pid() -> int | None:
            found = re.search(r"starting vllm for .* \(pid (\d+), log ", err.read_text())
            return int(found.group(1)) if found else None

        assert wait_until(lambda: server_pid() is not None or runner.poll() is not None, 120), err.read_text()
        pid = server_pid()
        assert pid is not None, err.read_text()[-3000:]
        if when == "mid-start":
            # the engine core runs (vLLM's second process, the one that outlives a killed API server), the model
            # is not served yet
            assert wait_until(lambda: engine_core_runs(pid) or runner.poll() is not None, 300), err.read_text()
            assert "READY" not in out.read_text(), "the server was ready before the test could interrupt it"
        else:
            assert wait_until(lambda: "READY" in out.read_text() or runner.poll() is not None, 600, every=1)
            assert "READY" in out.read_text(), err.read_text()[-3000:]
        assert runner.poll() is None, err.read_text()[-3000:]
        processes = descendants(pid)
        assert len(processes) >= 3  # the watchdog, vLLM's API server and its engine core at least
        runner.send_signal(signum)
        runner.wait(timeout=120)
        assert wait_until(lambda: not still_running(processes, pid), 60), (
            f"after {signal.Signals(signum).name}, still running: {still_running(processes, pid)}"
        )
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for leftover in still_running({}, pid) if pid else []:  # never leave a server to the next test
            os.kill(leftover, signal.SIGKILL)


# ------------------------------------------------------------------------------------ a teacher through vLLM


def test_vllm_sampled_teacher_writes_distinct_samples(vllm_server, tmp_path):
    assert vllm_server.base_url.startswith("http://127.0.0.1:") and vllm_server.base_url.endswith("/v1/completions")
    assert vllm_server.model_args.startswith(
        f"base=local-completions,base_url={vllm_server.base_url},model={vllm_server.model},"
    )
    args = vllm_server.teacher_args(answer_max_gen_toks=8)
    cache = tmp_path / "cache" / "teacher"
    run = subprocess.run(
        teacher_command(args, cache, "out"), cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    total = SAMPLES * QUESTIONS
    assert f"cache: rationales 0 reused, {total} generated; answers 0 reused, {total} generated" in run.stdout
    results, samples = samples_of(tmp_path / "out")
    assert len(samples) == QUESTIONS
    for sample in samples:
        responses = sample["resps"][0]
        assert len(responses) == SAMPLES
        assert len(set(responses)) == SAMPLES, f"{SAMPLES} samples of one question should differ: {responses}"
    accounting = results["config"]["fcot_teacher_accounting"]
    # vLLM answers n: one request for the samples of a question, one per answer
    assert accounting["requests"] == QUESTIONS + total and accounting["token_sources"] == ["server usage"]
    assert len(cache_rows(cache.with_name("teacher_rank0.fcot.sqlite"))) == 2 * total


def test_vllm_teacher_killed_mid_run_regenerates_nothing_it_kept(vllm_server, tmp_path):
    # two requests at a time, one sample each, so that responses reach the cache one by one and the kill lands
    # mid-run (num_concurrent and n_per_request only change how requests travel: the cache serves either setting)
    cache = tmp_path / "cache" / "teacher"
    rows = cache.with_name("teacher_rank0.fcot.sqlite")
    total = SAMPLES * QUESTIONS
    args = vllm_server.teacher_args(answer_max_gen_toks=8, num_concurrent=2, n_per_request=1)
    command = teacher_command(args, cache, "out")
    code = killed_once_cached(command, tmp_path, rows, responses=3, timeout=600)
    assert code == -signal.SIGKILL, "the run finished before it could be killed"
    before = cache_rows(rows)
    kept_rationales = sum(stage == 1 for stage, _ in before.values())
    kept_answers = sum(stage == 2 for stage, _ in before.values())
    assert 3 <= len(before) < 2 * total

    restart = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert restart.returncode == 0, restart.stderr[-3000:]
    line = CACHE_LINE.search(restart.stdout)
    assert line, restart.stdout[-3000:]
    assert [int(number) for number in line.groups()] == [
        kept_rationales,
        total - kept_rationales,
        kept_answers,
        total - kept_answers,
    ]
    results, samples = samples_of(tmp_path / "out")
    assert results["config"]["fcot_teacher_accounting"]["requests"] == 2 * total - len(before)
    after = cache_rows(rows)
    assert len(after) == 2 * total and all(after[key] == value for key, value in before.items())
    assert all(len(set(sample["resps"][0])) == SAMPLES for sample in samples)


# ------------------------------------------------------------------------------- fcot distill --teacher_engine


def vllm_processes_for(log: Path) -> list[int]:
    """Processes whose command line names the vLLM server of this run (its log path is unique to the run)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "vllm" in command and str(log.parent) in command:
            found.append(int(entry))
    return found


def test_vllm_distill_serves_the_teacher_for_the_run_and_leaves_nothing_behind(
    vllm_env, student, tiny_model, tmp_path
):
    """``fcot distill --teacher <folder> --teacher_engine vllm``: fcot starts the server, the teacher runs through
    it, the server stops with the stage, its log stays in the run folder, and a re-run reuses the teacher."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "fcot_plugin.cli.fcot",
        "distill",
        "--task",
        "coin_flip",
        "--teacher",
        str(student),
        "--teacher_engine",
        "vllm",
        "--diverse",
        "4",
        "--teacher_max_gen_toks",
        "32",
        "--train_limit",
        "4",
        "--student",
        str(tiny_model),
        "--run_dir",
        str(run_dir),
        *SMALL_RUN,
    ]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    log = run_dir / "logs" / "teacher-vllm.log"
    assert log.is_file() and "vllm.entrypoints.openai.api_server" in log.read_text()
    assert "starting vllm for" in first.stderr
    if first.returncode != 0:  # a 135M teacher may get no rationale right on 4 questions: then curation says so
        assert "none of" in first.stderr and "had a correct answer" in first.stderr, first.stderr[-3000:]
    else:
        assert (run_dir / "report.md").is_file()
    assert CACHE_LINE.search(first.stdout), first.stdout[-3000:]
    assert not vllm_processes_for(log), "a vLLM process outlived the run"

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert "teacher: done in an earlier run with the same settings and inputs, skipped" in again.stderr
    assert "starting vllm for" not in again.stderr  # a finished teacher starts no server


# --------------------------------------------------------------------------------- students scored through vLLM


def answers_of(out: Path) -> dict[int, str]:
    """doc_id -> the extracted answer of the one samples file lm-eval wrote under ``out``."""
    (samples,) = out.rglob("samples_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    return {row["doc_id"]: row["filtered_resps"][0] for row in rows}


def test_vllm_scoring_gives_the_answers_hf_gives(vllm_env, student, tmp_path):
    """``fcot evaluate --eval_engine vllm`` against lm-eval's own ``hf`` in fp32, greedy, on the same student:
    at most 1 differing answer (the bound is 1 per 150 questions; benchmarks/eval_speed.py measures 150)."""
    questions = "30"
    folder = tmp_path / "student"
    shutil.copytree(student, folder)  # fcot evaluate writes the score into the folder's card
    served = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcot_plugin.cli.fcot",
            "evaluate",
            "--model",
            str(folder),
            "--task",
            "multiarith",
            "--limit",
            questions,
            "--precision",
            "fp32",
            "--eval_engine",
            "vllm",
            "--output_path",
            str(tmp_path / "v"),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    assert "as fcot-scored-model at http://127.0.0.1:" in served.stderr
    plain = subprocess.run(
        [
            *FCOT_EVAL,
            "--model",
            "hf",
            "--model_args",
            f"pretrained={folder},dtype=float32",
            "--tasks",
            "fcot_multiarith",
            "--limit",
            questions,
            "--batch_size",
            "32",
            "--device",
            "cpu",
            "--log_samples",
            "--output_path",
            str(tmp_path / "h"),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert plain.returncode == 0, plain.stderr[-3000:]
    vllm_answers, hf_answers = answers_of(tmp_path / "v"), answers_of(tmp_path / "h")
    assert len(vllm_answers) == len(hf_answers) == int(questions)
    differing = [doc for doc in hf_answers if hf_answers[doc] != vllm_answers[doc]]
    print(f"greedy answers differing between vLLM and hf (fp32): {len(differing)} of {questions}")
    assert len(differing) <= 1, differing
    assert not vllm_processes_for(tmp_path / "v" / "eval-vllm.log"), "the scoring server outlived fcot evaluate"


def test_vllm_distill_scores_every_checkpoint_and_baseline_through_one_server(vllm_env, student, tmp_path):
    """``fcot distill --eval_engine vllm``: validation's epoch checkpoints, the student and the untrained
    baselines are all scored by one vLLM server, started once; each model after the first is swapped in, and
    the server stops with the run."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "fcot_plugin.cli.fcot",
        "distill",
        "--task",
        "multiarith",
        "--student",
        str(student),
        "--eval_engine",
        "vllm",
        "--train_limit",
        "24",
        "--epochs",
        "2",
        "--validation_size",
        "4",
        "--batch_size",
        "8",
        "--eval_limit",
        "6",
        "--max_gen_toks",
        "48",
        "--run_dir",
        str(run_dir),
        "--device",
        "cpu",
        "--precision",
        "fp32",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=2400)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count("fcot: starting vllm") == 1, "one server start-up for the whole run"
    swaps = re.findall(r"vllm: swapped in the weights of (\S+)", done.stderr)
    assert f"{run_dir}/student" in swaps and str(student) in swaps, swaps  # the student, then the baselines' base
    assert any("checkpoint-" in path for path in swaps) or "checkpoint-" in done.stderr
    stages = run_dir / "stages"
    evaluate = json.loads((stages / "evaluate.json").read_text())
    assert {evaluate[name]["eval_engine"] for name in ("student", "zeroshot", "zscot")} == {"vllm"}
    train = json.loads((stages / "train.json").read_text())
    assert [entry["epoch"] for entry in train["selection"]["curve"]] == [1, 2]
    assert train["selection"]["eval_engine"] == "vllm"
    log = run_dir / "logs" / "eval-vllm.log"
    assert sum(line.startswith("$ ") for line in log.read_text().splitlines()) == 1  # one command: one start-up
    assert (run_dir / "report.md").is_file()
    assert not vllm_processes_for(log), "the scoring server outlived the run"


def test_vllm_swapped_weights_give_the_text_the_weights_give(vllm_env, student, tmp_path):
    """A swap replaces every weight, the tied output embedding included (vLLM's CPU build keeps a pre-packed copy
    of it, so a plain in-place reload left the first model's head): after student -> other -> student, each
    model's greedy text is what transformers generates from it."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fcot_plugin.pipeline.scoring import VllmScorer

    other = tmp_path / "other"
    shutil.copytree(student, other)
    weights = load_file(student / "model.safetensors")
    generator = torch.Generator().manual_seed(0)
    for name in ("model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"):  # the tied head changes too
        weights[name] = weights[name] + 0.05 * torch.randn(weights[name].shape, generator=generator)
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    prompt = "Q: A coin is heads up. Ann flips the coin. Is the coin still heads up?\n\nA:"
    tokenizer = AutoTokenizer.from_pretrained(student)

    def transformers_text(folder: Path) -> str:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        generated = model.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1] :]
        return tokenizer.decode(generated, skip_special_tokens=True)

    expected = {folder: transformers_text(folder) for folder in (student, other)}
    assert expected[student] != expected[other]
    import requests

    with VllmScorer("float32", 4, tmp_path / "server.log") as scorer:
        for folder in (student, other, student, other):
            scorer.lm_eval_model(folder)
            served = scorer._served
            request = {"model": served.model, "prompt": prompt, "max_tokens": 24, "temperature": 0}
            answer = requests.post(served.base_url, timeout=300, json=request)
            assert answer.json()["choices"][0]["text"] == expected[folder], folder
        assert len(scorer.swap_seconds) == 3
