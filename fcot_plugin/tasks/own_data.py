"""A dataset of the user's own as a Fine-tune-CoT task: loaded through ``datasets``, checked row by row, split.

The source is a ``.jsonl``/``.json``/``.csv``/``.parquet`` file, a folder of ``<split>.jsonl`` files, a
``datasets.save_to_disk`` folder or a Hub dataset id. Every row is checked before any teacher runs: a bad row is
one line naming the row and the fix. The test split is the source's own (``test_split``) or a seeded fraction of
the train split; both are recorded with the source's revision or file hash, so the task can be rebuilt exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fcot_plugin.tasks.answer_types import USER_TYPES, get_answer_type, letter_type, normalize_text
from fcot_plugin.tasks.registry import TASKS, DatasetError

_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_WRITTEN_CHOICES = re.compile(r"\(([A-Z])\)")
_NAME = re.compile(r"[^a-z0-9_]+")


class OwnDataOptions(Protocol):
    """The options of a dataset of the user's own, declared once in ``pipeline.settings.OwnDataArguments``."""

    dataset: str
    answer_type: str
    name: str | None
    question_field: str
    answer_field: str
    choices_field: str | None
    dataset_config: str | None
    dataset_split: str
    test_split: str | None
    test_size: float
    test_seed: int


@dataclass
class OwnTask:
    """A checked dataset of the user's own: its rows by split and where they came from."""

    name: str
    answer_type: str  # the resolved type: number, yes_no, text or a letter range such as A-D
    splits: dict[str, list[dict[str, Any]]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """The content of the task: rows and answer type (a changed file makes a new task)."""
        payload = json.dumps({"answer_type": self.answer_type, "splits": self.splits}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def default_name(dataset: str) -> str:
    """The task name of a source: the file stem or the dataset id's last part, as a Python identifier."""
    path = Path(dataset.rstrip("/"))
    stem = path.stem if path.suffix in _FILE_BUILDERS else path.name
    return _NAME.sub("_", stem.lower()).strip("_") or "own"


def check_options(options: OwnDataOptions) -> str:
    """The task name, once the options alone are known good (no data read yet); one line otherwise."""
    if options.answer_type not in USER_TYPES:
        raise DatasetError(f"unknown --answer_type {options.answer_type!r}; choose one of: {', '.join(USER_TYPES)}")
    if options.choices_field and options.answer_type != "choice":
        raise DatasetError("--choices_field needs --answer_type choice")
    if options.test_split is None and not 0 < options.test_size < 1:
        raise DatasetError(f"--test_size must be a fraction between 0 and 1, got {options.test_size}")
    name = options.name or default_name(options.dataset)
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise DatasetError(f"--name {name!r}: use letters, digits and underscores (it becomes fcot_{name})")
    if name in TASKS:
        raise DatasetError(f"--name {name!r} is one of fcot's 12 datasets; pass another --name")
    return name


# ---------------------------------------------------------------------- loading


def _local_splits(path: Path, options: OwnDataOptions) -> Any:
    import datasets

    if path.is_file():
        builder = _FILE_BUILDERS.get(path.suffix)
        if builder is None:
            raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .json, .csv or .parquet")
        return datasets.load_dataset(builder, data_files={options.dataset_split: str(path)})
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        return loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict({"train": loaded})
    files = {item.stem: str(item) for item in sorted(path.glob("*.jsonl"))}
    if not files:
        raise DatasetError(f"{path} holds no <split>.jsonl files and is not a datasets.save_to_disk folder")
    return datasets.load_dataset("json", data_files=files)


def load_splits(options: OwnDataOptions) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Every split of the source as rows, and where they came from (file hash or Hub revision)."""
    import datasets

    path = Path(options.dataset).expanduser()
    source: dict[str, Any] = {"dataset": options.dataset}
    try:
        if path.exists():
            loaded = _local_splits(path, options)
            source["sha256"] = _content_hash(path)
        elif path.suffix in _FILE_BUILDERS or options.dataset.startswith((".", "/", "~")):
            raise DatasetError(f"{options.dataset}: no such file or folder; check the path of --dataset")
        else:
            loaded = datasets.load_dataset(options.dataset, options.dataset_config)
            source["config"] = options.dataset_config
            source.update(_hub_details(options.dataset))
    except DatasetError:
        raise
    except Exception as error:  # the datasets library raises many types: say which source failed and why
        message = " ".join(str(error).split())[:300]
        raise DatasetError(
            f"cannot read --dataset {options.dataset!r}: {message}; pass a readable .jsonl, .json, "
            f".csv or .parquet file, a folder of <split>.jsonl files, a datasets.save_to_disk "
            f"folder or a Hub dataset id"
        ) from None
    return {name: [dict(row) for row in split] for name, split in loaded.items()}, source


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for item in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(item.read_bytes())
    return digest.hexdigest()


def _hub_details(repo_id: str) -> dict[str, Any]:
    """The Hub revision of a dataset and the license its card states, where the Hub says (offline: unknown)."""
    from huggingface_hub import DatasetCard, HfApi

    try:
        details: dict[str, Any] = {"revision": HfApi().dataset_info(repo_id).sha}
    except Exception:  # noqa: BLE001 - provenance only: an offline cache still loads the data
        return {"revision": None}
    try:
        license_id = DatasetCard.load(repo_id, repo_type="dataset").data.get("license")
    except Exception:  # noqa: BLE001 - a dataset without a card: its license is unknown
        license_id = None
    return {**details, **({"license": license_id} if license_id else {})}


# ---------------------------------------------------------------------- rows


def _choices_of(value: Any, where: str, field_name: str) -> list[str]:
    if isinstance(value, dict) and "text" in value:  # the Hub's {"label": [...], "text": [...]}
        value = value["text"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [part.strip() for part in value.split("|")]
    if not isinstance(value, list) or len(value) < 2 or len(value) > 26:
        raise DatasetError(
            f"{where}: {field_name!r} is not a list of 2 to 26 choices ({value!r}); give a list, "
            f"a JSON list or 'a|b|c'"
        )
    return [str(choice).strip() for choice in value]


def render_choices(question: str, choices: list[str]) -> str:
    """The paper's multiple choice: ``{question} Answer choices: (A) x, (B) y.`` (as AQuA and CommonsenseQA)."""
    listed = ", ".join(f"({letter}) {choice}" for letter, choice in zip(string.ascii_uppercase, choices, strict=False))
    return f"{question} Answer choices: {listed}."


def _row(raw: dict[str, Any], index: int, split: str, options: OwnDataOptions) -> tuple[str, str, str | None]:
    """(question, gold answer, last choice letter) of one row; one line naming the row and the fix otherwise."""
    where = f"{options.dataset} [{split}] row {index}"
    fields = [options.question_field, options.answer_field, *filter(None, [options.choices_field])]
    missing = [name for name in fields if raw.get(name) is None or str(raw.get(name)).strip() == ""]
    if missing:
        flags = {options.question_field: "--question_field", options.answer_field: "--answer_field"}
        fix = ", ".join(f"{flags.get(name, '--choices_field')} NAME" for name in missing)
        raise DatasetError(
            f"{where} has no {', '.join(repr(name) for name in missing)} (fields present: "
            f"{sorted(raw)}); fill it in, or name the column with {fix}"
        )
    question, answer = str(raw[options.question_field]).strip(), str(raw[options.answer_field]).strip()
    if options.answer_type != "choice":
        return question, answer, None
    if options.choices_field:
        choices = _choices_of(raw[options.choices_field], where, options.choices_field)
        letters = string.ascii_uppercase[: len(choices)]
        if answer.upper() in letters and len(answer) == 1:
            answer = answer.upper()
        elif answer in choices:
            answer = letters[choices.index(answer)]
        else:
            raise DatasetError(
                f"{where}: answer {answer!r} is neither a letter A-{letters[-1]} nor one of its "
                f"choices {choices}; fix the row"
            )
        return render_choices(question, choices), answer, letters[-1]
    written = _WRITTEN_CHOICES.findall(question)
    if not written:
        raise DatasetError(
            f"{where}: the question lists no choices such as '(A) ...'; write them into the "
            f"question or name the column that holds them with --choices_field"
        )
    last = max(written)
    if len(answer) != 1 or answer.upper() not in string.ascii_uppercase[: string.ascii_uppercase.index(last) + 1]:
        raise DatasetError(
            f"{where}: answer {answer!r} is not one of the question's choice letters A-{last}; fix the row"
        )
    return question, answer.upper(), last


def build_task(options: OwnDataOptions) -> OwnTask:
    """Load, check and split a dataset of the user's own; every problem is one line before anything runs."""
    name = check_options(options)
    splits, source = load_splits(options)
    train_split = options.dataset_split
    for wanted, flag in ((train_split, "--dataset_split"), (options.test_split, "--test_split")):
        if wanted is not None and wanted not in splits:
            raise DatasetError(
                f"{options.dataset} has no split {wanted!r} (splits: {', '.join(splits)}); pass "
                f"{flag} with one of them"
            )
    checked: dict[str, list[tuple[int, str, str, str | None]]] = {}
    for split in {train_split, options.test_split} - {None}:
        if not splits[split]:
            raise DatasetError(f"{options.dataset} [{split}] has no rows; give a split with questions in it")
        checked[split] = [(i, *_row(raw, i, split, options)) for i, raw in enumerate(splits[split])]
    last_letters = [last for rows in checked.values() for *_, last in rows if last]
    answer_type = (
        letter_type(max(last_letters)) if options.answer_type == "choice" else get_answer_type(options.answer_type)
    )
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    for split, rows in checked.items():
        kept = []
        for index, question, answer, _ in rows:
            try:
                gold = answer_type.normalize(answer)
            except ValueError as error:
                alternative = "" if options.answer_type == "text" else " or pass --answer_type text"
                raise DatasetError(
                    f"{options.dataset} [{split}] row {index}: answer {answer!r} {error}; fix the row{alternative}"
                ) from None
            kept.append({"sample_index": index, "question": question, "answer": gold})
        rows_by_split[split] = kept
    train = rows_by_split[train_split]
    if options.test_split is not None:
        test = rows_by_split[options.test_split]
        split_record = {"test": f"the source's {options.test_split!r} split"}
    else:
        train, test = carve_test(train, options.test_size, options.test_seed)
        split_record = {
            "test": f"a seeded {options.test_size:g} fraction of {train_split!r}",
            "test_size": options.test_size,
            "test_seed": options.test_seed,
        }
    if not train or not test:
        raise DatasetError(
            f"{options.dataset}: {len(train)} train and {len(test)} test rows; both splits need rows "
            f"(a larger dataset, or another --test_size)"
        )
    train_questions = {normalize_text(row["question"]) for row in train}
    if all(normalize_text(row["question"]) in train_questions for row in test):
        raise DatasetError(
            f"{options.dataset}: every test question also appears in the train split, so nothing "
            f"would be left to train on; pass a --test_split with other questions, or leave it out "
            f"to carve one"
        )
    provenance = {
        **source,
        "split": train_split,
        **split_record,
        "fields": {
            "question": options.question_field,
            "answer": options.answer_field,
            "choices": options.choices_field,
        },
        "answer_type": options.answer_type,
        "rows": {"train": len(train), "test": len(test)},
    }
    return OwnTask(name, answer_type.name, {"train": train, "test": test}, provenance)


def carve_test(rows: list[dict[str, Any]], size: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded ``size`` fraction of ``rows`` (at least one) as the test split; the rest stays train, in order."""
    count = max(1, round(len(rows) * size))
    chosen = set(random.Random(seed).sample(range(len(rows)), count)) if len(rows) > 1 else set()
    return [r for i, r in enumerate(rows) if i not in chosen], [r for i, r in enumerate(rows) if i in chosen]
