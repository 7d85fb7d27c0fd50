"""The 12 Fine-tune-CoT datasets: answer types, shipped splits, and loading from the package, a path or the Hub.

Every split the paper used ships inside the package (``fcot_plugin/data/<task>/<split>.jsonl``) except
AQuA's train split, whose 97,467-row source is too large to ship; it is rebuilt from the Hub
(``deepmind/aqua_rat``) with the authors' verbalisation and their seed-0 10,000-row sample.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError

SPLITS = ("train", "test")
REQUIRED_FIELDS = ("question", "answer")
AQUA_HUB_ID = "deepmind/aqua_rat"
AQUA_TRAIN_ROWS = 97_467


@dataclass(frozen=True)
class TaskSpec:
    """One dataset of the paper.

    ``answer_type`` picks the cleansing rule in :mod:`fcot_plugin.tasks.answers`: ``integer`` (exact string),
    ``float`` (numeric within 1e-6), ``A-C``/``A-E``/``A-F`` (first matching letter), ``yes_no`` or
    ``letters`` (case-sensitive last-letter string). ``kojima_trigger`` is Kojima et al.'s typed answer
    trigger for the dataset, offered by ``zscot`` as an option. ``folder`` is set for a task of the user's own
    (``fcot task``): its lm-eval YAMLs, ``fcot_task.json`` and ``data/<split>.jsonl`` live there.
    """

    key: str
    title: str
    answer_type: str
    kojima_trigger: str
    folder: str | None = None


_ARABIC = "Therefore, the answer (arabic numerals) is"
_YES_NO = "Therefore, the answer (Yes or No) is"

TASKS: dict[str, TaskSpec] = {
    spec.key: spec
    for spec in (
        TaskSpec("single_eq", "SingleEq", "float", _ARABIC),
        TaskSpec("addsub", "AddSub", "float", _ARABIC),
        TaskSpec("multiarith", "MultiArith", "integer", _ARABIC),
        TaskSpec("gsm8k", "GSM8K", "integer", _ARABIC),
        TaskSpec("aqua", "AQUA-RAT", "A-E", "Therefore, among A through E, the answer is"),
        TaskSpec("svamp", "SVAMP", "float", _ARABIC),
        TaskSpec("date_understanding", "Date Understanding", "A-F", "Therefore, among A through F, the answer is"),
        TaskSpec(
            "tracking_shuffled_objects",
            "Tracking Shuffled Objects",
            "A-C",
            "Therefore, among A through C, the answer is",
        ),
        TaskSpec("last_letter_concatenation", "Last Letter Concatenation", "letters", "Therefore, the answer is"),
        TaskSpec("coin_flip", "Coin Flip", "yes_no", _YES_NO),
        TaskSpec("commonsense_qa", "CommonSenseQA", "A-E", "Therefore, among A through E, the answer is"),
        TaskSpec("strategy_qa", "StrategyQA", "yes_no", _YES_NO),
    )
}


class DatasetError(FcotError):
    """A dataset that cannot be used as it is; the message says what is wrong and how to fix it."""


#: the description of a task of the user's own, in its task folder (written by ``fcot task``)
TASK_FILE = "fcot_task.json"
_OWN_TASKS: dict[str, TaskSpec] = {}  # tasks of the user's own known to this process (see resolve_task)


def check_task(task: str | None) -> None:
    """A task key a command was given (None: not given), or one line naming the 12."""
    if task is not None and task not in TASKS and task not in _OWN_TASKS:
        raise FcotError(f"unknown fcot task {task!r}; choose one of: {', '.join(TASKS)}")


def get_task(task: str) -> TaskSpec:
    """The spec of an fcot task key; a clear error listing the valid keys otherwise."""
    spec = TASKS.get(task) or _OWN_TASKS.get(task)
    if spec is None:
        raise ValueError(f"unknown fcot task {task!r}; choose one of: {', '.join(TASKS)}")
    return spec


def register_task(spec: TaskSpec) -> TaskSpec:
    """Make a task of the user's own known to this process (its answer rule, data and YAML folder)."""
    if spec.key in TASKS:
        raise DatasetError(f"the task name {spec.key!r} is one of fcot's 12 datasets; pass another --name")
    _OWN_TASKS[spec.key] = spec
    return spec


def read_task_folder(folder: str | Path) -> dict[str, Any]:
    """The ``fcot_task.json`` of a task folder written by ``fcot task`` / ``fcot distill --dataset``."""
    path = Path(folder).expanduser() / TASK_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DatasetError(
            f"{path} cannot be read ({error}); write the folder again with: fcot task --out "
            f"{Path(folder)} --dataset ... --answer_type ..."
        ) from None


def resolve_task(task: str | None) -> str | None:
    """A task key: one of the 12, a task of the user's own already known, or a task folder (``fcot task
    --out DIR``), whose task is registered here and whose key is returned; one line naming both otherwise."""
    if task is None or task in TASKS or task in _OWN_TASKS:
        return task
    folder = Path(task).expanduser()
    if not (folder / TASK_FILE).is_file():
        raise FcotError(
            f"unknown fcot task {task!r}; choose one of: {', '.join(TASKS)}, or a task folder written by "
            f"`fcot task --out DIR` (or <run_dir>/tasks of `fcot distill --dataset`)"
        )
    description = read_task_folder(folder)
    from fcot_plugin.tasks.answer_types import get_answer_type

    answer_type = get_answer_type(description["answer_type"])
    return register_task(
        TaskSpec(
            description["task"], description["task"], answer_type.name, answer_type.trigger, str(folder.resolve())
        )
    ).key


