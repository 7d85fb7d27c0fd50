#!/usr/bin/env python
"""Check the Markdown documentation against the repository.

    python scripts/check_docs.py          # one line per problem, exit 1 if there is any

Checked files: README.md, CONTRIBUTING.md, docs/*.md and the READMEs of benchmarks/, ds_configs/, recipes/ and
task_configs/.

1. README.md is at most 300 lines.
2. Every repository path named inside backticks (inline code or fenced blocks) exists, as does every dotted
   ``fcot_plugin.x.y`` module (and the first attribute named after a module, e.g. ``fcot_plugin.tasks.answers
   .extract_answer``); relative Markdown links and their ``#anchors`` resolve.
3. Every ``--flag`` given to a command in a code line exists: ``fcot <command>`` (its argument dataclass),
   ``python benchmarks/<name>.py`` (the script's ``HfArgumentParser`` dataclass), ``recipes/sft.py`` /
   ``-m fcot_plugin.train`` (the recipe's ``TrlParser``), ``accelerate launch`` (accelerate's own parser) and
   ``fcot-eval`` / ``lm_eval`` (lm-eval's own parser).

The functions take the text and its repository-relative name, so tests can plant problems in copies.
"""

from __future__ import annotations

import ast
import functools
import glob
import importlib
import importlib.util
import re
import shlex
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 300
DOC_PATTERNS = ("README.md", "CONTRIBUTING.md", "docs/*.md", "*/README.md")
PATH_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".md", ".jsonl", ".sh", ".cff", ".toml", ".txt", ".png", ".csv")

# Paths the docs describe as outputs of a run, never files of the repository: the run folder's layout
# (fcot_plugin/pipeline/run_folder.py), what training, curation and lm-eval write, and git-ignored folders.
OUTPUT_FOLDERS = {"runs", "outputs", "build", "dist", ".previous", ".whl", ".gguf", "__pycache__"}
OUTPUT_FILES = {
    "config.json",
    "train.yaml",
    "report.md",
    "report.json",
    "report.html",
    "accuracy.png",
    "epochs.png",
    "baseline.json",
    "curation_decisions.jsonl",
    "accounting.json",
    "validation.json",
    "validation.jsonl",
    "fcot_curation.json",
    "dataset_dict.json",
    "trainer_state.json",
    "adapter_config.json",
    "generation_config.json",
    "train.json",
    "fcot_task.json",
}

# The package maps this import name onto a top-level folder (pyproject.toml's package-dir).
MODULE_ALIASES = {"fcot_plugin.task_configs": "task_configs"}

SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


# ---------------------------------------------------------------------------------------------- reading Markdown


@dataclass(frozen=True)
class Code:
    """A piece of code in a doc: an inline span or one logical line of a fenced block."""

    line: int
    text: str
    block: bool
    language: str = ""


FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
INLINE = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def read_code(text: str) -> list[Code]:
    """The doc's code: inline spans, and the lines of fenced blocks (backslash continuations joined).

    Inline spans are read per paragraph, since a span may wrap onto the next line; table rows are paragraphs
    of their own.
    """
    code: list[Code] = []
    prose: list[tuple[int, str]] = []
    fence: str | None = None
    language = ""
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence, language = opening.group(1), opening.group(2).lower()
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                if pending:
                    code.append(Code(pending[0], pending[1], True, language))
                fence, pending = None, None
                continue
            start, joined = pending if pending else (number, "")
            joined = f"{joined} {line.strip()}" if joined else line
            if joined.rstrip().endswith("\\"):
                pending = (start, joined.rstrip()[:-1])
            else:
                code.append(Code(start, joined, True, language))
                pending = None
            continue
        prose.append((number, line))
    for first, paragraph in _paragraphs(prose):
        for match in INLINE.finditer(paragraph):
            line = first + paragraph.count("\n", 0, match.start())
            code.append(Code(line, " ".join(match.group(2).split()), False))
    return code


def _paragraphs(prose: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each run of consecutive prose lines; a table row or heading stands alone."""
    block: list[tuple[int, str]] = []
    for number, line in prose:
        alone = line.lstrip().startswith(("|", "#"))
        if block and (not line.strip() or alone or number != block[-1][0] + 1):
            yield block[0][0], "\n".join(text for _, text in block)
            block = []
        if alone:
            yield number, line
        elif line.strip():
            block.append((number, line))
    if block:
        yield block[0][0], "\n".join(text for _, text in block)


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors for the doc's headings, plus explicit ``<a id="...">`` anchors."""
    anchors: set[str] = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
    seen: dict[str, int] = {}
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_fence or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).replace("`", "").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


# ------------------------------------------------------------------------------------------------ rule 1: length


def check_readme_length(root: Path = ROOT) -> list[Problem]:
    lines = len((root / "README.md").read_text(encoding="utf-8").splitlines())
    if lines > README_MAX_LINES:
        return [Problem("README.md", lines, f"README.md has {lines} lines, more than {README_MAX_LINES}")]
    return []


# ------------------------------------------------------------------------------------------------- rule 2: paths


def _expand_braces(token: str) -> list[str]:
    """``a.{json,md}`` -> ``a.json``, ``a.md`` (shell brace expansion); other braces are left alone."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", token)
    if not match:
        return [token]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in _expand_braces(token[: match.start()] + choice + token[match.end() :])
    ]


def _split_outside_braces(token: str, separators: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in token:
        depth += char == "{"
        depth -= char == "}"
        if char in separators and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def path_candidates(code: str) -> Iterator[str]:
    """Tokens of a piece of code that look like repository paths (a '/' or a known file suffix)."""
    for word in re.sub(r"<[^<>]*>", "<>", code).split():  # a placeholder may hold spaces: <earlier table>
        if "://" in word or "<" in word or word.startswith(("$", "~", "-", "@")) or word.endswith(":"):
            continue  # a URL, a placeholder, a variable, an option, or a label such as `sft.py: error: ...`
        for token in _split_outside_braces(word, "=,:\"'()[];&|`"):
            token = token.rstrip(".")
            if not token or token.startswith(("/", "~", "$")) or "$" in token or "..." in token:
                continue
            if "/" in token or token.endswith(PATH_SUFFIXES):
                yield token


def _top_level(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()


def missing_path(token: str, doc: str, root: Path) -> str | None:
    """Why ``token`` (named in the doc ``doc``) is not a path of the repository, or None if it is fine or skipped.

    Checked: a token whose first component is an entry of the repository root or of the doc's folder, and a bare
    file name with a known suffix. Skipped: run outputs, placeholders, Hub ids (``org/name``), outside paths.
    """
    first = token.split("/")[0]
    if first in OUTPUT_FOLDERS or token in OUTPUT_FILES or token.startswith("."):
        return None
    if re.search(r"\{[^{},]*\}", token):  # a placeholder such as {task}
        return None
    folders = [root, (root / doc).parent]
    known = set().union(*(_top_level(folder) for folder in folders))
    if "/" in token and first not in known:
        return None  # a Hub id (org/name), a run-folder name (student/), a path outside the repository
    for expanded in _expand_braces(token):
        path = expanded.rstrip("/")
        if any(c in path for c in "*?["):
            if not any(glob.glob(str(folder / path)) for folder in folders):
                return f"`{expanded}` matches no file"
        elif not any((folder / path).exists() or glob.glob(f"{folder / path}.*") for folder in folders):
            return f"`{expanded}` does not exist"
    return None


DOTTED = re.compile(r"(?<![\w./])fcot_plugin(?:\.[A-Za-z_]\w*)+")


def _top_level_names(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            for child in ast.walk(node):
                if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                    names.add(child.name)
                elif isinstance(child, (ast.Import, ast.ImportFrom)):
                    names.update((alias.asname or alias.name).split(".")[0] for alias in child.names)
                elif isinstance(child, ast.Assign):
                    names.update(n.id for t in child.targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def missing_module(dotted: str, root: Path, imported: Iterable[str] = ()) -> str | None:
    """Why ``fcot_plugin.a.b[.attr]`` (and the names ``imported`` from it) does not resolve, or None."""
    parts = dotted.split(".")
    for alias, folder in MODULE_ALIASES.items():
        if dotted == alias or dotted.startswith(alias + "."):
            return None if (root / folder).is_dir() else f"`{dotted}`: no folder {folder}/"
    path = root / parts[0]
    for index, part in enumerate(parts[1:], 1):
        if (path / part).is_dir():
            path = path / part
            continue
        if (path / f"{part}.py").is_file():
            module = path / f"{part}.py"
            rest = parts[index + 1 :]
            wanted = [rest[0]] if rest else list(imported)
            missing = [name for name in wanted if name not in _top_level_names(module)]
            if missing:
                return f"`{'.'.join(parts[: index + 1])}` defines no {', '.join(missing)}"
            return None
        init = path / "__init__.py"
        if init.is_file() and part in _top_level_names(init):
            return None
        return f"module `{'.'.join(parts[: index + 1])}` does not exist"
    init = path / "__init__.py"
    missing = [name for name in imported if not (path / name).is_dir() and not (path / f"{name}.py").is_file()]
    if missing and init.is_file():
        missing = [name for name in missing if name not in _top_level_names(init)]
    if missing:
        return f"package `{dotted}` has no {', '.join(missing)}"
    return None


FROM_IMPORT = re.compile(r"^\s*from\s+(fcot_plugin(?:\.\w+)*)\s+import\s+\(?([\w\s,]+)\)?")


def check_links(text: str, doc: str, root: Path) -> list[Problem]:
    problems = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (root / doc).parent / file if file else root / doc
            if not path.exists():
                problems.append(Problem(doc, number, f"link target `{file}` does not exist"))
            elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path.read_text(encoding="utf-8")):
                problems.append(Problem(doc, number, f"link anchor `#{anchor}` is not a heading of {file or doc}"))
    return problems


def check_paths(text: str, doc: str, root: Path = ROOT) -> list[Problem]:
    """Rule 2: paths and modules named in code, and relative links."""
    problems = []
    for piece in read_code(text):
        for token in path_candidates(piece.text):
            reason = missing_path(token, doc, root)
            if reason:
                problems.append(Problem(doc, piece.line, reason))
        imported = FROM_IMPORT.match(piece.text)
        if imported:
            names = [name.strip() for name in imported.group(2).split(",") if name.strip()]
            reason = missing_module(imported.group(1), root, names)
            if reason:
                problems.append(Problem(doc, piece.line, reason))
        for dotted in DOTTED.findall(piece.text):
            if imported and dotted == imported.group(1):
                continue
            reason = missing_module(dotted, root)
            if reason:
                problems.append(Problem(doc, piece.line, reason))
    return problems + check_links(text, doc, root)


# ------------------------------------------------------------------------------------------------- rule 3: flags


class FlagError(Exception):
    """A command's options could not be read (not a command, or its code does not import); reported as a problem."""


def _options(parser) -> set[str]:
    return {option for option in parser._option_string_actions if option.startswith("--")}


def _dataclass_options(classes: tuple[type, ...]) -> set[str]:
    """The options fcot's ``settings_parser`` (an ``HfArgumentParser``) makes of ``classes``."""
    from fcot_plugin.core.command_line import settings_parser

    return _options(settings_parser(classes))


def _argument_classes(script: Path) -> list[str]:
    """The dataclasses a script parses: ``run_script(prog, Arguments, ...)`` or ``HfArgumentParser(Arguments)``."""
    names = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        function = getattr(node.func, "id", getattr(node.func, "attr", None))
        position = {"run_script": 1, "HfArgumentParser": 0}.get(function)
        if position is None or len(node.args) <= position:
            continue
        argument = node.args[position]
        candidates = argument.elts if isinstance(argument, (ast.Tuple, ast.List)) else [argument]
        names += [candidate.id for candidate in candidates if isinstance(candidate, ast.Name)]
    return list(dict.fromkeys(names))


class Commands:
    """The options each documented command accepts, read from the code that parses them (built on first use)."""

    COMMON = {"--help", "--debug"}  # every fcot command and script: --debug shows an error's traceback

    def __init__(self, root: Path = ROOT):
        self.root = root

    @functools.cache  # noqa: B019 - one instance per run
    def fcot(self, command: str) -> set[str]:
        """``fcot <command>`` parses ``<Command>Arguments`` of :mod:`fcot_plugin.pipeline.settings`."""
        from fcot_plugin.cli.fcot import COMMANDS
        from fcot_plugin.pipeline import settings

        if command not in COMMANDS:
            raise FlagError(f"`fcot {command}` is not an fcot command ({', '.join(COMMANDS)})")
        return _dataclass_options((getattr(settings, f"{command.capitalize()}Arguments"),)) | self.COMMON

    @functools.cache  # noqa: B019
    def benchmark(self, script: str) -> set[str]:
        path = self.root / script
        if not path.is_file():
            raise FlagError(f"`{script}` does not exist")
        class_names = _argument_classes(path)
        if not class_names:
            raise FlagError(f"`{script}` passes no dataclass to run_script or HfArgumentParser")
        spec = importlib.util.spec_from_file_location(f"_check_docs_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up by name
        try:
            spec.loader.exec_module(module)
        except Exception as error:  # noqa: BLE001 - reported as a problem: its options cannot be read
            raise FlagError(f"{script} does not import: {type(error).__name__}: {error}") from error
        return _dataclass_options(tuple(getattr(module, name) for name in class_names)) | self.COMMON

    @functools.cache  # noqa: B019
    def sft(self) -> set[str]:
        from fcot_plugin.training.sft import make_parser

        parser = make_parser()  # the recipe's own parser (TrlParser, fcot's field metadata kept from argparse)
        return _options(parser) | self.COMMON | {"--config"}  # TrlParser reads --config itself

    @functools.cache  # noqa: B019
    def accelerate(self) -> tuple[set[str], set[str]]:
        """accelerate launch's options, and those of them that take no value."""
        from accelerate.commands.launch import launch_command_parser

        parser = launch_command_parser()
        switches = {o for o, action in parser._option_string_actions.items() if action.nargs == 0}
        return set(parser._option_string_actions), switches

    @functools.cache  # noqa: B019
    def lm_eval(self, subcommand: str) -> set[str]:
        from lm_eval._cli.harness import HarnessCLI

        choices = HarnessCLI()._subparsers.choices
        if subcommand not in choices:
            raise FlagError(f"`lm_eval {subcommand}` is not an lm-eval command ({', '.join(choices)})")
        return _options(choices[subcommand])  # the subcommand's own ArgumentParser


def shell_words(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ``&&``, ``||``, ``;``, ``|``; comments dropped)."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes in a fragment: split on spaces
        words = line.split("#")[0].split()
    commands, current = [], []
    for word in words:
        if word and set(word) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    return [command for command in [*commands, current] if command]


def _flags(words: Iterable[str]) -> Iterator[str]:
    for word in words:
        word = word.strip("[]().,`")
        if word.startswith("--") and len(word) > 2 and "<" not in word and "..." not in word:
            yield word.split("=", 1)[0]


def command_flags(words: list[str], commands: Commands) -> Iterator[tuple[str, str, set[str]]]:
    """(command name, flag, allowed flags) for every option of ``words``; nothing for commands not checked."""
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):  # VAR=value before the command
        words = words[1:]
    if not words:
        return
    program = Path(words[0]).name
    if program == "fcot" and len(words) > 1 and re.fullmatch(r"[a-z][\w-]*", words[1]):
        allowed = commands.fcot(words[1])
        yield from ((f"fcot {words[1]}", flag, allowed) for flag in _flags(words[2:]))
    elif program in ("fcot-eval", "lm_eval", "lm-eval"):
        subcommand = words[1] if len(words) > 1 and not words[1].startswith("-") else "run"
        rest = words[2:] if subcommand != "run" or words[1:2] == ["run"] else words[1:]
        allowed = commands.lm_eval(subcommand) | ({"--debug"} if program == "fcot-eval" else set())
        yield from ((program, flag, allowed) for flag in _flags(rest))
    elif program in ("python", "python3") and len(words) > 1:
        yield from _script_flags(words[1:], commands)
    elif program == "accelerate" and words[1:2] == ["launch"]:
        allowed, switches = commands.accelerate()
        rest = words[2:]
        index = 0
        while index < len(rest) and rest[index].startswith("-"):
            flag = rest[index].split("=", 1)[0]
            if flag.startswith("--"):
                yield ("accelerate launch", flag, allowed)
            takes_value = flag in allowed and flag not in switches and "=" not in rest[index]
            index += 2 if takes_value else 1
        module = "-m" in rest[:index] or "--module" in rest[:index]
        yield from _script_flags((["-m"] if module else []) + rest[index:], commands)


