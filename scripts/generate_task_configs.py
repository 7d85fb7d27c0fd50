"""Write the per-task and group YAMLs of ``task_configs/`` from ``fcot_plugin.tasks.registry.TASKS``.

The templates in ``task_configs/_templates/`` hold everything; each generated file only names the task,
its data and its template. Run after adding a task or a variant; ``--check`` (used by the tests) fails
when the committed files differ from what this script would write.

    python scripts/generate_task_configs.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fcot_plugin.tasks.names import VARIANTS, group_name, task_name, variant_tasks
from fcot_plugin.tasks.task_folder import group_yaml, task_yaml

ROOT = Path(__file__).resolve().parent.parent / "task_configs"


def expected_files() -> dict[Path, str]:
    files = {}
    for variant in VARIANTS:
        tasks = variant_tasks(variant)
        for task in tasks:
            files[ROOT / task / f"{task_name(task, variant)}.yaml"] = task_yaml(task, variant)
        files[ROOT / "_groups" / f"{group_name(variant)}.yaml"] = group_yaml(
            group_name(variant), [task_name(task, variant) for task in tasks]
        )
    files[ROOT / "_groups" / "fcot_all.yaml"] = group_yaml("fcot_all", [group_name(variant) for variant in VARIANTS])
    return files


def main(check: bool) -> int:
    stale = []
    for path, text in expected_files().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if check and stale:
        print("task_configs/ is out of date; run: python scripts/generate_task_configs.py", file=sys.stderr)
        for path in stale:
            print(f"  {path.relative_to(ROOT.parent)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed YAMLs are out of date")
    sys.exit(main(check=parser.parse_args().check))
