"""``fcot curate``: samples files, data files, output folders and Hub ids it cannot use are one line, and nothing is
left behind; the corrected command then writes the dataset."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from helpers.one_line import one_line_error

from fcot_plugin.cli.fcot import main as fcot


def curate_fails(capsys, argv: list[str], expected: str) -> str:
    return one_line_error(capsys, fcot, ["curate", "--task", "coin_flip", *argv], "fcot", expected)


def test_curate_samples_file_that_is_not_json(capsys, tmp_path):
    samples = tmp_path / "samples_fcot_coin_flip_teacher_2026-01-01T00-00-00.000000.jsonl"
    samples.write_text("this is not json\n")
    curate_fails(capsys, ["--samples", str(samples), "--out", str(tmp_path / "data")], f"{samples}:1: not JSON")
    assert not (tmp_path / "data").exists()


def test_curate_folder_with_two_teacher_runs(capsys, tmp_path):
    for stamp in ("2026-01-01T00-00-00.000000", "2026-01-02T00-00-00.000000"):
        (tmp_path / "out" / "model").mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / "model" / f"samples_fcot_coin_flip_teacher_{stamp}.jsonl").write_text("")
    line = curate_fails(
        capsys, ["--samples", str(tmp_path / "out"), "--out", str(tmp_path / "data")], "holds 2 teacher runs ("
    )
    assert "2026-01-01" in line and "2026-01-02" in line and "curation reads exactly one" in line


@pytest.mark.parametrize(
    ("argv", "fixed", "expected"),
    [
        (
            ["--samples", "/no/such/samples"],
            ["--samples", "paper"],
            "/no/such/samples does not exist; pass an lm-eval output folder",
        ),
        (
            ["--samples", "paper", "--dataset_format", "chat"],
            ["--samples", "paper", "--dataset_format", "vanilla"],
            "unknown dataset format 'chat'; choose one of: fcot, vanilla",
        ),
        (
            ["--samples", "paper", "--push_to_hub", "true"],
            ["--samples", "paper"],
            "--push_to_hub needs --hub_dataset_id, the repo to push to (e.g. --hub_dataset_id my-org/coin_flip-fcot)",
        ),
        (
            ["--samples", "paper", "--hub_dataset_id", "me/d"],
            ["--samples", "paper"],
            "--hub_dataset_id names where to push, but --push_to_hub is off; add --push_to_hub",
        ),
    ],
)
def test_curate_bad_arguments(capsys, tmp_path, argv, fixed, expected):
    curate_fails(capsys, [*argv, "--out", str(tmp_path / "data")], expected)
    assert not (tmp_path / "data").exists()
    fcot(["curate", "--task", "coin_flip", *fixed, "--out", str(tmp_path / "data")])  # the corrected command runs
    assert (tmp_path / "data" / "dataset_dict.json").is_file()


def test_curate_existing_out_and_out_under_a_file(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    curate_fails(capsys, ["--samples", "paper", "--out", str(tmp_path / "data")], "already exists; choose another")
    (tmp_path / "file").write_text("x")
    curate_fails(capsys, ["--samples", "paper", "--out", str(tmp_path / "file" / "data")], "is a file")


def paper_samples(tmp_path: Path, name: str, split: str = "train", questions: int = 3) -> Path:
    """A samples file as lm-eval writes it, from the paper's rationales (``split`` picks the questions)."""
    from fcot_plugin.tasks.registry import load_rows

    lines = []
    for doc_id, row in enumerate(load_rows("coin_flip", split)[:questions]):
        doc = {
            "fcot_task": "coin_flip",
            "sample_index": row["sample_index"],
            "question": row["question"],
            "answer": row["answer"],
        }
        response = f" The coin is flipped.\nTherefore, the answer is {row['answer'].lower()}."
        lines.append(json.dumps({"doc_id": doc_id, "doc": doc, "resps": [[response]], "filter": "fcot"}))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_samples_file_is_judged_by_what_it_holds(capsys, tmp_path):
    out = tmp_path / "data"
    renamed = paper_samples(tmp_path, "my_teacher_run.jsonl")  # any name: its content is train-split teacher output
    fcot(["curate", "--task", "coin_flip", "--samples", str(renamed), "--out", str(out)])
    assert (out / "dataset_dict.json").is_file()
    capsys.readouterr()
    test_split = paper_samples(tmp_path, "samples_fcot_coin_flip_teacher_2026-01-01T00-00-00.000000.jsonl", "test")
    one_line_error(
        capsys,
        fcot,
        ["curate", "--task", "coin_flip", "--samples", str(test_split), "--out", str(tmp_path / "leak")],
        "fcot",
        "is not from coin_flip's train split",
    )
    assert not (tmp_path / "leak").exists()


def test_a_samples_file_that_is_not_utf8(capsys, tmp_path):
    samples = paper_samples(tmp_path, "samples.jsonl")
    good = samples.read_bytes()
    samples.write_bytes(b"\xff\xfe" + good)
    out = tmp_path / "data"
    argv = ["curate", "--task", "coin_flip", "--samples", str(samples), "--out", str(out)]
    one_line_error(capsys, fcot, argv, "fcot", "is not UTF-8 text (byte 0); pass the samples_*.jsonl file")
    assert not out.exists()
    samples.write_bytes(good)
    fcot(argv)
    assert (out / "dataset_dict.json").is_file()


def test_a_data_file_that_is_not_utf8(tmp_path):
    from fcot_plugin.tasks.registry import DatasetError, read_jsonl

    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(DatasetError, match="is not UTF-8 text \\(byte 17\\); save it as UTF-8 JSON lines"):
        read_jsonl(path)
    path.write_text('{"question": "café", "answer": "1"}\n', encoding="utf-8")
    assert read_jsonl(path)[0]["question"] == "café"


def test_curate_push_to_a_bad_repo_id_leaves_nothing_and_the_corrected_command_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "data"
    argv = ["curate", "--task", "coin_flip", "--samples", "paper", "--out", str(out)]
    push = ["--push_to_hub", "true", "--hub_dataset_id", "user/coin flip"]
    one_line_error(capsys, fcot, [*argv, *push], "fcot", "is not a valid Hub repo id")
    assert not out.exists()
    fcot(argv)
    assert (out / "dataset_dict.json").is_file()


def test_curate_on_a_full_disk_leaves_nothing(capsys, tmp_path, monkeypatch):

    import datasets

    def no_space(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", no_space)
    curate_fails(capsys, ["--samples", "paper", "--out", str(tmp_path / "data")], "the disk is full writing")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy
