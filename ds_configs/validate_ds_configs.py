"""Check the launch configs without launching training: the DeepSpeed JSONs with DeepSpeed's own parser, the
accelerate YAMLs with accelerate's.

The JSONs hold "auto" values that only the Hugging Face Trainer can fill, so each config is first resolved the way
the Trainer resolves it (``HfTrainerDeepSpeedConfig.trainer_config_process`` / ``trainer_config_finalize`` with a
real ``TrainingArguments``), then handed to ``deepspeed.runtime.config.DeepSpeedConfig`` (world size 1, since no
process group is initialised). A YAML is read by accelerate's ``load_config_from_file`` and checked for what
accelerate accepts without complaint but then runs wrongly: a DeepSpeed config over several machines without
``deepspeed_multinode_launcher: standard`` (accelerate hands such a run to DeepSpeed's pdsh launcher; without a
hostfile machine 0 trains alone and exits 0), ``mixed_precision`` next to ``deepspeed_config_file`` (refused at
launch), a JSON that is not there, or processes that do not divide evenly over the machines. Runs on CPU in a few
seconds:

    python ds_configs/validate_ds_configs.py                      # every shipped JSON and YAML
    python ds_configs/validate_ds_configs.py path/to/other.json   # any other (.yaml: an accelerate config)
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


def validate_accelerate_config(path: str | Path) -> dict:
    """Read an accelerate YAML with accelerate's own loader and check what accelerate would only get wrong at run time.

    Returns a summary (``distributed_type``, ``num_machines``, ``num_processes``, ``multinode_launcher``,
    ``deepspeed_config_file``); raises ``ValueError`` naming every problem found.
    """
    import yaml
    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(path)
    raw = yaml.safe_load(path.read_text()) or {}
    config = load_config_from_file(str(path))
    deepspeed = getattr(config, "deepspeed_config", None) or {}
    distributed = str(getattr(config.distributed_type, "value", config.distributed_type))
    summary = {
        "distributed_type": distributed,
        "num_machines": int(config.num_machines),
        "num_processes": int(config.num_processes),
        "multinode_launcher": deepspeed.get("deepspeed_multinode_launcher"),
        "deepspeed_config_file": deepspeed.get("deepspeed_config_file"),
    }
    problems = []
    if summary["num_processes"] % summary["num_machines"]:
        problems.append(
            f"num_processes {summary['num_processes']} is not a multiple of num_machines {summary['num_machines']}"
        )
    if distributed == "DEEPSPEED":
        if summary["num_machines"] > 1 and summary["multinode_launcher"] != "standard":
            problems.append(
                f"num_machines {summary['num_machines']} with deepspeed_multinode_launcher "
                f"{summary['multinode_launcher']!r}: add `deepspeed_multinode_launcher: standard` under "
                f"deepspeed_config, or accelerate hands the run to DeepSpeed's pdsh launcher and, without a "
                f"hostfile, machine 0 trains alone"
            )
        ds_file = summary["deepspeed_config_file"]
        if ds_file:
            if "mixed_precision" in raw:
                problems.append(
                    "mixed_precision next to deepspeed_config_file: accelerate refuses it at launch; "
                    'the JSON\'s bf16/fp16 "auto" follow the training arguments'
                )
            # accelerate passes the path on as written; the training processes open it from the repository root
            if not any(candidate.is_file() for candidate in (Path(ds_file), HERE.parent / ds_file)):
                problems.append(f"deepspeed_config_file {ds_file} not found (relative to the repository root)")
    if problems:
        raise ValueError("; ".join(problems))
    return summary


def default_paths() -> list[str]:
    """Every shipped JSON and accelerate YAML of this folder."""
    return [str(path) for path in sorted(HERE.glob("*.json")) + sorted(HERE.glob("*.yaml"))]


def main(paths: list[str]) -> int:
    paths = paths or default_paths()
    failed = 0
    for path in paths:
        try:
            if Path(path).suffix in (".yaml", ".yml"):
                found = validate_accelerate_config(path)
                launcher = f" launcher={found['multinode_launcher']}" if found["num_machines"] > 1 else ""
                print(
                    f"OK   {path}: {found['distributed_type']} machines={found['num_machines']} "
                    f"processes={found['num_processes']}{launcher}"
                    + (f" json={found['deepspeed_config_file']}" if found["deepspeed_config_file"] else "")
                )
                continue
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
