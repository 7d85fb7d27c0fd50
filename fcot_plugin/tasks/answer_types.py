"""Answer types: each one's Kojima answer trigger, how candidates are found in a text, how a gold answer is
normalised, and how a prediction is compared with it, declared together in :data:`ANSWER_TYPES`.

The paper's 12 datasets use ``integer``, ``float``, ``A-C``/``A-E``/``A-F``, ``yes_no`` and ``letters``; a
dataset of a user's own (``fcot distill --dataset``) picks one of :data:`USER_TYPES`: ``number``, ``choice``
(resolved to the letter range of its choices, e.g. ``A-D``), ``yes_no`` or ``text``. A new type is one entry.
:mod:`fcot_plugin.tasks.answers` applies them; nothing else knows a type's rules.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# a number with a unit or currency around it: "$1,200", "5 kg", "12%"; the unit is dropped
_NUMBER_WITH_UNIT = re.compile(r"^[^\d\-]*?(-?\d+(?:\.\d+)?)[^\d]*$")
_YES_NO_SEPARATORS = re.compile(r"\"|'|\n|\.|\s|:|,")
_LAST_LETTER_DELETIONS = re.compile(r"\"|'|\n|\.|\s")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
LETTER_RANGE = re.compile(r"^A-([B-Z])$")


@dataclass(frozen=True)
class AnswerType:
    """One answer format: Kojima's trigger, candidates in a text, the gold answer's normal form, equality."""

    name: str
    trigger: str
    candidates: Callable[[str], list[str]]
    normalize: Callable[[str], str]  # raises ValueError saying what a valid gold answer looks like
    same: Callable[[str, str], bool] = lambda prediction, gold: prediction == gold


def _numbers(text: str) -> list[str]:
    return _NUMBER.findall(text.replace(",", ""))


def _exact_number(gold: str) -> str:
    text = gold.replace(",", "")
    if not _NUMBER.fullmatch(text):
        raise ValueError("is not a number (numeric tasks need answers such as '39' or '43.0')")
    return text


def _number_with_unit(gold: str) -> str:
    match = _NUMBER_WITH_UNIT.match(gold.replace(",", ""))
    if match is None:
        raise ValueError("is not a number (answers such as '39', '1,200', '$4.50' or '12 kg')")
    return match.group(1)


def _numeric_equal(prediction: str, gold: str) -> bool:
    try:
        return abs(float(prediction) - float(gold)) <= 1e-6
    except ValueError:
        return False


def _yes_no_candidates(text: str) -> list[str]:
    tokens = _YES_NO_SEPARATORS.sub(" ", text.lower()).split(" ")
    return [token for token in tokens if token in ("yes", "no")]


def _yes_no(gold: str) -> str:
    text = {"true": "yes", "false": "no"}.get(gold.lower(), gold.lower())
    if text not in ("yes", "no"):
        raise ValueError("is not yes or no (yes_no answers are 'yes', 'no', 'true' or 'false')")
    return text


def _last_letters(text: str) -> list[str]:
    remaining = _LAST_LETTER_DELETIONS.sub("", text)
    return [remaining] if remaining else []


def normalize_text(text: str) -> str:
    """Lower case, no punctuation, single spaces: what ``text`` answers are compared in."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


def _text_candidates(text: str) -> list[str]:
    """Each non-empty line is a candidate answer, up to its first sentence end."""
    lines = (re.split(r"\.(?=\s|$)", line, maxsplit=1)[0] for line in text.splitlines())
    return [normal for normal in (normalize_text(line) for line in lines) if normal]


def _text_gold(gold: str) -> str:
    normal = normalize_text(gold)
    if not normal:
        raise ValueError("is empty once punctuation is removed")
    return normal


def letter_type(last: str) -> AnswerType:
    """Multiple choice among ``A`` through ``last``: the first matching capital letter."""
    letters = string.ascii_uppercase[: string.ascii_uppercase.index(last) + 1]
    pattern = re.compile(f"[{letters}]")

    def gold_letter(gold: str) -> str:
        if gold not in letters:
            raise ValueError(f"is not a choice letter A-{last} (answer with the letter of the correct choice)")
        return gold

    return AnswerType(f"A-{last}", f"Therefore, among A through {last}, the answer is", pattern.findall, gold_letter)


_ARABIC = "Therefore, the answer (arabic numerals) is"

ANSWER_TYPES: dict[str, AnswerType] = {
    answer_type.name: answer_type
    for answer_type in (
        AnswerType("integer", _ARABIC, _numbers, _exact_number),  # exact strings, as the authors compared them
        AnswerType("float", _ARABIC, _numbers, _exact_number, _numeric_equal),
        AnswerType("number", _ARABIC, _numbers, _number_with_unit, _numeric_equal),
        letter_type("C"),
        letter_type("E"),
        letter_type("F"),
        AnswerType("yes_no", "Therefore, the answer (Yes or No) is", _yes_no_candidates, _yes_no),
        AnswerType("letters", "Therefore, the answer is", _last_letters, lambda gold: gold),
        AnswerType("text", "Therefore, the answer is", _text_candidates, _text_gold),
    )
}

#: the types ``fcot distill --dataset`` offers (``choice`` becomes the letter range of the dataset's choices)
USER_TYPES = ("number", "choice", "yes_no", "text")


def get_answer_type(name: str) -> AnswerType:
    """The answer type called ``name``; any letter range ``A-<X>`` is one."""
    if name in ANSWER_TYPES:
        return ANSWER_TYPES[name]
    match = LETTER_RANGE.match(name)
    if match:
        return letter_type(match.group(1))
    raise ValueError(f"unknown answer type {name!r}; choose one of: {', '.join(USER_TYPES)}")
