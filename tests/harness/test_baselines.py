"""The paper's Few-shot-CoT baseline and student self-consistency, through lm-eval for real."""

from __future__ import annotations

import subprocess

import pytest
from helpers.oracle import oracle_knows
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from fcot_plugin.core.errors import FcotError
from fcot_plugin.harness import task_functions as lm_eval_hooks
from fcot_plugin.tasks import prompts
from fcot_plugin.tasks.answers import extract_few_shot_cot_answer
from fcot_plugin.tasks.names import task_config_dir, variant_tasks


def _task_manager(metadata: dict | None = None) -> TaskManager:
    return TaskManager(include_path=str(task_config_dir()), include_defaults=False, metadata=metadata)


def test_fewshot_cot_prompts_are_the_authors_for_eleven_tasks():
    assert len(variant_tasks("fewshot_cot")) == 11
    assert "tracking_shuffled_objects" not in variant_tasks("fewshot_cot")  # the authors released none
    text = prompts.few_shot_cot_prompt("coin_flip", "A coin is heads up. Is it still heads up?")
    assert text.startswith("Q: A coin is heads up. Angelina flips the coin.")
    assert text.endswith("The answer is yes.\nQ: A coin is heads up. Is it still heads up?\nA:")
    assert text.count("\nQ: ") == 8  # 8 exemplars, then the question
    with pytest.raises(ValueError, match="no Few-shot-CoT prompt for 'tracking_shuffled_objects'"):
        prompts.few_shot_cot_prompt("tracking_shuffled_objects", "q")


def test_fewshot_cot_answer_after_the_answer_is():
    assert extract_few_shot_cot_answer("multiarith", "3 + 4 = 7. The answer is 7. Then 9") == "7"
    assert extract_few_shot_cot_answer("multiarith", "3 + 4 = 7, then 9") == "9"  # no prefix: the last
    assert extract_few_shot_cot_answer("coin_flip", "Flipped twice. The answer is yes.") == "yes"
    assert extract_few_shot_cot_answer("aqua", "So (B). The answer is D.") == "D"
    assert extract_few_shot_cot_answer("multiarith", "The answer is unclear") is None


def test_self_consistency_vote_skips_invalid_and_merges_equal_numbers():
    docs = [{"fcot_task": "svamp"}, {"fcot_task": "coin_flip"}, {"fcot_task": "coin_flip"}, {"fcot_task": "aqua"}]
    resps = [
        ["8", "[invalid]", "8.0", "9", "[invalid]", "[invalid]"],  # 8 == 8.0 on a float task: two votes
        ["no", "yes", "yes", "no"],  # a tie: the earliest sample's answer
        ["[invalid]", "[invalid]"],
        ["B", "C", "C"],
    ]
    assert lm_eval_hooks.majority_answer(resps, docs) == [["8"], ["no"], ["[invalid]"], ["C"]]


def test_self_consistency_k_and_t_from_metadata_vote_through_lm_eval():
    results = simple_evaluate(
        model="fcot-test-oracle",
        tasks=["fcot_multiarith_sc", "fcot_coin_flip_sc"],
        task_manager=_task_manager({"fcot_samples": 3, "fcot_temperature": 0.3}),
        limit=6,
        log_samples=True,
    )
    for name in ("fcot_multiarith_sc", "fcot_coin_flip_sc"):
        config = results["configs"][name]
        assert config["repeats"] == 3 and config["generation_kwargs"]["temperature"] == 0.3
        assert config["generation_kwargs"]["do_sample"] is True
        samples = results["samples"][name]
        for sample in samples:
            assert len(sample["resps"][0]) == 3 and len(set(sample["resps"][0])) == 2  # k samples that disagree
        # the oracle's samples are right, right, wrong (known docs): only the vote scores them 1, not 2/3
        expected = sum(oracle_knows(sample["doc"]) for sample in samples) / len(samples)
        assert results["results"][name]["acc,fcot"] == pytest.approx(expected)
    assert results["configs"]["fcot_coin_flip_sc"]["filter_list"][0]["name"] == "fcot"


def test_self_consistency_defaults_and_groups():
    manager = _task_manager()
    config = manager.load_task_or_group(["fcot_coin_flip_sc"])["fcot_coin_flip_sc"].config
    assert config.repeats == 8 and config.generation_kwargs["temperature"] == 0.7  # the stated defaults
    assert {"fcot_sc", "fcot_fewshot_cot"} <= set(manager.all_groups)


@pytest.mark.parametrize("metadata", [{"fcot_temperature": 0}, {"fcot_samples": 0}])
def test_self_consistency_bad_k_or_t_refused_by_the_task(metadata):
    bad = r"fcot_coin_flip_sc: fcot_(temperature must be > 0|samples must be a whole number >= 1)"
    with pytest.raises(FcotError, match=bad):
        simple_evaluate(
            model="fcot-test-oracle", tasks=["fcot_coin_flip_sc"], task_manager=_task_manager(metadata), limit=1
        )


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('{"fcot_temperature": 0}', "fcot_coin_flip_sc: fcot_temperature must be > 0 for a majority vote, got 0"),
        ('{"fcot_samples": 0}', "fcot_coin_flip_sc: fcot_samples must be a whole number >= 1, got 0"),
    ],
)
def test_self_consistency_bad_k_or_t_is_one_line_in_fcot_eval(metadata, message):
    command = ["fcot-eval", "--model", "hf", "--model_args", "pretrained=gpt2", "--tasks", "fcot_coin_flip_sc"]
    result = subprocess.run([*command, "--metadata", metadata], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fcot-eval: error: {message}"), result.stderr
