"""zscot's response cache over an in-process ``hf`` teacher: per-sample entries, both stages, exact keys."""

from __future__ import annotations

import sqlite3

import pytest
from lm_eval.api.instance import Instance

from fcot_plugin.harness.zscot import ZeroShotCoT
from fcot_plugin.tasks.prompts import teacher_stage1
from fcot_plugin.teacher.cache import CacheMismatchError, ResponseCache, entry_key

QUESTIONS = ["A coin is heads up. Ka flips the coin. Is the coin still heads up?", "Take the last letters of 'ab cd'."]


def sampled_requests(samples: int) -> list[Instance]:
    """What lm-eval hands a model for ``repeats: D``: each request object D times in a row."""
    requests = []
    for question in QUESTIONS:
        doc = {"fcot_task": "coin_flip", "question": question}
        kwargs = {"until": ["\nQ:"], "do_sample": True, "temperature": 1.0, "max_gen_toks": 6}
        requests += [Instance("generate_until", doc, (teacher_stage1(question), kwargs), 0)] * samples
    return requests


def teacher(tiny_model, cache, **extra) -> ZeroShotCoT:
    return ZeroShotCoT(
        base="hf", pretrained=str(tiny_model), device="cpu", answer_max_gen_toks=4, cache=str(cache), **extra
    )


def test_each_sample_and_stage_is_its_own_entry_and_a_restart_generates_nothing(tiny_model, tmp_path, capsys):
    cache = tmp_path / "cache.sqlite"
    first = teacher(tiny_model, cache)
    responses = first.generate_until(sampled_requests(3))
    assert "cache: rationales 0 reused, 6 generated; answers 0 reused, 6 generated" in capsys.readouterr().out
    with sqlite3.connect(cache) as db:
        stages = dict(db.execute("SELECT stage, COUNT(*) FROM responses GROUP BY stage").fetchall())
    assert stages == {1: 6, 2: 6}  # D=3 samples x 2 questions, rationale and answer each
    assert first.accounting.token_sources == ["tokenizer"] and first.accounting.completion_tokens > 0

    again = teacher(tiny_model, cache)
    assert again.generate_until(sampled_requests(3)) == responses
    assert "cache: rationales 6 reused, 0 generated; answers 6 reused, 0 generated" in capsys.readouterr().out
    assert again.accounting.requests == 0 and again.accounting.prompt_tokens == 0

    # one more sample per question: only the new one is generated
    more = teacher(tiny_model, cache).generate_until(sampled_requests(4))
    assert "cache: rationales 6 reused, 2 generated; answers 6 reused, 2 generated" in capsys.readouterr().out
    assert [more[i] for i in (0, 1, 2, 4, 5, 6)] == responses

    # another trigger: the rationales are reused, every answer is generated again
    typed = teacher(tiny_model, cache, answer_trigger="typed")
    typed.generate_until(sampled_requests(3))
    assert "cache: rationales 6 reused, 0 generated; answers 0 reused, 6 generated" in capsys.readouterr().out
    assert typed.accounting.requests == 6  # stage 2 only


def test_another_teacher_shares_the_file_but_none_of_the_responses(tiny_model, tmp_path, capsys):
    """One ledger for every teacher: another model setting generates its own, and the first keeps its own."""
    cache = tmp_path / "cache.sqlite"
    teacher(tiny_model, cache).generate_until(sampled_requests(1))
    teacher(tiny_model, cache, dtype="bfloat16").generate_until(sampled_requests(1))
    assert "answers 0 reused, 2 generated" in capsys.readouterr().out.splitlines()[-1]
    teacher(tiny_model, cache).generate_until(sampled_requests(1))
    assert "cache: rationales 2 reused, 0 generated; answers 2 reused, 0 generated" in capsys.readouterr().out


def test_a_second_process_on_the_same_cache_is_refused_in_one_line(tmp_path):
    import subprocess
    import sys

    cache = tmp_path / "cache.sqlite"
    held = ResponseCache(cache, {"base": "a"})
    code = f"from fcot_plugin.teacher.cache import ResponseCache; ResponseCache({str(cache)!r}, {{'base': 'b'}})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (
        result.returncode != 0 and "is in use by pid" in result.stderr and "pass another cache path" in result.stderr
    )
    held.close()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # free again once the holder closes it


def test_a_ledger_of_another_schema_is_refused_in_one_line(tmp_path):
    """A file whose entries are keyed another way would never match: refused, not silently regenerated."""
    cache = tmp_path / "other.sqlite"
    ResponseCache(cache, {"base": "a"}).close()
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE meta SET value = 'fcot-teacher-cache/1' WHERE key = 'schema'")
    with pytest.raises(CacheMismatchError, match=r"not an fcot teacher cache \(schema fcot-teacher-cache/1, not"):
        ResponseCache(cache, {"base": "a"})


def test_entry_keys_hold_everything_that_changes_the_text():
    teacher = {"base": "a"}
    base = entry_key(1, "Q: x\nA:", {"max_gen_toks": 8, "temperature": 0.7}, 0, teacher)
    same = entry_key(1, "Q: x\nA:", {"temperature": 0.7, "max_gen_toks": 8}, 0, teacher)  # order does not matter
    assert base == same
    changed = [
        entry_key(2, "Q: x\nA:", {"max_gen_toks": 8, "temperature": 0.7}, 0, teacher),
        entry_key(1, "Q: y\nA:", {"max_gen_toks": 8, "temperature": 0.7}, 0, teacher),
        entry_key(1, "Q: x\nA:", {"max_gen_toks": 9, "temperature": 0.7}, 0, teacher),
        entry_key(1, "Q: x\nA:", {"max_gen_toks": 8, "temperature": 0.7}, 1, teacher),
        entry_key(1, "Q: x\nA:", {"max_gen_toks": 8, "temperature": 0.7}, 0, {"base": "b"}),
    ]
    assert len({base, *changed}) == 6


def test_responses_are_stored_as_the_base_model_reports_them_not_when_it_returns(tiny_model, tmp_path):
    """A kill mid-call keeps what finished: every entry is committed while the base model is still generating."""
    lm = teacher(tiny_model, tmp_path / "cache.sqlite", batch_size=2)
    inside, stored_inside = [False], []
    generate, put = lm.base.generate_until, lm.cache.put

    def generating(*args, **kwargs):
        inside[0] = True
        try:
            return generate(*args, **kwargs)
        finally:
            inside[0] = False

    def storing(*args):
        stored_inside.append(inside[0])
        put(*args)

    lm.base.generate_until, lm.cache.put = generating, storing
    lm.generate_until(sampled_requests(2))
    assert stored_inside == [True] * 8  # 4 rationales then 4 answers, each stored before its batch call returned
