"""benchmarks/paper_table.py and the vanilla student it trains through ``fcot distill --dataset_format vanilla``."""

from __future__ import annotations

import json

import pytest
from helpers.paths import REPO
from helpers.runs import tiny_args
from helpers.scripts import load_script

from fcot_plugin.core.errors import FcotError
from fcot_plugin.pipeline.stages import stage_settings


def test_format_and_training_batches_are_fingerprinted_whatever_their_value(tiny_model, tmp_path):
    fcot = vars(tiny_args(tiny_model, tmp_path / "run"))
    vanilla = {**fcot, "dataset_format": "vanilla"}
    for stage in ("curate", "train", "evaluate", "report"):
        assert stage_settings(stage, fcot)["dataset_format"] == "fcot"
        assert stage_settings(stage, vanilla)["dataset_format"] == "vanilla"
    with pytest.raises(ValueError, match="unknown dataset format 'cot'"):
        tiny_args(tiny_model, tmp_path / "run", dataset_format="cot")
    shuffled = {**fcot, "train_sampling_strategy": "random"}
    assert stage_settings("train", fcot)["train_sampling_strategy"] == "group_by_length"
    assert stage_settings("train", shuffled)["train_sampling_strategy"] == "random"


def test_bad_table_arguments_are_one_line_each():
    table = load_script(REPO / "benchmarks" / "paper_table.py")
    with pytest.raises(FcotError, match="no teacher rationales for 'aqua'"):
        table.TableArguments(tasks="coin_flip,aqua")
    with pytest.raises(FcotError, match="unknown task 'coinflip'"):
        table.TableArguments(tasks="coinflip")
    with pytest.raises(FcotError, match="--sc_samples must be >= 1"):
        table.TableArguments(tasks="coin_flip", sc_samples=0)
    with pytest.raises(FcotError, match="--sc_temperature must be > 0"):
        table.TableArguments(tasks="coin_flip", sc_temperature=0)
    with pytest.raises(FcotError, match="unknown precision 'fp16'"):
        table.TableArguments(tasks="coin_flip", precision="fp16")
    assert table.TableArguments(tasks="coin_flip", eval_limit=7).sc_limit == 7  # SC follows --eval_limit by default


def test_merge_with_carries_rows_of_tasks_not_rerun_and_refuses_other_settings(tmp_path):
    table = load_script(REPO / "benchmarks" / "paper_table.py")
    published = json.loads((REPO / "benchmarks" / "results" / "paper_table.json").read_text())
    row = next(iter(published["tasks"].values()))  # a row exactly as the script writes it
    earlier_file = tmp_path / "earlier.json"
    longer = {**row, "fcot": {**row["fcot"], "epochs": 8.0, "learning_rate": 1e-4, "seed": 43, "validation_size": 0.2}}
    row = {**row, "machine": "an older CPU"}
    longer.update(machine="a GPU", runs_dir="runs/elsewhere")  # trained elsewhere: each row names its own
    earlier = {
        "config": {"student": "smollm2-135m", "epochs": 4.0, "sc_limit": 50},  # older: no precision key
        "machine": "an older CPU",
        "tasks": {
            "last_letter_concatenation": row,
            "coin_flip": row,
            "single_eq": row,
            "tracking_shuffled_objects": longer,
        },
    }
    earlier_file.write_text(json.dumps(earlier))
    output = tmp_path / "merged"
    args = table.TableArguments(
        tasks="coin_flip",
        epochs=4,
        sc_limit=50,
        from_run_folders=True,
        runs_dir=str(tmp_path / "runs"),
        merge_with=str(earlier_file),
        output=str(output),
    )

    merged = table.main(args)  # coin_flip has no run folder here: left out, and not carried (this run owns it)
    assert set(merged["tasks"]) == {"last_letter_concatenation", "single_eq", "tracking_shuffled_objects"}
    assert merged["tasks"]["last_letter_concatenation"]["carried_from"] == str(earlier_file)
    assert merged["tasks"]["single_eq"]["machine"] == "an older CPU"
    machines = "an older CPU (SingleEq, Last Letter Concatenation); a GPU (Tracking Shuffled Objects)"
    assert merged["machine"] == machines
    markdown = output.with_suffix(".md").read_text()
    assert f"Machine: {machines}. Run folders:" in markdown
    folders = "`runs/paper_table/<task>/{fcot,vanilla,sc}` (SingleEq, Last Letter Concatenation); `runs/elsewhere/"
    assert markdown.rstrip().endswith(
        f"Run folders: {folders}<task>/{{fcot,vanilla,sc}}` (Tracking Shuffled Objects)."
    )
    carried = f"Carried over from an earlier run with the same settings ({earlier_file}): SingleEq, Tracking "
    assert carried + "Shuffled Objects, Last Letter Concatenation." in markdown
    chosen = next(line for line in markdown.splitlines() if "Fine-tune-CoT, validation-chosen epoch" in line)
    assert chosen.endswith(f"| **{row['ours']['fcot_chosen']['accuracy']:.2f}** |")  # bold: the chosen epoch
    assert "| training batches | random | random | random |" in markdown
    # each row's own numbers win
    differ = "except (Fine-tune-CoT / vanilla where they differ): Tracking Shuffled Objects"
    assert (
        f"Epochs per student: 4, {differ} 8 / 4. Learning rate: 3e-4, {differ} 1e-4 / 3e-4. "
        f"Training seed: 42, {differ} 43 / 42. AdamW"
    ) in markdown
    assert (
        "every epoch scored on a validation slice of the train split (held out: 0.1 of the train questions, "
        f"{differ} 0.2 of the train questions / 0.1 of the train questions), the best kept"
    ) in markdown
    held = f"| validation questions (held out of the train split) | {row['fcot']['validation_curve'][0]['n']} |"
    assert held in markdown
    for row in merged["tasks"].values():  # students that chose no epoch (one epoch each, or validation_size 0)
        row["fcot"]["chosen_epoch"] = None
    assert "; nothing held out, the last epoch kept." in table.markdown(merged)
    merged["config"]["sc_limit"] = 0  # self-consistency skipped: said so, not "on not run"
    assert "kept. Self-consistency: not run (--sc_limit 0). The paper's rows" in table.markdown(merged)

    with pytest.raises(FcotError, match=r"other settings \(sc_limit 50 there, None here\)"):
        table.TableArguments(tasks="coin_flip", merge_with=str(earlier_file))
    with pytest.raises(FcotError, match="no such file"):
        table.TableArguments(tasks="coin_flip", merge_with=str(tmp_path / "nope.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(FcotError, match="not a table paper_table.py wrote"):
        table.TableArguments(tasks="coin_flip", merge_with=str(tmp_path / "list.json"))
