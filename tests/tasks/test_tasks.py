"""The shipped datasets: the paper's exact splits, loading from paths, and clear errors for bad data."""

from __future__ import annotations

import json

import pytest

from fcot_plugin.tasks.registry import TASKS, DatasetError, load_rows, verbalize_aqua

# train / test sizes of the paper's splits (fcot_plugin/data/SOURCES.md)
SPLIT_SIZES = {
    "single_eq": (356, 152),
    "addsub": (276, 119),
    "multiarith": (420, 180),
    "gsm8k": (7473, 1319),
    "aqua": (None, 254),
    "svamp": (700, 300),
    "date_understanding": (258, 111),
    "tracking_shuffled_objects": (525, 225),
    "last_letter_concatenation": (350, 150),
    "coin_flip": (350, 150),
    "commonsense_qa": (9741, 1221),
    "strategy_qa": (1603, 687),
}


def test_all_twelve_tasks_are_registered():
    assert set(TASKS) == set(SPLIT_SIZES)


@pytest.mark.parametrize("task", sorted(SPLIT_SIZES))
def test_shipped_splits_have_the_paper_sizes(task):
    train_size, test_size = SPLIT_SIZES[task]
    test = load_rows(task, "test")
    assert len(test) == test_size
    assert all(isinstance(row["answer"], str) and row["question"] for row in test)
    if train_size is not None:
        train = load_rows(task, "train")
        assert len(train) == train_size
        assert not {row["sample_index"] for row in train} & {row["sample_index"] for row in test}


def test_aqua_train_offline_is_a_clear_error():
    with pytest.raises(DatasetError, match="AQuA train split is not shipped.*deepmind/aqua_rat"):
        load_rows("aqua", "train")


def test_aqua_raw_rows_are_verbalised_like_the_authors():
    row = {"question": "How many?", "options": ["A)21", "B)22 ", "C)23", "D)24", "E)25"], "correct": "B"}
    assert verbalize_aqua(row)["question"] == "How many? Answer choices: (A) 21, (B) 22, (C) 23, (D) 24, (E) 25."
    shipped = load_rows("aqua", "test")[0]["question"]
    assert " Answer choices: (A) 5(√3 + 1), (B) " in shipped and shipped.endswith(".")


def test_a_local_jsonl_file_or_folder_is_a_source(tmp_path):
    rows = [{"question": "1 + 1?", "answer": 2}, {"question": "2 + 2?", "answer": "4"}]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    from_folder = load_rows("multiarith", "test", source=str(tmp_path))
    from_file = load_rows("multiarith", "test", source=str(tmp_path / "test.jsonl"))
    assert from_folder == from_file
    assert [row["answer"] for row in from_folder] == ["2", "4"]  # answers become strings like the paper's
    assert [row["sample_index"] for row in from_folder] == [0, 1]


def test_a_saved_datasets_folder_and_a_json_file_are_sources(tmp_path):
    import datasets

    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"question": ["q"], "answer": ["yes"]})}).save_to_disk(
        str(tmp_path / "saved")
    )
    assert load_rows("coin_flip", "test", source=str(tmp_path / "saved"))[0]["answer"] == "yes"
    (tmp_path / "rows.json").write_text(json.dumps([{"question": "q", "answer": "no"}]))
    assert load_rows("coin_flip", "test", source=str(tmp_path / "rows.json"))[0]["answer"] == "no"


def test_missing_fields_name_the_row_and_the_fix(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps({"question": "q", "answer": "1"}) + "\n" + json.dumps({"q": "x"}))
    with pytest.raises(DatasetError, match=r"row 1 has no question, answer.*needs 'question' and 'answer'"):
        load_rows("multiarith", "test", source=str(tmp_path / "bad.jsonl"))


def test_broken_json_line_names_the_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"question": "q", "answer": "1"}\n{not json\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not valid JSON"):
        load_rows("multiarith", "test", source=str(tmp_path / "bad.jsonl"))


def test_unreachable_hub_id_is_a_clear_error():
    with pytest.raises(DatasetError, match="could not load split 'test' from 'nobody/no-such-dataset'"):
        load_rows("multiarith", "test", source="nobody/no-such-dataset")


def test_unknown_split_and_task():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_rows("multiarith", "dev")
    with pytest.raises(ValueError, match="unknown fcot task 'gsm9k'"):
        load_rows("gsm9k", "test")
