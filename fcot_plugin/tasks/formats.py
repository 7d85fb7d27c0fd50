"""Names that settings and stages share: the dataset formats and the paper's released teacher source.

Low in the package (it imports only the task registry and names), so the settings can validate arguments without
importing a stage, and no stage has to import another for a constant.
"""

from __future__ import annotations

from pathlib import Path

from fcot_plugin.core.errors import FcotError
from fcot_plugin.tasks.names import task_name
from fcot_plugin.tasks.registry import data_dir

FORMATS = ("fcot", "vanilla")  # rationale --> answer (Fine-tune-CoT), or answer only (vanilla fine-tuning)
PAPER_SOURCE = "paper"  # the teacher "source" naming the paper's released rationales
PAPER_TEACHER = "text-davinci-002"


def check_format(dataset_format: str) -> None:
    if dataset_format not in FORMATS:
        raise FcotError(f"unknown dataset format {dataset_format!r}; choose one of: {', '.join(FORMATS)}")


def check_paper_rationales(task: str, error: type[Exception] = FcotError) -> Path:
    """The shipped file of the paper's rationales for ``task``; ``error`` for the 3 tasks the paper has none for."""
    path = data_dir() / "teacher_rationales" / PAPER_TEACHER / f"{task}.jsonl"
    if not path.is_file():
        shipped = sorted(p.stem for p in path.parent.glob("*.jsonl"))
        raise error(
            f"the paper released no teacher rationales for {task!r} (shipped for: {', '.join(shipped)}); "
            f"generate them with: lm_eval --model zscot --model_args base=... "
            f"--tasks {task_name(task, 'teacher')} --log_samples"
        )
    return path
