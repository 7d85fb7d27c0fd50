"""``--model hf-regroup``: lm-eval's ``hf`` whose unfinished answers are regrouped every few tokens, same answers."""

from __future__ import annotations

from collections import Counter

import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from fcot_plugin.hf_regroup import RegroupingHFLM

CONTEXTS = [f"Q: {'how many apples ' * n}are left? ###" for n in (1, 4, 2, 7, 3, 1, 5, 2, 6)]


def requests(gen_kwargs: dict) -> list[Instance]:
    return [
        Instance(request_type="generate_until", doc={}, arguments=(context, dict(gen_kwargs)), idx=index)
        for index, context in enumerate(CONTEXTS)
    ]


@pytest.fixture(scope="module")
def wandering_model(tmp_path_factory):
    from tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-untied"), tie_word_embeddings=False)


@pytest.fixture(scope="module")
def models(wandering_model):
    args = {"pretrained": str(wandering_model), "dtype": "float32", "device": "cpu", "batch_size": 4}
    return HFLM(**args), RegroupingHFLM(**args, segment_tokens=3)


def common_stop(texts: list[str]) -> str:
    """A two-character string the tiny model writes in some answers and not others, at different places."""
    counts = Counter(text[i : i + 2] for text in texts for i in range(len(text) - 1) if text[i : i + 2].strip())
    for pair, _ in counts.most_common():
        if 1 < sum(pair in text for text in texts) < len(texts):
            return pair
    raise AssertionError(f"no stop string splits these answers: {texts}")


def test_greedy_answers_equal_lm_evals_hf(models):
    plain, regrouping = models
    free = plain.generate_until(requests({"until": [], "max_gen_toks": 16, "do_sample": False}), disable_tqdm=True)
    stop = common_stop(free)
    kwargs = {"until": [stop], "max_gen_toks": 16, "do_sample": False}
    expected = plain.generate_until(requests(kwargs), disable_tqdm=True)
    got = regrouping.generate_until(requests(kwargs), disable_tqdm=True)
    assert got == expected
    assert len({len(text) for text in got}) > 2  # answers ended at different steps, so rows really were regrouped
    assert regrouping.generate_until(requests({**kwargs, "until": []}), disable_tqdm=True) == free


def test_budget_and_groups(models):
    """Each request keeps its own generation kwargs, its budget included, as under lm-eval's hf."""
    plain, regrouping = models
    short = {"until": [], "max_gen_toks": 5, "do_sample": False}
    long = {"until": [], "max_gen_toks": 11, "do_sample": False}

    def mixed():
        return [Instance("generate_until", {}, (c, dict(short if i % 2 else long)), i) for i, c in enumerate(CONTEXTS)]

    got = regrouping.generate_until(mixed(), disable_tqdm=True)
    assert got == plain.generate_until(mixed(), disable_tqdm=True)
    assert {len(text) for text in got[1::2]} != {len(text) for text in got[::2]}


def test_sampling_draws_per_request(models):
    _, regrouping = models
    kwargs = {"until": [], "max_gen_toks": 8, "do_sample": True, "temperature": 1.0}
    same_prompt = [Instance("generate_until", {}, (CONTEXTS[0], dict(kwargs)), i) for i in range(6)]
    outputs = regrouping.generate_until(same_prompt, disable_tqdm=True)
    assert len(set(outputs)) > 1


def test_bad_segment_tokens(tiny_model):
    with pytest.raises(ValueError, match="segment_tokens must be >= 1"):
        RegroupingHFLM(pretrained=str(tiny_model), segment_tokens=0)
