"""The fast SFT path trains the same model as TRL's: same loss on the same batch, padded or padding-free; and
precision follows the hardware (bf16 only where it is native), with one clear line for a bad value."""

from __future__ import annotations

import logging
from functools import partial

import datasets
import pytest
import torch
from transformers import AutoTokenizer
from trl import SFTTrainer

from fcot_plugin.core import precision as precision_module
from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.precision import Hardware, resolve_precision
from fcot_plugin.training.causal import make_trainer_class
from fcot_plugin.training.config import FcotSFTConfig

AVX2_ONLY = Hardware("cpu", "AMD EPYC (test)", ("avx2", "fma"), 2)
AMX = Hardware("cpu", "Intel Xeon (test)", ("avx2", "avx512f", "avx512_bf16", "amx_bf16"), 2)
AVX512_WITHOUT_BF16 = Hardware("cpu", "Intel Xeon (test)", ("avx2", "avx512f", "avx512bw"), 2)


@pytest.fixture
def machine(monkeypatch):
    """Pretend to run on a given CPU."""

    def use(hardware: Hardware) -> None:
        monkeypatch.setattr(precision_module, "detect_hardware", lambda device="cpu": hardware)

    return use


@pytest.mark.parametrize(("hardware", "expected"), [(AVX2_ONLY, "fp32"), (AVX512_WITHOUT_BF16, "fp32"), (AMX, "bf16")])
def test_auto_precision_is_bf16_only_where_native(machine, hardware, expected):
    machine(hardware)
    assert resolve_precision("auto").name == expected
    assert FcotSFTConfig(output_dir="unused", use_cpu=True).bf16 is (expected == "bf16")


def test_explicit_bf16_on_emulating_hardware_runs_with_one_warning(machine, caplog):
    machine(AVX2_ONLY)
    with caplog.at_level(logging.WARNING, logger="fcot_plugin.core.precision"):
        assert resolve_precision("bf16").name == "bf16"
    (warning,) = caplog.records
    assert "no native bf16" in warning.getMessage() and "\n" not in warning.getMessage()


def test_precision_record_names_the_features_it_was_based_on(machine):
    machine(AMX)
    record = resolve_precision("auto").as_dict()
    assert record["precision"] == "bf16"
    assert record["hardware"]["native_bf16"] is True
    assert "amx_bf16" in record["hardware"]["cpu_flags"]


@pytest.mark.parametrize("value", ["fp8", "half", ""])
def test_unknown_precision_is_one_line_naming_the_choices(value):
    with pytest.raises(FcotError, match=r"unknown precision .*choose one of: auto, bf16, fp32") as error:
        resolve_precision(value)
    assert "\n" not in str(error.value)


def test_contradicting_precision_flags_are_refused(machine):
    machine(AMX)
    with pytest.raises(ValueError, match="contradicts"):
        FcotSFTConfig(output_dir="unused", use_cpu=True, precision="fp32", bf16=True)
    assert FcotSFTConfig(output_dir="unused", use_cpu=True, precision="fp32").bf16 is False


def test_small_students_train_without_gradient_checkpointing():
    config = FcotSFTConfig(output_dir="unused", use_cpu=True)
    assert config.activation_checkpointing is False and config.gradient_checkpointing is False


@pytest.fixture(scope="module")
def rows() -> datasets.Dataset:
    from fcot_plugin.curation.dataset import curate

    result = curate("multiarith", "paper")
    return datasets.Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["completion"]} for r in result.rows[:8]]
    )


def batch_loss(tiny_model, rows, tmp_path, compact: bool, **config) -> float:
    """The loss of the first training batch, through fcot's loss or TRL's own."""
    args = FcotSFTConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        precision="fp32",
        report_to="none",
        per_device_train_batch_size=8,
        seed=0,
        **config,
    )
    trainer = make_trainer_class()(
        model=str(tiny_model),
        args=args,
        train_dataset=rows,
        processing_class=AutoTokenizer.from_pretrained(tiny_model),
    )
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    compute = (
        trainer.compute_loss if compact else lambda model, inputs: SFTTrainer.compute_loss(trainer, model, inputs)
    )
    assert trainer._fcot_compact_loss(trainer.model, False), "the fast loss must apply on CPU"
    return compute(trainer.model, dict(batch)).item()