def _script_flags(words: list[str], commands: Commands) -> Iterator[tuple[str, str, set[str]]]:
    if not words:
        return
    if words[0] == "-m" and len(words) > 1:
        if words[1] in ("fcot_plugin.training.sft", "fcot_plugin.train"):
            yield from ((f"python -m {words[1]}", flag, commands.sft()) for flag in _flags(words[2:]))
        return
    script = words[0].lstrip("./")
    if script == "recipes/sft.py":
        yield from (("recipes/sft.py", flag, commands.sft()) for flag in _flags(words[1:]))
    elif re.fullmatch(r"benchmarks/[\w-]+\.py", script):
        allowed = commands.benchmark(script)
        yield from ((script, flag, allowed) for flag in _flags(words[1:]))


def check_flags(text: str, doc: str, commands: Commands | None = None) -> list[Problem]:
    """Rule 3: every option given to a documented command exists."""
    commands = commands or Commands()
    problems = []
    for piece in read_code(text):
        if piece.block and piece.language not in SHELL_LANGUAGES:
            continue
        for words in shell_words(piece.text):
            try:
                for name, flag, allowed in command_flags(words, commands):
                    if flag not in allowed:
                        problems.append(Problem(doc, piece.line, f"`{name}` has no option {flag}"))
            except FlagError as error:
                problems.append(Problem(doc, piece.line, f"cannot check options: {error}"))
    return problems


# ------------------------------------------------------------------------------------------------------ driver


def doc_files(root: Path = ROOT) -> list[str]:
    found = {path.relative_to(root).as_posix() for pattern in DOC_PATTERNS for path in root.glob(pattern)}
    return sorted(found)


def check_doc(text: str, doc: str, root: Path = ROOT, commands: Commands | None = None) -> list[Problem]:
    return sorted(check_paths(text, doc, root) + check_flags(text, doc, commands))


def check(root: Path = ROOT) -> list[Problem]:
    """Every problem of the repository's docs."""
    commands = Commands(root)
    problems = check_readme_length(root)
    for doc in doc_files(root):
        problems += check_doc((root / doc).read_text(encoding="utf-8"), doc, root, commands)
    return problems


def main() -> int:
    sys.path.insert(0, str(ROOT))
    problems = check()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
