"""lm-eval task YAMLs of fcot, installed as ``fcot_plugin.task_configs`` (see pyproject.toml)."""
