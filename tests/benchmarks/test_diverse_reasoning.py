"""benchmarks/diverse_reasoning.py and the mixed teachers it trains on (``fcot distill --add_paper_rationales``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.oracle import oracle_knows
from helpers.paths import REPO
from helpers.scripts import load_script

from fcot_plugin.core.errors import FcotError
from fcot_plugin.curation.dataset import curate
from fcot_plugin.curation.responses import paper_responses
from fcot_plugin.harness.runner import run_lm_eval
from fcot_plugin.pipeline.settings import DistillArguments
from fcot_plugin.tasks.answers import extract_answer, is_correct
from fcot_plugin.tasks.registry import load_rows
from fcot_plugin.teacher.cache import ResponseCache, copy_entries

# ---------------------------------------------------------------------- mixed teachers in curation


@pytest.fixture(scope="module")
def oracle_samples(tmp_path_factory) -> Path:
    """Real lm-eval samples of the oracle teacher through zscot: 10 coin-flip questions, 2 samples each."""
    out = tmp_path_factory.mktemp("teacher")
    run_lm_eval(
        "zscot",
        "base=fcot-test-oracle",
        ["fcot_coin_flip_teacher"],
        limit=10,
        output_path=out,
        metadata={"fcot_samples": 2, "fcot_temperature": 0.7},
    )
    (samples,) = out.rglob("samples_fcot_coin_flip_teacher_*.jsonl")
    return samples


def test_mixed_curation_merges_the_papers_rationales_on_the_same_questions(oracle_samples, tmp_path):
    train = load_rows("coin_flip", "train")[:10]
    held_out = [train[0]["sample_index"], train[1]["sample_index"]]
    paper = {item.sample_index: item for item in paper_responses("coin_flip")}
    # one of the oracle's samples is exactly the paper's rationale for its question: kept once, as the paper's
    lines = [json.loads(line) for line in oracle_samples.read_text().splitlines()]
    copied = lines[2]["doc"]["sample_index"]
    lines[2]["resps"][0][0] = paper[copied].response
    samples = tmp_path / oracle_samples.name
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines))

    result = curate("coin_flip", str(samples), question_limit=10, held_out=held_out, add_paper=True)
    trained = [row for row in train if row["sample_index"] not in held_out]
    paper_correct = [
        row
        for row in trained
        if is_correct("coin_flip", extract_answer("coin_flip", paper[row["sample_index"]].response), row["answer"])
    ]
    oracle_correct = [row for row in trained if oracle_knows(row)]
    stats = result.stats
    assert stats.questions == 8 and stats.held_out == 2
    assert stats.rationales == 8 * 2 + 8 and stats.paper_rationales == 8  # the paper's: one per trained question
    assert stats.paper_rows == len(paper_correct)
    assert stats.rows == len(paper_correct) + len(oracle_correct)
    # the oracle's two samples of a question are identical, so one is a duplicate; on the copied question the
    # oracle sample left stands alone, and the copy duplicates the paper's rationale where that is correct
    paper_right, oracle_right = ({row["sample_index"] for row in rows} for rows in (paper_correct, oracle_correct))
    assert copied not in held_out
    assert stats.duplicates == len(oracle_correct) - (copied in oracle_right) + (copied in paper_right)
    assert not {row["sample_index"] for row in result.rows} & set(held_out)
    assert result.teacher.mixed_with.startswith("text-davinci-002 (paper release)")
    completions = [row["completion"] for row in result.rows]
    assert len(completions) == len(set(zip([row["sample_index"] for row in result.rows], completions, strict=True)))

    plain = curate("coin_flip", str(samples), question_limit=10, held_out=held_out)
    assert plain.stats.paper_rationales == plain.stats.paper_rows == 0 and plain.teacher.mixed_with is None


def test_add_paper_rationales_is_refused_in_one_line_where_there_is_nothing_to_mix(tmp_path):
    common = {"student": "x", "run_dir": str(tmp_path / "run"), "device": "cpu", "precision": "fp32"}
    with pytest.raises(FcotError, match=r"--teacher is 'paper' already; pass a --teacher model"):
        DistillArguments(task="coin_flip", add_paper_rationales=True, **common)
    with pytest.raises(FcotError, match=r"the paper released no rationales for 'gsm8k'; drop the flag"):
        DistillArguments(task="gsm8k", teacher="pretrained=t", add_paper_rationales=True, **common)
    with pytest.raises(FcotError, match=r"--dataset_format vanilla trains on answers only"):
        DistillArguments(
            task="coin_flip", teacher="pretrained=t", dataset_format="vanilla", add_paper_rationales=True, **common
        )
    mixed = DistillArguments(task="coin_flip", teacher="pretrained=t", add_paper_rationales=True, **common)
    assert mixed.settings()["add_paper_rationales"] is True  # recorded in config.json and the stage records


def test_a_ledger_seeds_another_and_serves_only_its_own_teacher(tmp_path):
    first = ResponseCache(tmp_path / "a.sqlite", {"base": "teacher-a"})
    key = first.key(1, "Q: x\nA: Let's think step by step.", {"temperature": 0.7}, 0)
    first.put(key, 1, " a rationale", 5, 3)
    first.close()
    assert copy_entries(tmp_path / "a.sqlite", tmp_path / "run" / "b.sqlite") == 1
    assert copy_entries(tmp_path / "a.sqlite", tmp_path / "run" / "b.sqlite") == 0  # nothing new the second time
    same, other = ResponseCache(tmp_path / "run" / "b.sqlite", {"base": "teacher-a"}), None
    try:
        assert same.get(key) == " a rationale"
    finally:
        same.close()
    other = ResponseCache(tmp_path / "run" / "b.sqlite", {"base": "teacher-b"})
    try:
        assert other.get(other.key(1, "Q: x\nA: Let's think step by step.", {"temperature": 0.7}, 0)) is None
    finally:
        other.close()


# ---------------------------------------------------------------------- the campaign's plan


def test_cells_run_in_the_stated_order_with_the_published_recipe():
    campaign = load_script(REPO / "benchmarks" / "diverse_reasoning.py")
    args = campaign.CampaignArguments(
        teacher="t", teacher_engine="transformers", tasks="date_understanding,multiarith", diverse="4,1,8"
    )
    assert [cell.name for cell in campaign.plan(args)] == [
        "date_understanding/d1",
        "date_understanding/d4",
        "date_understanding/d4-mixed",
        "multiarith/d1",
        "multiarith/d4",
        "multiarith/d4-mixed",
        "date_understanding/d8",
        "multiarith/d8",
    ]
    date_one = " ".join(campaign.command(args, campaign.Cell("date_understanding", 1)))
    # D=1 samples at the same T as D=4, so it is D=4's first sample; the recipe is the published table's Date run
    assert "--diverse 1 --teacher_temperature 0.7" in date_one
    for option in (
        "--epochs 10",
        "--validation_size 0.2",
        "--learning_rate 0.0003",
        "--seed 42",
        "--train_sampling_strategy random",
        "--baselines false",
    ):
        assert option in date_one, option
    assert "--add_paper_rationales true" in " ".join(campaign.command(args, campaign.Cell("multiarith", 4, True)))
    assert [
        cell.name
        for cell in campaign.plan(
            campaign.CampaignArguments(
                teacher="t", teacher_engine="transformers", tasks="multiarith", diverse="1,4", max_cells=2
            )
        )
    ] == ["multiarith/d1", "multiarith/d4"]
    sized = campaign.CampaignArguments(
        teacher="t",
        teacher_engine="transformers",
        tasks="date_understanding",
        diverse="1,4",
        estimate_tokens_per_second=10,
        estimate_rationale_tokens=100,
    )
    one, four, mixed = campaign.estimate(sized)  # 258 questions x (100 + 8) tokens / 10 tokens/s per new sample
    assert (one["teacher_s"], four["teacher_s"], mixed["teacher_s"]) == (2786, 8359, 0)
    assert mixed["rows"] > four["rows"] and one["cumulative_h"] < four["cumulative_h"] < mixed["cumulative_h"]
    low, high = campaign.wilson(0, 10)
    assert low == 0 and 0.27 < high < 0.28  # the Wilson interval is not empty at 0 correct
    with pytest.raises(FcotError, match="--mixed_diverse 4 is not among --diverse 1,2"):
        campaign.CampaignArguments(teacher="t", teacher_engine="transformers", diverse="1,2")
    with pytest.raises(FcotError, match="unknown --teacher_engine 'sglang'"):
        campaign.CampaignArguments(teacher="t", teacher_engine="sglang")
