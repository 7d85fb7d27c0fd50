"""``fcot-test-oracle``: a registered lm-eval model with known answers, to check scoring and curation exactly."""

from __future__ import annotations

import lm_eval.models  # noqa: F401  lm-eval imports its own models only into an empty registry: fill it first
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

import fcot_plugin.harness.zscot  # noqa: F401  the oracle is wrapped by zscot in the teacher tests

ORACLE_RATIONALE = " I see 99 things and option E, so yes"


def _wrong(doc: dict) -> str:
    gold = doc["answer"]
    swaps = {
        "yes": "no",
        "no": "yes",
        "Yes": "no",
        "No": "yes",
        "A": "B",
        "B": "C",
        "C": "A",
        "D": "A",
        "E": "A",
        "F": "A",
    }
    if gold in swaps:
        return swaps[gold]
    if gold.replace(".", "").replace("-", "").isdigit():
        return str(float(gold) + 1)
    return gold + "x"


def oracle_knows(doc: dict) -> bool:
    return len(doc["question"]) % 2 == 0


@register_model("fcot-test-oracle")
class OracleLM(LM):
    """Answers docs whose question has an even length correctly and the others wrongly, in every fcot format.

    Rationales carry distracting numbers and letters, so the scores only come out right when each task
    parses the right part of the output. Sampled student requests (self-consistency) get, per repeat, the
    answer, the answer, a different answer and no answer: only a majority vote that skips the unanswered
    sample scores them as the greedy oracle.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__()

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        outputs, repeat = [], {}
        for request in requests:
            context, doc = request.args[0], request.doc
            answer = doc["answer"] if oracle_knows(doc) else _wrong(doc)
            repeat[id(request)] = repeat.get(id(request), -1) + 1  # lm-eval passes a request once per repeat
            sampled = bool(request.args[1].get("do_sample"))
            if context.endswith("Let's think step by step."):
                outputs.append(ORACLE_RATIONALE)  # stage 1: a rationale
            elif context.endswith(" ###") and sampled:
                vote = [answer, answer, _wrong({"answer": answer}), ""][repeat[id(request)] % 4]
                outputs.append(f"{ORACLE_RATIONALE} --> {vote}")
            elif context.endswith(" ###"):
                outputs.append(f"{ORACLE_RATIONALE} --> {answer}")
            elif "The answer is" in context:  # Few-shot-CoT: the exemplars end with "The answer is <answer>."
                outputs.append(f"{ORACLE_RATIONALE}. The answer is {answer}.")
            elif doc["fcot_task"] == "last_letter_concatenation":  # its rule takes the whole remaining text
                outputs.append(f" {answer}.")
            else:  # zero-shot answer, or zscot stage 2 after the trigger
                outputs.append(f" {answer}. Not 98, not E, not yes.")
        return outputs

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError
