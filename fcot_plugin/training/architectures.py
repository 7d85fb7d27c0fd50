"""Which kind of student a checkpoint is: decoder-only (TRL's ``SFTTrainer``) or encoder-decoder (``Seq2SeqTrainer``).

Read from the checkpoint's ``config.json`` through transformers' own auto-class registries, so every architecture
transformers knows is classified the way ``AutoModelForCausalLM`` / ``AutoModelForSeq2SeqLM`` (and lm-eval's
``hf`` model, which checks the seq2seq registry first) would load it.
"""

from __future__ import annotations

from typing import Any, Literal

from fcot_plugin.core.errors import FcotError

StudentKind = Literal["causal", "seq2seq"]


def load_config(model_name_or_path: str, trust_remote_code: bool = False, revision: str | None = None) -> Any:
    """The model's ``PretrainedConfig``; a missing folder or unreachable Hub id is one line."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code, revision=revision)
    except OSError as error:  # missing folder, unknown Hub id, no network
        raise FcotError(
            f"cannot load the student {model_name_or_path!r}: {error}. Pass a local model folder or a Hub model id "
            f"(the Hub needs network access)"
        ) from None


def kind_of(config: Any) -> StudentKind | None:
    """``seq2seq`` for encoder-decoder LMs (T5, Flan-T5, BART), ``causal`` for decoder-only LMs, else ``None``."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    architectures = config.architectures or []
    if config.model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES and (
        not architectures or any(arch.endswith("ForConditionalGeneration") for arch in architectures)
    ):
        return "seq2seq"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (
        not architectures or any(arch.endswith(("ForCausalLM", "LMHeadModel")) for arch in architectures)
    ):
        return "causal"
    return None


def student_kind(model_name_or_path: str, trust_remote_code: bool = False, revision: str | None = None) -> StudentKind:
    """The kind of a student checkpoint; anything fcot cannot train as a generator is one line."""
    config = load_config(model_name_or_path, trust_remote_code, revision)
    kind = kind_of(config)
    if kind is None:
        architectures = ", ".join(config.architectures or []) or "no architecture"
        raise FcotError(
            f"{model_name_or_path} is a {config.model_type} model ({architectures}), not a causal LM or an "
            f"encoder-decoder LM: fcot trains decoder-only students (e.g. GPT-2, Llama, SmolLM) and "
            f"encoder-decoder students (e.g. T5, Flan-T5)"
        )
    return kind


def architecture_label(model_name_or_path: str, trust_remote_code: bool = False) -> str:
    """What a model card says about the student, e.g. ``T5ForConditionalGeneration (encoder-decoder)``."""
    config = load_config(model_name_or_path, trust_remote_code)
    kind = kind_of(config)
    shape = {"seq2seq": "encoder-decoder", "causal": "decoder-only"}.get(kind or "", config.model_type)
    return f"{', '.join(config.architectures or [config.model_type])} ({shape})"