def test_fast_loss_equals_trl_loss_padded_and_padding_free(tiny_model, rows, tmp_path):
    trl_padded = batch_loss(tiny_model, rows, tmp_path, compact=False, padding_free=False)
    fast_padded = batch_loss(tiny_model, rows, tmp_path, compact=True, padding_free=False)
    fast_padding_free = batch_loss(tiny_model, rows, tmp_path, compact=True, padding_free=True, max_length=None)
    trl_padding_free = batch_loss(tiny_model, rows, tmp_path, compact=False, padding_free=True, max_length=None)
    assert fast_padded == pytest.approx(trl_padded, rel=1e-4)
    assert fast_padding_free == pytest.approx(trl_padding_free, rel=1e-4)
    assert fast_padding_free == pytest.approx(fast_padded, rel=1e-4)  # padding-free trains the same model


def test_fast_loss_gradients_match_trl(tiny_model, rows, tmp_path):
    """Not just the value: the same gradient reaches the weights."""
    grads = []
    for compact in (False, True):
        args = FcotSFTConfig(
            output_dir=str(tmp_path),
            use_cpu=True,
            precision="fp32",
            report_to="none",
            per_device_train_batch_size=8,
            seed=0,
        )
        trainer = make_trainer_class()(
            model=str(tiny_model),
            args=args,
            train_dataset=rows,
            processing_class=AutoTokenizer.from_pretrained(tiny_model),
        )
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        trainer.model.train()
        compute = trainer.compute_loss if compact else partial(SFTTrainer.compute_loss, trainer)
        loss = compute(trainer.model, dict(batch))
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)


def test_large_logits_fall_back_to_trls_chunked_head(tiny_model, rows, tmp_path, monkeypatch):
    """Where the trained positions' logits would not fit comfortably, TRL's memory-saving head is used."""
    import fcot_plugin.training.causal as train_module

    args = FcotSFTConfig(output_dir=str(tmp_path), use_cpu=True, precision="fp32", report_to="none")
    trainer = make_trainer_class()(
        model=str(tiny_model),
        args=args,
        train_dataset=rows,
        processing_class=AutoTokenizer.from_pretrained(tiny_model),
    )
    labels = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))["labels"]
    assert trainer._fcot_compact_loss(trainer.model, False, labels)
    monkeypatch.setattr(train_module, "COMPACT_LOSS_MAX_LOGITS", 1)
    assert not trainer._fcot_compact_loss(trainer.model, False, labels)


def attention(**config) -> str | None:
    from fcot_plugin.training.causal import choose_attention

    args = FcotSFTConfig(output_dir="unused", use_cpu=True, **config)
    choose_attention(args)
    assert args.padding_free is False  # padded batches: padding-free was measured no faster
    return args.model_init_kwargs.get("attn_implementation")


def test_bf16_cpu_training_uses_eager_attention_and_fp32_keeps_sdpa():
    assert attention(precision="bf16") == "eager"
    assert attention(precision="fp32") is None  # transformers' default, sdpa


def test_an_explicit_attention_kernel_is_kept():
    assert attention(precision="bf16", model_init_kwargs={"attn_implementation": "sdpa"}) == "sdpa"


def epoch_padding(tiny_model, rows, tmp_path, **config) -> float:
    """The fraction of padding in one epoch of the trainer's own batches."""
    args = FcotSFTConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        precision="fp32",
        report_to="none",
        per_device_train_batch_size=8,
        seed=0,
        **config,
    )
    trainer = make_trainer_class()(
        model=str(tiny_model),
        args=args,
        train_dataset=rows,
        processing_class=AutoTokenizer.from_pretrained(tiny_model),
    )
    masks = [batch["attention_mask"] for batch in trainer.get_train_dataloader()]
    assert sum(int(mask.shape[0]) for mask in masks) == len(rows)  # every row once: nothing dropped
    return 1 - sum(int(mask.sum()) for mask in masks) / sum(mask.numel() for mask in masks)


def test_default_batches_group_rows_of_similar_length(tiny_model, tmp_path):
    """Grouping by length is the default and computes less padding than random batches of the same rows."""
    from fcot_plugin.curation.dataset import curate

    varied = datasets.Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["completion"]} for r in curate("multiarith", "paper").rows[:128]]
    )
    assert FcotSFTConfig(output_dir="unused", use_cpu=True).train_sampling_strategy == "group_by_length"
    grouped = epoch_padding(tiny_model, varied, tmp_path)
    shuffled = epoch_padding(tiny_model, varied, tmp_path, train_sampling_strategy="random")
    assert grouped < 0.6 * shuffled, (grouped, shuffled)
