"""Fine-tune-CoT student SFT with TRL, under any accelerate/DeepSpeed config in ds_configs/.

```bash
# one process (CPU or one GPU); the task and its curated data are overrides, as is any YAML key
python recipes/sft.py --config recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml \
    --task multiarith --dataset_name data/multiarith_fcot --output_dir runs/smollm2-fcot-multiarith

# 1 node of 8 GPUs, DeepSpeed ZeRO-2 (ds_configs/zero2.yaml starts 8 processes)
accelerate launch --config_file ds_configs/zero2.yaml recipes/sft.py \
    --config recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml --task multiarith --dataset_name data/multiarith_fcot
```

The work happens in ``fcot_plugin.training.sft.main`` (also runnable as ``python -m fcot_plugin.train``).
A bad option or input ends with one line, ``sft.py: error: ...``; ``--debug`` (or ``FCOT_DEBUG=1``) shows the
traceback.
"""

import sys

from fcot_plugin.training.sft import make_parser


def main(argv: list[str] | None = None) -> None:
    from fcot_plugin.core.command_line import debug_requested, exit_with_one_line, parse_or_fail
    from fcot_plugin.core.secrets import guard_terminal
    from fcot_plugin.training.sft import main as train

    debug, argv = debug_requested(sys.argv[1:] if argv is None else argv)
    guard_terminal(argv)  # no token from the recipe, the command line or the environment reaches the terminal
    parser = make_parser()
    parser.prog = "sft.py"
    configs = exit_with_one_line(
        "sft.py", lambda: parse_or_fail(parser, lambda: parser.parse_args_and_config(argv)), debug
    )
    exit_with_one_line("sft.py", lambda: train(*configs), debug)


if __name__ == "__main__":
    main()