def own_task_folders() -> list[str]:
    """The YAML folders of the tasks of the user's own known to this process, for lm-eval's include path."""
    return [spec.folder for spec in _OWN_TASKS.values() if spec.folder]


def data_dir() -> Path:
    """Where the shipped datasets live inside the installed package."""
    return Path(str(resources.files("fcot_plugin") / "data"))


def shipped_split_path(task: str, split: str) -> Path:
    return data_dir() / get_task(task).key / f"{split}.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a bad line is reported with its file and line number."""
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{path}:{line_number}: not valid JSON ({error.msg})") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8 JSON lines") from None
    return rows


def validate_rows(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Check every row has a question and an answer, and make answers strings (as the paper's files)."""
    if not rows:
        raise DatasetError(f"{where}: the dataset has no rows")
    for index, row in enumerate(rows):
        missing = [field for field in REQUIRED_FIELDS if row.get(field) in (None, "")]
        if missing:
            raise DatasetError(
                f"{where}: row {index} has no {', '.join(missing)} (fields present: {sorted(row)}); "
                f"every row needs 'question' and 'answer'"
            )
    return [
        {**row, "answer": str(row["answer"]), "sample_index": row.get("sample_index", position)}
        for position, row in enumerate(rows)
    ]


def verbalize_aqua(raw_row: dict[str, Any]) -> dict[str, Any]:
    """The authors' AQuA format: options ``"A)21"`` become ``"(A) 21"`` after ``Answer choices:``."""
    choices = ", ".join(f"({option[0]}) {option[2:].strip()}" for option in raw_row["options"])
    return {
        "question": f"{raw_row['question']} Answer choices: {choices}.",
        "answer": raw_row["correct"],
        "rationale": raw_row.get("rationale", ""),
    }


def _aqua_train_from_raw(raw_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's AQuA train split: the seed-0 sample of 10,000 rows of the full raw train set."""
    split_indices = json.loads((data_dir() / "aqua" / "split_default.json").read_text())["train"]
    if len(raw_rows) != AQUA_TRAIN_ROWS:
        raise DatasetError(
            f"aqua train: expected the full AQuA train set ({AQUA_TRAIN_ROWS} rows) to apply the paper's "
            f"10,000-row sample, got {len(raw_rows)} rows; pass the raw `train` split of {AQUA_HUB_ID}"
        )
    return [{**verbalize_aqua(raw_rows[index]), "sample_index": index} for index in split_indices]


def _rows_from_source(source: str, split: str) -> list[dict[str, Any]]:
    """Rows of ``split`` from a local file or folder, or from a Hub dataset id."""
    path = Path(source).expanduser()
    if path.is_dir() and (path / f"{split}.jsonl").is_file():
        return read_jsonl(path / f"{split}.jsonl")
    if path.is_file() and path.suffix == ".jsonl":
        return read_jsonl(path)
    import datasets

    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        elif path.is_file():
            builder = {".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix)
            if builder is None:
                raise DatasetError(f"{path}: unsupported file type; use .jsonl, .json, .csv or .parquet")
            dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
        else:
            dataset = datasets.load_dataset(source, split=split)
    except DatasetError:
        raise
    except Exception as error:  # the datasets library raises many types; say which source failed and why
        raise DatasetError(
            f"could not load split {split!r} from {source!r}: {error}. Pass a local .jsonl/.json/.csv/.parquet "
            f"file, a folder with {split}.jsonl or a saved `datasets` dataset, or a Hub dataset id "
            f"(the Hub needs network access)"
        ) from error
    return [dict(row) for row in dataset]


def load_rows(task: str, split: str, source: str | None = None) -> list[dict[str, Any]]:
    """The rows of one split: ``{"sample_index", "question", "answer", ...}`` with string answers.

    ``source`` is ``None`` for the shipped paper split, else a local path or a Hub dataset id.
    """
    spec = get_task(task)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if source is None and spec.key == "aqua" and split == "train":
        source = AQUA_HUB_ID
    if source is None and spec.folder is not None:
        path = Path(spec.folder) / "data" / f"{split}.jsonl"
        return validate_rows(read_jsonl(path), str(path))
    if source is None:
        path = shipped_split_path(spec.key, split)
        return validate_rows(read_jsonl(path), str(path))
    if source == AQUA_HUB_ID:
        return _load_aqua_train_from_hub(split)
    rows = _rows_from_source(source, split)
    if rows and "options" in rows[0] and "correct" in rows[0]:  # AQuA's raw format
        rows = _aqua_train_from_raw(rows) if split == "train" else [verbalize_aqua(row) for row in rows]
    return validate_rows(rows, f"{source} [{split}]")


def _load_aqua_train_from_hub(split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        raw = datasets.load_dataset(AQUA_HUB_ID, "raw", split=split)
    except Exception as error:  # offline, gated, renamed: all need the same advice
        raise DatasetError(
            f"aqua {split}: the AQuA train split is not shipped (97,467 source rows) and loading it from the Hub "
            f"({AQUA_HUB_ID}) failed: {error}. Connect to the Hub, or download AQuA's raw train.json and pass "
            f'it as the data source (lm-eval: --metadata \'{{"fcot_data": "/path/train.jsonl"}}\')'
        ) from error
    return validate_rows(_aqua_train_from_raw([dict(row) for row in raw]), f"{AQUA_HUB_ID} [{split}]")
