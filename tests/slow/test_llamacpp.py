"""``fcot distill --teacher_engine llamacpp`` and ``served_model`` through llama.cpp's own ``llama-server`` on the
embedded 0.5B teacher (the teacher's wheels and resolution: tests/test_llamacpp.py). Nothing is mocked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.runs import SMALL_RUN
from helpers.serving import cache_rows, killed_once_cached

from fcot_plugin.serving import llamacpp
from fcot_plugin.teacher import embedded

TEACHER = embedded.TEACHERS["0.5b"]


CACHE_LINE = re.compile(r"cache: rationales (\d+) reused, (\d+) generated; answers (\d+) reused, (\d+) generated")


def llama_processes(port: int | None = None) -> list[int]:
    """Live (not zombie) ``llama-server`` processes; ``port``: only the one listening there."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError):
                continue
            if state in ("Z", "X") or not command or not command[0].endswith(b"llama-server"):
                continue
            if port is None or f"--port\0{port}\0".encode() in b"\0".join(command) + b"\0":
                found.append(int(entry))
    return found


def ports_in(log: Path) -> list[int]:
    """The ports of the servers a run's server log names (its ``$ <command>`` lines)."""
    return [int(port) for port in re.findall(r"^\$ .* --port (\d+)", log.read_text(), re.MULTILINE)]


def distill_command(run_dir: Path, student: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fcot_plugin.cli.fcot",
        "distill",
        "--task",
        "multiarith",
        "--teacher",
        TEACHER.hub_id,
        "--teacher_engine",
        "llamacpp",
        "--diverse",
        "2",
        "--teacher_temperature",
        "0.7",
        "--teacher_max_gen_toks",
        "96",
        "--train_limit",
        "4",
        "--student",
        str(student),
        "--run_dir",
        str(run_dir),
        *SMALL_RUN,
    ]


@pytest.mark.slow
def test_llamacpp_distill_keeps_rationales_resumes_and_leaves_no_process(
    teacher_gguf, llama_server_binary, tiny_model, tmp_path
):
    """D=2 at T=0.7 through llama.cpp: killed mid-teacher, the same command regenerates nothing it kept, correct
    rationales are curated, and no ``llama-server`` outlives either run."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run_dir = tmp_path / "run"
    command = distill_command(run_dir, tiny_model)
    cache = run_dir / "teacher-cache.sqlite"
    code = killed_once_cached(command, tmp_path, cache, responses=2, timeout=900)
    kept = cache_rows(cache)
    assert code != 0 and len(kept) >= 2, "the teacher was killed after it cached responses"
    # the killed fcot's llama-server goes with it (the watchdog gets the parent-death signal)
    log = run_dir / "logs" / "teacher-llamacpp.log"
    (port,) = ports_in(log)
    deadline = time.monotonic() + 30
    while llama_processes(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not llama_processes(port), "a llama-server outlived the killed run"

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1800, env=env)
    assert "starting llamacpp for" in again.stderr and str(teacher_gguf) in again.stderr
    after = cache_rows(cache)
    assert all(after[key] == value for key, value in kept.items()), "a kept response was generated again"
    match = CACHE_LINE.search(again.stdout)
    assert match, again.stdout[-3000:]
    assert int(match.group(1)) + int(match.group(3)) >= len(kept)
    if again.returncode == 0:
        report = (run_dir / "report.md").read_text()
        assert TEACHER.sha256 in report and str(teacher_gguf) in report
    else:  # the 0.5B may get no question of 4 right: curation says so in one line
        assert "had a correct answer" in again.stderr, again.stderr[-3000:]
    ports = ports_in(log)
    assert len(ports) == 2 and not any(llama_processes(port) for port in ports), "a llama-server outlived the run"


@pytest.mark.slow
def test_llamacpp_served_model_answers_and_stops(teacher_gguf, llama_server_binary, tmp_path):
    import requests

    from fcot_plugin.serving.served import served_model

    with served_model(teacher_gguf, "llamacpp", tmp_path / "server.log", progress=None) as served:
        assert served.num_concurrent == llamacpp.slots(len(os.sched_getaffinity(0)))
        assert "tokenizer_backend=none" in served.model_args
        answer = requests.post(
            served.base_url,
            timeout=300,
            json={
                "model": served.model,
                "prompt": "Q: What is 2 plus 3?\nA: Let's think step by step.",
                "max_tokens": 24,
                "temperature": 0,
            },
        ).json()
        assert answer["choices"][0]["text"].strip()
        assert llama_processes(served.port)
    assert not llama_processes(served.port)
    shutil.rmtree(tmp_path, ignore_errors=True)
