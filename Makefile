.PHONY: install style quality test fast_test configs

install:  ## everything: the package, lm-eval[hf], TRL, DeepSpeed, pytest, ruff
	pip install torch==2.13.0
	pip install -e ".[dev]"

style:
	ruff format .
	ruff check --fix .

quality:
	ruff check .
	ruff format --check .
	python scripts/generate_task_configs.py --check

test:  ## the whole suite, slow end-to-end tests included (what CI runs)
	python -m pytest -q -p no:cacheprovider

fast_test:
	python -m pytest -q -m "not slow"

configs:  ## regenerate task_configs/ after editing fcot_plugin/tasks.py or the templates
	python scripts/generate_task_configs.py
