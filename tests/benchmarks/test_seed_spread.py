"""benchmarks/seed_spread.py: Fine-tune-CoT runs that differ only in the training seed, side by side."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.scripts import load_script

from fcot_plugin.core.errors import FcotError

PUBLISHED = json.loads((REPO / "benchmarks" / "results" / "paper_table.json").read_text())


def table_at(seed: int, chosen: float, last: float, tmp_path: Path, **fcot) -> str:
    """A one-task table as paper_table.py writes it: the published SVAMP row with another seed and scores."""
    row = copy.deepcopy(PUBLISHED["tasks"]["svamp"])
    row["ours"]["fcot_chosen"]["accuracy"], row["ours"]["fcot_last"]["accuracy"] = chosen, last
    row["fcot"].update(seed=seed, **fcot)
    path = tmp_path / f"svamp_seed{seed}.json"
    path.write_text(json.dumps({"config": PUBLISHED["config"], "tasks": {"svamp": row}}))
    return str(path)


def test_runs_of_several_seeds_are_listed_with_their_range_and_the_seeds_that_beat_the_paper(tmp_path):
    spread = load_script(REPO / "benchmarks" / "seed_spread.py")
    tables = [table_at(44, 8.0, 6.0, tmp_path), table_at(42, 3.67, 7.0, tmp_path), table_at(43, 5.0, 9.0, tmp_path)]
    result = spread.main(spread.SpreadArguments(tables=tables, output=str(tmp_path / "spread")))

    runs = result["runs"]["svamp"]
    assert [run["seed"] for run in runs] == [42, 43, 44]  # sorted
    summary = result["summary"]["svamp"]
    assert summary["chosen"] == {"min": 3.67, "mean": pytest.approx((3.67 + 5.0 + 8.0) / 3), "max": 8.0}
    assert summary["paper"] == 7.33 and summary["chosen_beats_paper"] == 1  # only seed 44's 8.00
    curve = PUBLISHED["tasks"]["svamp"]["fcot"]["validation_curve"]
    best = max(curve, key=lambda point: point["accuracy"])
    assert tuple(runs[0]["best_validation"]) == (round(best["accuracy"] * best["n"]), best["n"])  # correct, held out

    markdown = (tmp_path / "spread.md").read_text()
    assert "## SVAMP" in markdown
    assert "| 44 | " in markdown and "| 8.00 | 6.00 | " in markdown and "4 epochs, lr 3e-4, " in markdown
    assert "Validation-chosen: 3.67–8.00 (mean 5.56); last epoch: 6.00–9.00 (mean 7.33)." in markdown
    assert "beaten by the validation-chosen student at 1 of 3 seeds." in markdown
    assert json.loads((tmp_path / "spread.json").read_text())["summary"]["svamp"]["seeds"] == 3


def test_runs_that_differ_in_more_than_the_seed_or_repeat_one_are_refused(tmp_path):
    spread = load_script(REPO / "benchmarks" / "seed_spread.py")
    longer = table_at(43, 5.0, 5.0, tmp_path, epochs=8.0)
    with pytest.raises(FcotError, match="svamp: the runs differ in more than the seed"):
        spread.load_runs([table_at(42, 3.67, 7.0, tmp_path), longer])
    narrower = table_at(43, 5.0, 5.0, tmp_path, validation_size=0.1)  # another validation slice: other epochs chosen
    with pytest.raises(FcotError, match=r"svamp: the runs differ in more than the seed.*validation_size.: 0.1"):
        spread.load_runs([table_at(42, 3.67, 7.0, tmp_path), narrower])
    assert len(spread.load_runs([table_at(42, 3.67, 7.0, tmp_path), table_at(43, 5.0, 5.0, tmp_path)])["svamp"]) == 2
    with pytest.raises(FcotError, match="svamp: seed 42 appears twice; pass one table per seed"):
        spread.load_runs([table_at(42, 3.67, 7.0, tmp_path), table_at(42, 3.67, 7.0, tmp_path / "..")])
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(FcotError, match="list.json: not a table paper_table.py wrote"):
        spread.load_runs([str(tmp_path / "list.json")])
