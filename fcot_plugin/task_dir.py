"""``python -m fcot_plugin.task_dir`` prints where the fcot task YAMLs are installed (``lm_eval --include_path``)."""

from fcot_plugin.tasks.names import task_config_dir

if __name__ == "__main__":
    print(task_config_dir())
