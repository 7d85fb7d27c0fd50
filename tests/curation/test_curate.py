"""Curation on real lm-eval samples files and on the paper's released rationales."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pytest
from helpers.oracle import ORACLE_RATIONALE, oracle_knows
from helpers.paths import DATA

from fcot_plugin.core.errors import FcotError
from fcot_plugin.curation.dataset import CurationError, curate, save_dataset
from fcot_plugin.harness.runner import run_lm_eval
from fcot_plugin.tasks.registry import load_rows

# Fine-tune-CoT training rows from the paper's released completions (fcot_plugin/data/SOURCES.md)
PAPER_ROWS = {
    "single_eq": 289,
    "addsub": 209,
    "multiarith": 323,
    "svamp": 448,
    "date_understanding": 170,
    "tracking_shuffled_objects": 284,
    "last_letter_concatenation": 201,
    "coin_flip": 314,
    "strategy_qa": 856,
}
REFERENCE = DATA / "F_zs_cot_multiarith.jsonl"  # the authors' OpenAI fine-tune file


@pytest.mark.parametrize("task", sorted(PAPER_ROWS))
def test_paper_rationales_give_the_papers_training_sets(task):
    result = curate(task, "paper", decontaminate=False)
    assert len(result.rows) == PAPER_ROWS[task]
    assert result.stats.duplicates == result.stats.overlap == 0


# Train questions of the paper's splits that their test splits ask verbatim; every other shipped task has none.
PAPER_OVERLAP = {"multiarith": (5, 319), "strategy_qa": (1, 856)}  # (questions dropped, rows left)


@pytest.mark.parametrize("task", sorted(PAPER_ROWS))
def test_curation_drops_train_questions_the_test_split_asks(task):
    result = curate(task, "paper")
    overlap, rows = PAPER_OVERLAP.get(task, (0, PAPER_ROWS[task]))
    assert (result.stats.overlap, len(result.rows)) == (overlap, rows)
    test = {row["question"] for row in load_rows(task, "test")}
    assert not any(row["prompt"].removesuffix(" ###") in test for row in result.rows)


def test_multiarith_matches_the_authors_fine_tune_file_in_our_format():
    rows = curate("multiarith", "paper", decontaminate=False).rows
    reference = [json.loads(line) for line in REFERENCE.read_text().splitlines()]
    assert len(rows) == len(reference) == 323
    for row, ref in zip(rows, reference, strict=True):
        question = ref["prompt"].removesuffix("\n\n###\n\n")
        rationale, answer = ref["completion"].removesuffix(" END").split("\n\n-->\n\n")
        assert row["prompt"] == f"{question} ###"
        assert row["completion"] == f"{rationale} --> {answer}"  # rationale already starts with a space


def test_vanilla_format_uses_every_train_question_with_its_gold_answer():
    rows = curate("multiarith", "paper", format="vanilla", decontaminate=False).rows
    train = load_rows("multiarith", "train")
    assert len(rows) == len(train) == 420
    assert rows[0] == {
        "prompt": f"{train[0]['question']} ###",
        "completion": f" {train[0]['answer']}",
        "sample_index": 0,
    }


@pytest.fixture(scope="module")
def oracle_teacher_run(tmp_path_factory) -> Path:
    """Real lm-eval samples of the oracle teacher through zscot, 3 samples per question."""
    out = tmp_path_factory.mktemp("teacher")
    run_lm_eval(
        "zscot",
        "base=fcot-test-oracle",
        ["fcot_coin_flip_teacher", "fcot_coin_flip_zscot"],
        limit=10,
        output_path=out,
        metadata={"fcot_samples": 3, "fcot_temperature": 0.7},
    )
    return out


def test_curating_lm_eval_teacher_samples(oracle_teacher_run, tmp_path):
    result = curate("coin_flip", str(oracle_teacher_run))
    known = [row for row in load_rows("coin_flip", "train")[:10] if oracle_knows(row)]
    assert result.stats.questions == 10 and result.stats.rationales == 30
    assert result.stats.correct == 3 * len(known)
    assert result.stats.duplicates == 2 * len(known)  # the oracle's 3 samples are identical
    assert [row["sample_index"] for row in result.rows] == [row["sample_index"] for row in known]
    assert result.rows[0]["completion"] == f" {ORACLE_RATIONALE.strip()} --> {known[0]['answer']}"
    assert result.teacher.samples_per_question == 3 and result.teacher.temperature == 0.7
    assert "zscot" in result.teacher.name

    out = save_dataset(result, tmp_path / "coin_flip_fcot")
    loaded = datasets.load_from_disk(str(out))["train"]
    assert loaded.column_names == ["prompt", "completion", "sample_index"] and len(loaded) == len(known)
    card = (out / "README.md").read_text()
    assert "samples per question (D) | 3" in card and "teacher temperature (T) | 0.7" in card
    assert json.loads((out / "fcot_curation.json").read_text())["stats"]["rows"] == len(known)


def test_keeping_duplicates_on_request(oracle_teacher_run):
    result = curate("coin_flip", str(oracle_teacher_run), deduplicate=False)
    assert len(result.rows) == result.stats.correct


def test_test_split_samples_are_refused(oracle_teacher_run):
    samples = next(oracle_teacher_run.rglob("samples_fcot_coin_flip_zscot_*.jsonl"))
    with pytest.raises(CurationError, match="is not from coin_flip's train split.*the test set leaks"):
        curate("coin_flip", str(samples))


def test_samples_of_another_task_are_refused(oracle_teacher_run, tmp_path):
    samples = next(oracle_teacher_run.rglob("samples_fcot_coin_flip_teacher_*.jsonl"))
    with pytest.raises(CurationError, match="no samples of fcot_multiarith_teacher"):
        curate("multiarith", str(oracle_teacher_run))
    renamed = tmp_path / samples.name.replace("coin_flip", "multiarith")
    shutil.copy(samples, renamed)
    with pytest.raises(CurationError, match="not a sample of an fcot multiarith task"):
        curate("multiarith", str(renamed))


def test_a_non_fcot_samples_file_is_refused(tmp_path):
    samples = tmp_path / "samples_fcot_multiarith_teacher_2026-01-01T00-00-00.000000.jsonl"
    line = {"doc_id": 0, "doc": {"query": "x", "label": 1}, "resps": [["a"]], "filter": "none"}
    samples.write_text(json.dumps(line) + "\n")
    with pytest.raises(CurationError, match="doc has fcot_task=None"):
        curate("multiarith", str(samples))


def test_tiny_model_samples_with_nothing_correct_write_nothing(tiny_model, tmp_path):
    run_lm_eval(
        "zscot",
        f"pretrained={tiny_model},answer_max_gen_toks=4",
        ["fcot_multiarith_teacher"],
        limit=3,
        gen_kwargs="max_gen_toks=8",
        output_path=tmp_path / "teacher",
        metadata={"fcot_samples": 2, "fcot_temperature": 1.0},
    )
    samples = next((tmp_path / "teacher").rglob("samples_fcot_multiarith_teacher_*.jsonl"))
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(lines) == 3 and all(len(line["resps"][0]) == 2 for line in lines)
    with pytest.raises(CurationError, match="none of 6 teacher rationales for 3 questions had a correct answer"):
        curate("multiarith", str(tmp_path / "teacher"))


def test_existing_output_is_not_overwritten(tmp_path):
    result = curate("coin_flip", "paper")
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for overwrite in (False, True):  # the user's folder: never replaced, --overwrite or not
        with pytest.raises(FcotError, match="holds files fcot did not write"):
            save_dataset(result, out, overwrite=overwrite)
    assert (out / "keep.txt").read_text() == "mine"
    out = tmp_path / "written"
    save_dataset(result, out)
    with pytest.raises(CurationError, match="already exists"):
        save_dataset(result, out)
    (out / "keep.txt").write_text("mine")  # the user's, in a folder fcot made
    save_dataset(result, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine" and (out / "README.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "written"]  # no staging folder left behind


def test_fcot_curate_command(tmp_path, capsys):
    from fcot_plugin.cli.fcot import main

    main(["curate", "--task", "multiarith", "--samples", "paper", "--out", str(tmp_path / "ma")])
    printed = capsys.readouterr().out
    assert "415 questions, 415 teacher rationales, 319 correct" in printed and "-> 319 rows" in printed
    assert "5 rows overlapping the test split removed" in printed
    with pytest.raises(SystemExit):
        main(["curate", "--task", "multiarith", "--samples", "paper", "--out", str(tmp_path / "ma")])
    err = capsys.readouterr().err
    assert err.startswith("fcot: error: ") and "ma already exists; choose another --out" in err
    with pytest.raises(SystemExit):
        main(["curate", "--task", "multiarith2", "--samples", "paper", "--out", str(tmp_path / "x")])
    assert "fcot: error: unknown fcot task 'multiarith2'" in capsys.readouterr().err


def test_overwrite_never_renames_over_a_user_file_of_the_same_name(tmp_path, capsys):
    """A file in --out that fcot's marker does not list stays, even where the dataset writes the same name."""
    import json

    from fcot_plugin.cli.fcot import main as fcot
    from fcot_plugin.core.folders import MARKER

    out = tmp_path / "data"
    fcot(["curate", "--task", "coin_flip", "--samples", "paper", "--out", str(out)])
    marker = json.loads((out / MARKER).read_text())
    marker["entries"] = [name for name in marker["entries"] if name != "README.md"]
    (out / MARKER).write_text(json.dumps(marker))
    (out / "README.md").write_text("my notes")
    (out / "fcot_curation.json").unlink()  # not an fcot dataset layout now: only the marker says what is fcot's
    with pytest.raises(SystemExit):
        fcot(["curate", "--task", "coin_flip", "--samples", "paper", "--out", str(out), "--overwrite"])
    assert "README.md, not written by fcot" in capsys.readouterr().err
    assert (out / "README.md").read_text() == "my notes"
