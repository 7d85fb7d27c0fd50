"""fcot_plugin.core.files and core.folders: where a benchmark's results go, and how a file error reads."""

import errno
from pathlib import Path

import pytest

from fcot_plugin.core.files import result_file
from fcot_plugin.core.folders import os_error_line


def test_a_dot_in_an_output_name_stays_and_a_given_suffix_is_replaced():
    assert result_file("results/teacher_throughput_qwen2.5-coder-0.5b", ".json") == Path(
        "results/teacher_throughput_qwen2.5-coder-0.5b.json"
    )
    assert result_file("results/table.json", ".md") == Path("results/table.md")
    assert result_file(Path("table"), ".png") == Path("table.png")


def test_an_os_error_without_an_errno_reads_as_the_librarys_own_first_line(tmp_path):
    """transformers refuses a GGUF file as a tokenizer with an ``OSError`` that has no errno; the line once read
    "oserror"."""
    from transformers import AutoTokenizer

    gguf = tmp_path / "teacher.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(OSError) as raised:
        AutoTokenizer.from_pretrained(str(gguf))
    line = os_error_line(raised.value, "fcot-eval")
    assert line.startswith("fcot-eval: ") and "\n" not in line and len(line) < 300
    assert str(raised.value).strip().splitlines()[0][:40] in line
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device", "/x")).startswith("the disk is full (/x)")
