"""Reasoning-model teachers on replies in the shape Qwen3 and DeepSeek-R1 give (tests/data/reasoning_replies.jsonl).

The replies are written by hand in those models' formats (no such model runs offline here); every one goes
through the real ``zscot`` model, the task's lm-eval filter and curation's rationale split.
"""

from __future__ import annotations

import json

import pytest
from helpers.paths import DATA
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from fcot_plugin.harness.task_functions import INVALID, extract_reasoning_answers
from fcot_plugin.harness.zscot import ZeroShotCoT, _rejoin_reasoning
from fcot_plugin.tasks.answers import is_correct, split_rationale
from fcot_plugin.tasks.prompts import teacher_stage1

REPLIES = [json.loads(line) for line in (DATA / "reasoning_replies.jsonl").open()]


@register_model("fcot-test-replay")
class ReplayLM(LM):
    """Answers each prompt with the recorded reply for its question; remembers every prompt it was sent."""

    def __init__(self, **_: object) -> None:
        super().__init__()
        self.prompts: list[str] = []

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        replies = {teacher_stage1(row["question"]): row["reply"] for row in REPLIES}
        self.prompts += [request.args[0] for request in requests]
        return [replies[request.args[0]] for request in requests]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError


def test_reasoning_replies_become_rationale_and_task_parsed_answer(tmp_path):
    lm = ZeroShotCoT(base="fcot-test-replay", reasoning="true", cache=str(tmp_path / "cache.sqlite"))
    docs = [{"fcot_task": row["task"], "question": row["question"]} for row in REPLIES]
    prompts = [teacher_stage1(row["question"]) for row in REPLIES]
    requests = [
        Instance("generate_until", doc, (prompt, {"max_gen_toks": 4096}), 0)
        for doc, prompt in zip(docs, prompts, strict=True)
    ]
    responses = lm.generate_until(requests)

    assert lm.base.prompts == prompts  # one request per question: no stage 2 for a reasoning model
    answers = extract_reasoning_answers([[response] for response in responses], docs)
    for row, response, (answer,) in zip(REPLIES[:-1], responses, answers, strict=False):
        rationale, _ = split_rationale(response)
        assert rationale.strip() == row["thinking"], row["style"]
        assert is_correct(row["task"], answer, row["gold"]), (row["style"], answer)
    assert answers[-1] == [INVALID]  # thinking cut off by the budget: no answer, never a guess

    again = ZeroShotCoT(base="fcot-test-replay", reasoning="true", cache=str(tmp_path / "cache.sqlite"))
    assert again.generate_until(requests) == responses and again.base.prompts == []
    assert again.accounting.reused == len(REPLIES)


def test_split_out_reasoning_content_is_rejoined():
    """vLLM's reasoning parser returns the thinking in ``message.reasoning_content``, apart from ``content``."""
    row = REPLIES[0]
    message = {"role": "assistant", "reasoning_content": row["thinking"], "content": "39 pieces. \\boxed{39}"}
    output = {"choices": [{"index": 0, "message": message}]}
    _rejoin_reasoning(output)
    content = output["choices"][0]["message"]["content"]
    assert content.startswith(f"<think>{row['thinking']}</think>")
    _rejoin_reasoning(output)  # idempotent
    assert output["choices"][0]["message"]["content"] == content


@pytest.mark.parametrize("reasoning", ["false", "true"])
def test_reasoning_flag_is_part_of_the_cache_fingerprint(tmp_path, reasoning):
    one = ZeroShotCoT(base="fcot-test-replay", reasoning=reasoning, cache=str(tmp_path / "c.sqlite"))
    other = "true" if reasoning == "false" else "false"
    two = ZeroShotCoT(base="fcot-test-replay", reasoning=other, cache=str(tmp_path / "c.sqlite"))
    assert one.fingerprint()["reasoning"] != two.fingerprint()["reasoning"]
    assert one.cache.key(1, "Q", {}, 0) != two.cache.key(1, "Q", {}, 0)  # the file is shared, no entry is
