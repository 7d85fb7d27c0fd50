"""Where the fcot lm-eval task YAMLs are installed, and how tasks are named: the one place ``fcot_<task>`` is spelled.

``python -m fcot_plugin.task_dir`` prints the folder, for ``lm_eval --include_path``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# variant -> (template in task_configs/_templates, split it scores)
VARIANTS: dict[str, tuple[str, str]] = {
    "student": ("student_template_yaml", "test"),
    "vanilla": ("vanilla_template_yaml", "test"),
    "zeroshot": ("zeroshot_template_yaml", "test"),
    "zscot": ("zscot_template_yaml", "test"),
    "teacher": ("teacher_template_yaml", "train"),
    "teacher_diverse": ("teacher_diverse_template_yaml", "train"),
    "fewshot_cot": ("fewshot_cot_template_yaml", "test"),
    "sc": ("sc_template_yaml", "test"),
}


def task_name(task: str, variant: str = "student") -> str:
    """``fcot_<task>`` for the student task, ``fcot_<task>_<variant>`` for the others."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown fcot task variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    return f"fcot_{task}" if variant == "student" else f"fcot_{task}_{variant}"


def student_task(task: str, dataset_format: str = "fcot") -> str:
    """The lm-eval task that scores a student trained on ``dataset_format`` rows: ``fcot_<task>`` for Fine-tune-CoT,
    ``fcot_<task>_vanilla`` for answer-only (vanilla) fine-tuning, whose completions have no ``-->``."""
    return task_name(task, "student" if dataset_format == "fcot" else "vanilla")


def variant_tasks(variant: str) -> list[str]:
    """The datasets a variant exists for: all 12, but Few-shot-CoT only where the authors released exemplars."""
    from fcot_plugin.tasks.prompts import few_shot_cot_prompts
    from fcot_plugin.tasks.registry import TASKS

    if variant == "fewshot_cot":
        return [task for task in TASKS if task in few_shot_cot_prompts()]
    return list(TASKS)


def group_name(variant: str) -> str:
    """The group over the datasets of one variant (see :func:`variant_tasks`), e.g. ``fcot_zscot``."""
    return f"fcot_{variant}"


def task_config_dir() -> Path:
    """The installed ``task_configs`` folder (inside the package, editable installs included)."""
    return Path(str(resources.files("fcot_plugin.task_configs")))
