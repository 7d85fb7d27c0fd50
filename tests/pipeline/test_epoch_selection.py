"""fcot distill --epochs N: the epoch is chosen on a held-out slice of the train split, never on the test split."""

from __future__ import annotations

import pytest

from fcot_plugin.core.errors import FcotError
from fcot_plugin.pipeline import validation
from fcot_plugin.pipeline.settings import DistillArguments


def test_one_epoch_holds_nothing_out_unless_asked():
    one = DistillArguments(task="coin_flip", epochs=1, device="cpu")
    assert one.validation_size == 0
    assert DistillArguments(task="coin_flip", epochs=5, device="cpu").validation_size == 0.1
    assert DistillArguments(task="coin_flip", epochs=5, validation_size=0, device="cpu").validation_size == 0
    with pytest.raises(ValueError, match="validation_size must be a fraction below 1 or a whole number"):
        DistillArguments(task="coin_flip", epochs=5, validation_size=2.5, device="cpu")
    with pytest.raises(ValueError, match="holds out every one of the 8 train questions"):
        DistillArguments(task="coin_flip", epochs=5, validation_size=8, train_limit=8, device="cpu")


def test_the_slice_is_seeded_capped_and_leaves_questions_to_train_on():
    assert validation.carve(range(100), 0.1, 0) == validation.carve(range(100), 0.1, 0)
    assert validation.carve(range(100), 0.1, 0) != validation.carve(range(100), 0.1, 1)
    assert len(validation.carve(range(5000), 0.1, 0)) == validation.VALIDATION_CAP
    assert len(validation.carve(range(5000), 300, 0)) == 300  # an explicit count is taken as given
    assert validation.carve(range(10), 0, 0) == []
    with pytest.raises(FcotError, match="holds out 10 of the 10 train questions and leaves none"):
        validation.carve(range(10), 10, 0)


def test_ties_go_to_the_earliest_epoch():
    curve = [{"epoch": 1, "accuracy": 0.2}, {"epoch": 2, "accuracy": 0.5}, {"epoch": 3, "accuracy": 0.5}]
    assert validation.choose(curve)["epoch"] == 2


def test_install_copies_weights_only(tmp_path):
    checkpoint, student = tmp_path / "checkpoint-6", tmp_path / "student"
    checkpoint.mkdir()
    student.mkdir()
    for name in ("model.safetensors", "config.json", "optimizer.pt"):
        (checkpoint / name).write_text(f"epoch-2 {name}")
    (student / "config.json").write_text("final config")
    assert validation.install(checkpoint, student) == ["model.safetensors"]
    assert (student / "model.safetensors").read_text() == "epoch-2 model.safetensors"
    assert (student / "config.json").read_text() == "final config" and not (student / "optimizer.pt").exists()


def test_resume_state_goes_but_weights_stay(tmp_path):
    from fcot_plugin.training.checkpoints import drop_resume_state

    gathered, zero3 = tmp_path / "checkpoint-4", tmp_path / "checkpoint-8"
    for checkpoint in (gathered, zero3):
        (checkpoint / "global_step4").mkdir(parents=True)
        (checkpoint / "global_step4" / "zero_pp_rank_0_mp_rank_00_optim_states.pt").write_text("adam")
        for name in ("optimizer.pt", "scheduler.pt", "trainer_state.json"):
            (checkpoint / name).write_text(name)
    (gathered / "model.safetensors").write_text("weights")
    assert drop_resume_state(gathered) == ["optimizer.pt", "scheduler.pt", "global_step4"]
    assert {path.name for path in gathered.iterdir()} == {"model.safetensors", "trainer_state.json"}
    # ZeRO-3 without gathered weights: global_step*/ holds the only copy of the weights, so it stays
    assert drop_resume_state(zero3) == ["optimizer.pt", "scheduler.pt"]
    assert (zero3 / "global_step4").is_dir()
