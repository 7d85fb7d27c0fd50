"""Fine-tune-CoT student SFT with TRL, under any accelerate/DeepSpeed config in ds_configs/.

```bash
# 1 node of 8 GPUs, DeepSpeed ZeRO-2
accelerate launch --config_file ds_configs/zero2.yaml recipes/sft.py \
    --config recipes/SmolLM2-135M-Instruct/multiarith.yaml

# one process (CPU or one GPU); any YAML key can be overridden on the command line
python recipes/sft.py --config recipes/SmolLM2-135M-Instruct/multiarith.yaml \
    --num_train_epochs 3 --output_dir runs/smollm2-multiarith
```

The work happens in ``fcot_plugin.train.main`` (also runnable as ``python -m fcot_plugin.train``).
"""

from fcot_plugin.train import make_parser

if __name__ == "__main__":
    from fcot_plugin.train import main

    script_args, training_args, model_args = make_parser().parse_args_and_config()
    main(script_args, training_args, model_args)
