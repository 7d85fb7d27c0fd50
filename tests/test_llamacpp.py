"""Embedded teachers and the llama.cpp engine, for real: the 0.5B Qwen2.5-Coder teacher's data-only wheels,
assembled and hash-checked; offline resolution; and ``fcot distill --teacher_engine llamacpp`` with D=2 through
llama.cpp's own ``llama-server``. Nothing is mocked.

They skip (with the reason) until ``make teacher TEACHERS=0.5b GGUF_ONLY=1`` has put the wheels, the GGUF and a
``llama-server`` build in fcot's cache. ``pytest -k "llamacpp or embedded_teacher"`` selects them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from helpers.serving import cache_rows, killed_once_cached

from fcot_plugin.core.errors import FcotError
from fcot_plugin.serving import llamacpp
from fcot_plugin.teacher import embedded

TEACHER = embedded.TEACHERS["0.5b"]
CACHE_LINE = re.compile(r"cache: rationales (\d+) reused, (\d+) generated; answers (\d+) reused, (\d+) generated")


def _wheels() -> list[Path] | None:
    folder = embedded.cache_dir() / "wheels" / TEACHER.package.replace("-part{n}", "")
    found = [embedded._wheel(folder, package, TEACHER.version) for package in TEACHER.packages()]
    return None if None in found else found


@pytest.fixture(scope="module")
def wheels() -> list[Path]:
    found = _wheels()
    if found is None:
        pytest.skip("the 0.5B teacher's wheels are not in fcot's cache: run `make teacher TEACHERS=0.5b GGUF_ONLY=1`")
    return found


# ------------------------------------------------------------------------------------------- embedded teacher


def test_embedded_teacher_assembles_to_the_pinned_hash(wheels, tmp_path):
    target = tmp_path / "teacher.gguf"
    lines: list[str] = []
    embedded.assemble(TEACHER, wheels, target, lines.append)
    assert embedded.sha256_of(target) == TEACHER.sha256 and target.stat().st_size == TEACHER.size
    assert len(lines) == TEACHER.parts and lines[-1].startswith(f"0.5b: assembled part {TEACHER.parts}/")
    assert not target.with_name(target.name + ".partial").exists()


def _corrupt_copy(wheel: Path, target: Path) -> Path:
    """``wheel`` with one byte of its data part flipped and its RECORD left as it was."""
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if "/data/" in item.filename:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            out.writestr(item, data)
    return target


def test_embedded_teacher_corrupted_part_is_one_line(wheels, tmp_path):
    damaged = [*wheels]
    damaged[1] = _corrupt_copy(wheels[1], tmp_path / wheels[1].name)
    target = tmp_path / "teacher.gguf"
    with pytest.raises(FcotError) as error:
        embedded.assemble(TEACHER, damaged[:2], target, lambda line: None)
    message = str(error.value)
    assert "\n" not in message and "part 2 of Qwen/Qwen2.5-Coder-0.5B-Instruct" in message
    assert "does not match its wheel's RECORD" in message and "make teacher" in message
    assert not target.exists() and not target.with_name(target.name + ".partial").exists()


def test_embedded_teacher_wrong_pinned_hash_is_refused_in_one_line(wheels, tmp_path):
    wrong = dataclasses.replace(TEACHER, sha256="0" * 64)
    target = tmp_path / "teacher.gguf"
    with pytest.raises(FcotError) as error:
        embedded.assemble(wrong, wheels, target, lambda line: None)
    assert "\n" not in str(error.value) and f"not the pinned {'0' * 64}" in str(error.value)
    assert "refusing it" in str(error.value) and not target.exists()


def test_embedded_teacher_unknown_name_is_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "fcot_plugin.teacher.embedded", "--teachers", "7b"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "make teacher: error: unknown embedded teacher 7b; choose from: 1.5b, 0.5b (or all)"


def test_embedded_teacher_resolves_offline(teacher_gguf, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    path, record = embedded.resolve(TEACHER.hub_id, "llamacpp")
    assert path == str(teacher_gguf) and record["gguf_sha256"] == TEACHER.sha256 and record["license"] == "Apache-2.0"
    assert embedded.resolve("qwen2.5-coder-0.5b", "llamacpp")[0] == str(teacher_gguf)
    assert embedded.resolve("HuggingFaceTB/SmolLM2-135M-Instruct", "llamacpp") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        None,
    )
    monkeypatch.setenv("FCOT_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(FcotError, match=r"run `make teacher TEACHERS=0.5b` once"):
        embedded.resolve(TEACHER.hub_id, "llamacpp")


def test_embedded_teacher_make_teacher_again_is_quick(teacher_gguf):
    """Everything is in the cache: a second run checks and keeps it, with no download and no build."""
    done = subprocess.run(
        [sys.executable, "-m", "fcot_plugin.teacher.embedded", "--teachers", "0.5b", "--gguf_only", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "present (SHA-256 1d9614638d18" in done.stderr and "download" not in done.stderr


# ------------------------------------------------------------------------------------------- llama.cpp engine


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
        "--eval_limit",
        "2",
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
        "--precision",
        "fp32",
        "--baselines",
        "false",
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
