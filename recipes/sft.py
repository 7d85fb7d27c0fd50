"""Fine-tune-CoT student SFT with TRL, under any accelerate/DeepSpeed config in ds_configs/.

```bash
# one process (CPU or one GPU); the task and its curated data are overrides, as is any YAML key
python recipes/sft.py --config recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml \
    --task multiarith --dataset_name data/multiarith_fcot --output_dir runs/smollm2-fcot-multiarith

# 1 node of 8 GPUs, DeepSpeed ZeRO-2 (ds_configs/zero2.yaml starts 8 processes)
accelerate launch --config_file ds_configs/zero2.yaml recipes/sft.py \
    --config recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml --task multiarith --dataset_name data/multiarith_fcot
```

The work happens in ``fcot_plugin.train.main`` (also runnable as ``python -m fcot_plugin.train``).
"""

from fcot_plugin.train import make_parser

if __name__ == "__main__":
    from fcot_plugin.train import main

    script_args, training_args, model_args = make_parser().parse_args_and_config()
    main(script_args, training_args, model_args)
