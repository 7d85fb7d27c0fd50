"""The package's layers, checked: no import cycle, no import from a layer above, light ``!function`` targets.

Every ``import`` of an ``fcot_plugin`` module counts, inside functions too. Run by ``make quality`` and by
``tests/test_architecture.py``; exits non-zero with one line per problem.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fcot_plugin"
#: Bottom to top: a module imports only from its own layer and the layers before it.
LAYERS = ("core", "tasks", "serving", "teacher", "harness", "hub", "training", "curation", "pipeline", "cli")
#: Top-level modules: entry points above every layer.
ENTRY_MODULES = ("fcot_plugin.task_dir", "fcot_plugin.train")
#: What the task YAMLs' ``!function`` targets may import: lm-eval loads them for every fcot task.
TASK_FUNCTIONS = "fcot_plugin.harness.task_functions"
TASK_FUNCTIONS_MAY_IMPORT = ("fcot_plugin.core.", "fcot_plugin.tasks.")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The fcot modules ``path`` imports anywhere (module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from package import module` imports the module; `from module import name`, the module
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if not name.startswith("fcot_plugin"):
                continue
            if name in known and name != "fcot_plugin":
                found.add(name)
    if path.resolve().is_relative_to(ROOT):
        found.discard(module_name(path.resolve()))
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) for name, path in known.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    if module in ENTRY_MODULES:
        return len(LAYERS)
    if len(parts) >= 2 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of modules that import each other (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def problems() -> list[str]:
    graph = import_graph()
    found = [f"import cycle: {' <-> '.join(group)}" for group in cycles(graph)]
    for module, targets in sorted(graph.items()):
        here = layer(module)
        if here is None:
            if module not in ("fcot_plugin",):
                found.append(f"{module}: not in a layer package ({', '.join(LAYERS)}); move it into one")
            continue
        for target in sorted(targets):
            there = layer(target)
            if there is not None and there > here:
                found.append(f"{module} imports {target}: a layer above it ({LAYERS[here]} < {LAYERS[there]})")
    for target in sorted(graph.get(TASK_FUNCTIONS, ())):
        if not target.startswith(TASK_FUNCTIONS_MAY_IMPORT):
            found.append(f"{TASK_FUNCTIONS} imports {target}: the !function targets import only core and tasks")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(f"check_architecture: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
