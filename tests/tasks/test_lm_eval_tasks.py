"""Every fcot task through lm-eval for real: task indexing, request building, generation and scoring."""

from __future__ import annotations

import json

import pytest
from helpers.oracle import oracle_knows
from helpers.paths import REPO
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from fcot_plugin.harness import task_functions as lm_eval_hooks
from fcot_plugin.tasks.names import VARIANTS, group_name, task_config_dir, task_name, variant_tasks
from fcot_plugin.tasks.registry import TASKS, DatasetError

OFFLINE_TASKS = [
    task_name(task, variant)
    for variant in VARIANTS
    for task in variant_tasks(variant)
    if not (task == "aqua" and variant.startswith("teacher"))  # AQuA train comes from the Hub
]
DIRECT_VARIANTS = ("student", "vanilla", "zeroshot", "fewshot_cot", "sc")  # run without the zscot wrapper


def fcot_task_manager(metadata: dict | None = None) -> TaskManager:
    """The fcot tasks alone (fast: lm-eval's ~14k built-in tasks are not indexed); run metadata as --metadata."""
    return TaskManager(include_path=str(task_config_dir()), include_defaults=False, metadata=metadata)


@pytest.fixture(scope="module")
def task_manager() -> TaskManager:
    return fcot_task_manager()


def test_all_tasks_and_groups_are_indexed(task_manager):
    expected = {task_name(task, variant) for variant in VARIANTS for task in variant_tasks(variant)}
    expected |= {group_name(variant) for variant in VARIANTS} | {"fcot_all"}
    assert expected <= set(task_manager.all_tasks)
    assert len(expected) == 12 * len(VARIANTS) - 1 + len(VARIANTS) + 1  # no Few-shot-CoT for shuffled objects
    assert "fcot_tracking_shuffled_objects_fewshot_cot" not in task_manager.all_tasks


def test_generated_configs_are_up_to_date():
    import subprocess
    import sys

    script = REPO / "scripts" / "generate_task_configs.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _accuracies(results: dict) -> dict[str, float]:
    return {name: metrics["acc,fcot"] for name, metrics in results["results"].items() if "acc,fcot" in metrics}


def _expected_accuracy(samples: list[dict]) -> float:
    return sum(oracle_knows(sample["doc"]) for sample in samples) / len(samples)


def test_every_task_scores_an_oracle_exactly(task_manager):
    direct = [name for name in OFFLINE_TASKS if any(name == task_name(t, v) for t in TASKS for v in DIRECT_VARIANTS)]
    reasoning = [name for name in OFFLINE_TASKS if name not in direct]
    for model, tasks in (("fcot-test-oracle", direct), ("zscot", reasoning)):
        results = simple_evaluate(
            model=model,
            model_args="base=fcot-test-oracle" if model == "zscot" else "",
            tasks=tasks,
            task_manager=fcot_task_manager({"fcot_samples": 2, "fcot_temperature": 1.0} if model == "zscot" else None),
            limit=4,
            log_samples=True,
        )
        accuracies = _accuracies(results)
        assert set(accuracies) == set(tasks)
        for name in tasks:
            assert accuracies[name] == pytest.approx(_expected_accuracy(results["samples"][name])), name
        assert 0 < sum(accuracies.values()) < len(tasks)  # both right and wrong answers were scored


def test_tiny_model_through_hf_and_zscot_with_repeats_and_sampling(task_manager, tiny_model):
    """A real causal LM: every offline task builds, generates and scores; samples keep the rationales."""
    common = {"limit": 2, "log_samples": True, "gen_kwargs": "max_gen_toks=8", "device": "cpu"}
    direct = [name for name in OFFLINE_TASKS if any(name == task_name(t, v) for t in TASKS for v in DIRECT_VARIANTS)]
    baselines = (
        "fewshot_cot",
        "sc",
    )  # one dataset each on the tiny model (long prompts, k samples); all with the oracle
    direct = [name for name in direct if not name.endswith(baselines) or name.startswith("fcot_coin_flip_")]
    results = simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model}", tasks=direct, task_manager=task_manager, **common
    )
    assert set(_accuracies(results)) == set(direct)

    reasoning = [name for name in OFFLINE_TASKS if name not in direct and not name.endswith(baselines)]
    results = simple_evaluate(
        model="zscot",
        model_args=f"base=hf,pretrained={tiny_model},answer_max_gen_toks=4",
        tasks=reasoning,
        task_manager=fcot_task_manager({"fcot_samples": 3, "fcot_temperature": 0.7}),
        **common,
    )
    assert set(_accuracies(results)) == set(reasoning)
    teacher_samples = results["samples"]["fcot_multiarith_teacher"]
    assert results["configs"]["fcot_multiarith_teacher"]["generation_kwargs"]["temperature"] == 0.7
    for sample in teacher_samples:
        rationales = sample["resps"][0]
        assert len(rationales) == 3  # D samples per question
        assert all("\nTherefore, the answer is" in response for response in rationales)
        assert len(sample["filtered_resps"][0]) == 3
    assert results["configs"]["fcot_multiarith_teacher"]["repeats"] == 3


def test_typed_kojima_trigger(task_manager):
    results = simple_evaluate(
        model="zscot",
        model_args="base=fcot-test-oracle,answer_trigger=typed",
        tasks=["fcot_multiarith_zscot", "fcot_commonsense_qa_zscot"],
        task_manager=task_manager,
        limit=2,
        log_samples=True,
    )
    multiarith = results["samples"]["fcot_multiarith_zscot"][0]["resps"][0][0]
    assert " Therefore, the answer (arabic numerals) is" in multiarith
    commonsense = results["samples"]["fcot_commonsense_qa_zscot"][0]["resps"][0][0]
    assert " Therefore, among A through E, the answer is" in commonsense


def test_greedy_teacher_with_many_samples_asks_for_a_temperature(task_manager):
    with pytest.raises(ValueError, match="would all be identical; set a temperature"):
        simple_evaluate(
            model="zscot",
            model_args="base=fcot-test-oracle",
            tasks=["fcot_coin_flip_teacher"],
            task_manager=fcot_task_manager({"fcot_samples": 4}),
            limit=1,
        )


def test_data_override_and_bad_rows(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"question": f"{i} + 0?", "answer": str(i)}) for i in range(4)))
    docs = lm_eval_hooks.load_split("multiarith", "test", fcot_data=str(good), pretrained="ignored")["test"]
    assert docs["answer"] == ["0", "1", "2", "3"] and set(docs["fcot_task"]) == {"multiarith"}

    bad_gold = tmp_path / "bad_gold.jsonl"
    bad_gold.write_text(json.dumps({"question": "q", "answer": "forty"}))
    with pytest.raises(DatasetError, match=r"row 0: multiarith: gold answer 'forty' is not a number"):
        lm_eval_hooks.load_split("multiarith", "test", fcot_data=str(bad_gold))


def test_empty_or_unparseable_outputs_score_as_wrong():
    docs = [{"fcot_task": "coin_flip", "answer": "yes"}] * 2
    filtered = lm_eval_hooks.extract_reasoning_answers([[""], ["hmm, unsure"]], docs)
    assert filtered == [["[invalid]"], ["[invalid]"]]
    assert lm_eval_hooks.process_results(docs[0], filtered[0]) == {"acc": 0.0}
    assert lm_eval_hooks.process_results(docs[0], [["yes", "no", "[invalid]", "yes"]]) == {"acc": 0.5}
