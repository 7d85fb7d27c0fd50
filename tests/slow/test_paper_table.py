"""benchmarks/paper_table.py end to end: both students trained, self-consistency scored, the table resumed (its unit
tests: tests/benchmarks/test_paper_table.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from helpers.paths import REPO
from helpers.scripts import load_script

from fcot_plugin.pipeline.run_folder import RunFolder


@pytest.mark.slow
def test_the_table_trains_both_students_scores_self_consistency_and_resumes(tiny_model, tmp_path, caplog):
    table = load_script(REPO / "benchmarks" / "paper_table.py")
    runs, output = tmp_path / "runs", tmp_path / "out" / "pt"
    args = table.TableArguments(
        tasks="coin_flip",
        student=str(tiny_model),
        epochs=2,
        validation_size=3,
        train_limit=12,
        eval_limit=4,
        sc_samples=2,
        sc_limit=2,
        eval_batch_size=4,
        learning_rate=1e-3,
        seed=7,
        runs_dir=str(runs),
        output=str(output),
    )
    result = table.main(args)["tasks"]["coin_flip"]
    assert result["fcot"]["learning_rate"] == result["vanilla"]["learning_rate"] == 1e-3  # passed to both runs
    assert result["fcot"]["seed"] == result["vanilla"]["seed"] == 7

    # the vanilla student: answer-only rows, trained and scored (validation and test) by fcot_coin_flip_vanilla
    vanilla = RunFolder(runs / "coin_flip" / "vanilla")
    from datasets import load_from_disk

    completions = load_from_disk(str(vanilla.data_dir))["train"]["completion"]
    assert completions and not any("-->" in completion for completion in completions)
    assert "dataset_format: vanilla" in vanilla.train_config.read_text()
    evaluate = vanilla.results("evaluate")
    assert evaluate["student"]["task"] == "fcot_coin_flip_vanilla" and "zeroshot" not in evaluate
    (validation_file,) = vanilla.validation_dir(1).rglob("results_*.json")
    assert "fcot_coin_flip_vanilla" in json.loads(validation_file.read_text())["results"]
    assert "vanilla answer-only" in vanilla.report_md.read_text()

    # self-consistency of the validation-chosen Fine-tune-CoT student: k=2 samples on the first 2 questions
    assert result["sc"]["task"] == "fcot_coin_flip_sc" and result["sc"]["n"] == 2
    (sc_file,) = (runs / "coin_flip" / "sc").rglob("results_*.json")
    assert json.loads(sc_file.read_text())["configs"]["fcot_coin_flip_sc"]["repeats"] == 2

    # the table: every row from the run folders, the paper's rows beside them, the goal line and the machine
    fcot = RunFolder(runs / "coin_flip" / "fcot").results("evaluate")
    ours = result["ours"]
    assert ours["fcot_chosen"]["accuracy"] == 100 * fcot["student"]["accuracy"]
    assert ours["fcot_last"]["accuracy"] == 100 * fcot["student_last"]["accuracy"]
    assert ours["zeroshot"]["accuracy"] == 100 * fcot["zeroshot"]["accuracy"]
    assert ours["vanilla"]["accuracy"] == 100 * evaluate["student"]["accuracy"]
    assert result["paper"]["GPT-2 Medium (355M)"] == 83.33 and result["paper"]["Flan-T5-Large (700M)"] is not None
    saved = json.loads(output.with_suffix(".json").read_text())
    assert saved["goal"]["count"] == int(ours["fcot_chosen"]["accuracy"] > 83.33)
    markdown = output.with_suffix(".md").read_text()
    assert "| model | Coin Flip |" in markdown and "| paper: GPT-2 Medium (355M) Fine-tune-CoT | 83.33 |" in markdown
    assert "self-consistency (k=2, T=0.7)" in markdown and "on the first 2 test questions" in markdown
    assert "**Goal**" in markdown and f"Machine: {saved['machine']}" in markdown and "4 / 2" in markdown
    assert "| training batches | length-grouped |" in markdown  # read back from the run folder's train.yaml
    assert "Epochs per student: 2. Learning rate: 1e-3. Training seed: 7. AdamW, batch 8;" in markdown

    # a second run reuses everything: both run folders and the self-consistency score
    caplog.clear()
    caplog.set_level("INFO")
    assert table.main(args)["tasks"]["coin_flip"]["ours"] == ours
    assert "self-consistency done in an earlier run" in caplog.text
    assert caplog.text.count("done in an earlier run with the same settings and inputs, skipped") == 10  # 2 x 5

    # the table from the run folders alone: nothing trained or scored; a task never run is left out, a missing
    # vanilla run shows as -
    caplog.clear()
    only = dataclasses.replace(args, tasks="coin_flip,last_letter_concatenation", from_run_folders=True)
    assert table.main(only)["tasks"]["coin_flip"]["ours"] == ours
    assert "last_letter_concatenation: no finished Fine-tune-CoT run" in caplog.text
    assert "run folder:" not in caplog.text and "self-consistency" not in caplog.text
    shutil.rmtree(runs / "coin_flip" / "vanilla")
    rebuilt = table.main(only)["tasks"]
    assert set(rebuilt) == {"coin_flip"} and rebuilt["coin_flip"]["ours"] == {**ours, "vanilla": None}
    assert "vanilla (answer-only), validation-chosen epoch | – |" in output.with_suffix(".md").read_text()

    # ... and names the machine the run folders record (a GPU's runs rebuilt on a laptop name the GPU)
    config_file = runs / "coin_flip" / "fcot" / "config.json"
    config = json.loads(config_file.read_text())
    config["hardware"].update(device="cuda", gpu_name="NVIDIA H200", gpu_bf16=True)
    config_file.write_text(json.dumps(config))
    machine = table.main(only)["machine"]
    assert machine.startswith("NVIDIA H200 (bf16 native); host CPU ") and "flags: " in machine
    assert f"Machine: {machine}." in output.with_suffix(".md").read_text()
