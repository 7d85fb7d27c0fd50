"""Check the DeepSpeed JSON configs with DeepSpeed's own parser, without launching training.

The JSONs hold "auto" values that only the Hugging Face Trainer can fill, so each config is first resolved the way
the Trainer resolves it (``HfTrainerDeepSpeedConfig.trainer_config_process`` / ``trainer_config_finalize`` with a
real ``TrainingArguments``), then handed to ``deepspeed.runtime.config.DeepSpeedConfig`` (world size 1, since no
process group is initialised). Runs on CPU in a couple of seconds:

    python ds_configs/validate_ds_configs.py                      # both shipped configs
    python ds_configs/validate_ds_configs.py path/to/other.json   # any other
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent


def validate_ds_config(config: str | Path | dict, hidden_size: int = 576, num_training_steps: int = 100, **args):
    """Resolve the "auto" values like the Trainer does and parse the result with DeepSpeed; return the parsed config.

    ``args`` are extra ``TrainingArguments`` (e.g. ``bf16=True``, ``gradient_accumulation_steps=4``). Raises on
    an invalid config (DeepSpeed's pydantic / sanity checks) or an "auto" left unresolved.
    """
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

    if not isinstance(config, dict):
        config = json.loads(Path(config).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        # use_cpu=True keeps world_size at 1 and lets bf16=True be checked on a CPU-only machine
        training_args = TrainingArguments(output_dir=tmp, report_to="none", use_cpu=True, **args)
        # HfTrainerDeepSpeedConfig registers itself globally (is_deepspeed_zero3_enabled() turns True while it
        # lives, which makes from_pretrained use zero.Init): always unset it again.
        hf_config = HfTrainerDeepSpeedConfig(copy.deepcopy(config))
        try:
            hf_config.trainer_config_process(training_args)
            model = SimpleNamespace(config=SimpleNamespace(hidden_size=hidden_size))
            hf_config.trainer_config_finalize(training_args, model, num_training_steps)
            resolved = hf_config.config
        finally:
            unset_hf_deepspeed_config()
    left = _auto_keys(resolved)
    if left:
        raise ValueError(f'"auto" values the Trainer cannot fill: {left}')
    return DeepSpeedConfig(copy.deepcopy(resolved), mpu=None)


def _auto_keys(node, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [key for k, v in node.items() for key in _auto_keys(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if node == "auto" else []


def main(paths: list[str]) -> int:
    paths = paths or [str(HERE / "zero2.json"), str(HERE / "zero3.json")]
    failed = 0
    for path in paths:
        try:
            ds = validate_ds_config(path)
            zero = ds.zero_config
            print(
                f"OK   {path}: stage={ds.zero_optimization_stage} bf16={ds.bfloat16_config.enabled} "
                f"fp16={ds.float16_config.enabled} train_batch_size={ds.train_batch_size} "
                f"gather_16bit_on_save={zero.gather_16bit_weights_on_model_save}"
            )
        except Exception as exc:  # report every config, then fail
            failed += 1
            print(f"FAIL {path}: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
