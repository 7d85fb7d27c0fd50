#!/usr/bin/env bash
# SFT throughput on a GPU machine that has torch but neither fcot's pins nor the Hub.
#
# Carried from the developer machine (see benchmarks/README.md): .whl/ (transformers 5.24, trl 1.16, datasets,
# tokenizers, liger-kernel wheels) and .gpu_model/ (SmolLM2-135M-Instruct's config and tokenizer: throughput
# and MFU depend on the architecture, not the weights, so the model is initialised at random there).
# Runs benchmarks/sft_throughput.py (a: plain Trainer fp32 padded, b: fcot's default path) and a few levers.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-benchmarks/results}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python3 -c "import pyarrow, torch, transformers, trl; print('pyarrow', pyarrow.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 - <<'PY'
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
config = AutoConfig.from_pretrained(".gpu_model")
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
model.save_pretrained("/tmp/smollm2-135m-random")
AutoTokenizer.from_pretrained(".gpu_model").save_pretrained("/tmp/smollm2-135m-random")
PY
run() { python3 benchmarks/sft_throughput.py --student /tmp/smollm2-135m-random --steps 30 --warmup_steps 5 "$@"; }
run --output "$out/sft_throughput_gpu"
run --output "$out/sft_throughput_gpu_padding_free" --fcot_overrides '{"padding_free": true, "max_length": null}'
run --output "$out/sft_throughput_gpu_liger" --fcot_overrides '{"use_liger_kernel": true}'
run --output "$out/sft_throughput_gpu_batch32" --batch_size 32
