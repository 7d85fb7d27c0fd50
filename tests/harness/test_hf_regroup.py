"""``--model hf-regroup``: lm-eval's ``hf`` keeping its batch full of unfinished answers, same answers."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from transformers.cache_utils import DynamicLayer

from fcot_plugin.harness import hf_regroup
from fcot_plugin.harness.hf_regroup import GrowingLayer, LiveRows, RegroupingHFLM, greedy_changers

CONTEXTS = [f"Q: {'how many apples ' * n}are left? ###" for n in (1, 4, 2, 7, 3, 1, 5, 2, 6)]


def requests(gen_kwargs: dict) -> list[Instance]:
    return [
        Instance(request_type="generate_until", doc={}, arguments=(context, dict(gen_kwargs)), idx=index)
        for index, context in enumerate(CONTEXTS)
    ]


@pytest.fixture(scope="module")
def wandering_model(tmp_path_factory):
    from helpers.tiny_models import build_tiny_llama

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


def common_word_token(texts: list[str], tokenizer) -> int:
    """A word token the tiny model writes in some answers and not others."""
    encoded = [set(tokenizer.encode(text, add_special_tokens=False)) for text in texts]
    counts = Counter(token for tokens in encoded for token in tokens if tokenizer.decode([token]).strip().isalpha())
    for token, _ in counts.most_common():
        if 1 < sum(token in tokens for tokens in encoded) < len(texts):
            return token
    raise AssertionError(f"no word token splits these answers: {texts}")


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


def test_rows_leave_and_join_one_cache(models, monkeypatch):
    """Greedy requests take continuous batching: finished rows leave the cache, waiting prompts are merged in
    (prefilled a few at a time, each group padded to its own longest prompt)."""
    plain, regrouping = models
    monkeypatch.setattr(hf_regroup, "PREFILL_ROWS", 3)
    calls = Counter()
    for name in ("merge", "keep"):
        method = getattr(LiveRows, name)
        monkeypatch.setattr(LiveRows, name, lambda self, *a, _m=method, _n=name: (calls.update([_n]), _m(self, *a))[1])
    monkeypatch.setattr(regrouping, "_generate_regrouped", lambda *a: pytest.fail("greedy requests took segments"))
    free = plain.generate_until(requests({"until": [], "max_gen_toks": 16, "do_sample": False}), disable_tqdm=True)
    kwargs = {"until": [common_stop(free)], "max_gen_toks": 16, "do_sample": False}  # answers end at different steps
    assert regrouping.generate_until(requests(kwargs), disable_tqdm=True) == plain.generate_until(
        requests(kwargs), disable_tqdm=True
    )
    assert calls["merge"] and calls["keep"]  # 9 prompts through 4 rows: some joined rows already decoding


def test_generation_config_stops_and_greedy_changers(models, monkeypatch):
    """The model's own EOS ids end answers as ``generate`` ends them; settings that change greedy choice are
    left to ``generate`` itself."""
    plain, regrouping = models
    kwargs = {"until": [], "max_gen_toks": 16, "do_sample": False}
    free = plain.generate_until(requests(kwargs), disable_tqdm=True)
    eos = regrouping.model.generation_config.eos_token_id  # two separate models: set both, restore both
    token = common_word_token(free, plain.tokenizer)
    try:
        for model in (plain, regrouping):
            model.model.generation_config.eos_token_id = [eos, token]
        stopped = regrouping.generate_until(requests(kwargs), disable_tqdm=True)
        assert stopped == plain.generate_until(requests(kwargs), disable_tqdm=True)
        assert stopped != free
        for model in (plain, regrouping):
            model.model.generation_config.repetition_penalty = 1.5
        assert greedy_changers(regrouping.model.generation_config) == ["repetition_penalty=1.5"]
        for path in ("_generate_continuous", "_generate_regrouped"):  # the penalty sees padding: lm-eval's hf only
            monkeypatch.setattr(regrouping, path, lambda *a, _p=path: pytest.fail(f"{_p} under a repetition penalty"))
        assert regrouping.generate_until(requests(kwargs), disable_tqdm=True) == plain.generate_until(
            requests(kwargs), disable_tqdm=True
        )
    finally:
        for model in (plain, regrouping):
            model.model.generation_config.eos_token_id = eos
            model.model.generation_config.repetition_penalty = None


def test_growing_layer_holds_what_dynamic_layer_holds():
    """Appending into spare room, and replacing keys then values (as ``LiveRows.keep`` does), keeps the cache
    transformers' ``DynamicLayer`` would hold."""
    torch.manual_seed(0)
    growing, dynamic = GrowingLayer(), DynamicLayer()

    def update(rows: int, tokens: int) -> None:
        keys, values = torch.randn(rows, 2, tokens, 8), torch.randn(rows, 2, tokens, 8)
        for got, expected in zip(growing.update(keys, values), dynamic.update(keys, values), strict=True):
            assert torch.equal(got, expected)

    update(3, 5)
    for _ in range(GrowingLayer.GROWTH + 2):  # past the spare room: the buffer grows once
        update(3, 1)
    for layer in (growing, dynamic):
        layer.keys = layer.keys[[0, 2], :, 4:]
        layer.values = layer.values[[0, 2], :, 4:]
    update(2, 1)
    assert growing.get_seq_length() == dynamic.get_seq_length() == 5 + GrowingLayer.GROWTH + 2 - 4 + 1


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


def scored_answers(engine: str, model, tmp_path, zscot: bool) -> tuple[float, list]:
    """``--eval_engine <engine>``'s accuracy on 6 coin_flip test questions, and each question's answer."""
    import json

    from fcot_plugin.harness.runner import accuracy
    from fcot_plugin.pipeline.scoring import make_scorer

    task, out = "fcot_coin_flip", tmp_path / f"{engine}-{zscot}"
    with make_scorer(engine, "float32", 4, tmp_path / "unused.log") as scorer:
        assert scorer.engine == engine
        results = scorer.score(model, task, zscot=zscot, max_gen_toks=12, limit=6, output_path=out, device="cpu")
    (samples,) = out.glob(f"**/samples_{task}_*.jsonl")
    rows = sorted((json.loads(line) for line in samples.read_text().splitlines()), key=lambda row: row["doc_id"])
    return accuracy(results, task), [(row["doc_id"], row["resps"], row["filtered_resps"]) for row in rows]


@pytest.mark.parametrize("zscot", [False, True], ids=["student", "zscot"])
def test_eval_engine_hf_scores_as_hf_regroup(wandering_model, tmp_path, zscot):
    """``--eval_engine hf`` is lm-eval's own ``hf`` model (``zscot`` over it for zero-shot-CoT), the default
    ``hf-regroup`` fcot's: greedy in fp32, the same answers and the same accuracy."""
    from fcot_plugin.pipeline.scoring import make_scorer

    with make_scorer("hf", "float32", 4, tmp_path / "unused.log") as scorer:
        assert scorer.lm_eval_model(wandering_model, zscot=zscot)[0] == ("zscot" if zscot else "hf")
        assert ("base=hf," in scorer.lm_eval_model(wandering_model, zscot=True)[1]) is True
    regroup = scored_answers("hf-regroup", wandering_model, tmp_path, zscot)
    plain = scored_answers("hf", wandering_model, tmp_path, zscot)
    assert len(plain[1]) == 6
    assert plain == regroup
