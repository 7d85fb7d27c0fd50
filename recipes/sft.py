"""Fine-tune-CoT student SFT with TRL, under any accelerate/DeepSpeed config in ds_configs/.

```bash
# one process (CPU or one GPU); the task and its curated data are overrides, as is any YAML key
python recipes/sft.py --config recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml \
    --task multiarith --dataset_name data/multiarith_fcot --output_dir runs/smollm2-fcot-multiarith

# 1 node of 8 GPUs, DeepSpeed ZeRO-2 (ds_configs/zero2.yaml starts 8 processes)
accelerate launch --config_file ds_configs/zero2.yaml recipes/sft.py \
    --config recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml --task multiarith --dataset_name data/multiarith_fcot
```

The command line is ``fcot_plugin.training.sft.cli``, which ``python -m fcot_plugin.train`` runs too.
A bad option or input ends with one line, ``sft.py: error: ...``; ``--debug`` (or ``FCOT_DEBUG=1``) shows the
traceback.
"""

from fcot_plugin.training.sft import cli, make_parser

__all__ = ["main", "make_parser"]


def main(argv: list[str] | None = None) -> None:
    cli(argv, prog="sft.py")


if __name__ == "__main__":
    main()
