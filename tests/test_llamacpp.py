"""Embedded teachers and the llama.cpp engine, for real: the 0.5B Qwen2.5-Coder teacher's data-only wheels,
assembled and hash-checked; offline resolution; and ``fcot distill --teacher_engine llamacpp`` with D=2 through
llama.cpp's own ``llama-server``. Nothing is mocked.

They skip (with the reason) until ``make teacher TEACHERS=0.5b GGUF_ONLY=1`` has put the wheels, the GGUF and a
``llama-server`` build in fcot's cache. ``pytest -k "llamacpp or embedded_teacher"`` selects them.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fcot_plugin.core.errors import FcotError
from fcot_plugin.teacher import embedded

TEACHER = embedded.TEACHERS["0.5b"]


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
