"""The docs against the code (scripts/check_docs.py, run in-process): paths, modules, anchors, command options."""

import shutil
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.scripts import load_script

check_docs = load_script(REPO / "scripts" / "check_docs.py")


@pytest.fixture(scope="module")
def commands():
    return check_docs.Commands(REPO)  # parsers are built once and shared by the tests


def _planted(tmp_path: Path, doc: str, addition: str) -> tuple[str, str]:
    """The real doc's text, and a copy's text with ``addition`` appended (written under tmp_path)."""
    copy = tmp_path / doc
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / doc, copy)
    copy.write_text(copy.read_text(encoding="utf-8") + addition, encoding="utf-8")
    return (REPO / doc).read_text(encoding="utf-8"), copy.read_text(encoding="utf-8")


def _new_problems(check, original: str, planted: str, doc: str) -> list[str]:
    """Problems the planted text has and the original has not (so the test holds whatever the real docs say)."""
    before = {problem.message for problem in check(original, doc)}
    return sorted({problem.message for problem in check(planted, doc)} - before)


def test_docs_match_the_code(commands):
    problems = check_docs.check_readme_length(REPO)
    for doc in check_docs.doc_files(REPO):
        problems += check_docs.check_doc((REPO / doc).read_text(encoding="utf-8"), doc, REPO, commands)
    assert not problems, "\n".join(map(str, problems))


def test_every_doc_is_checked():
    docs = check_docs.doc_files(REPO)
    assert {"README.md", "docs/index.md", "benchmarks/README.md", "ds_configs/README.md"} <= set(docs)
    assert "task_configs/README.md" in docs


@pytest.mark.parametrize(("lines", "problems"), [(300, 0), (301, 1)])
def test_readme_longer_than_300_lines(tmp_path, lines, problems):
    (tmp_path / "README.md").write_text("".join(f"line {n}\n" for n in range(lines)), encoding="utf-8")
    found = check_docs.check_readme_length(tmp_path)
    assert len(found) == problems
    if problems:
        assert "301 lines" in found[0].message


def test_missing_path_and_module(tmp_path):
    original, planted = _planted(
        tmp_path,
        "README.md",
        "\n`fcot_plugin/tasks/no_such_module.py`, `benchmarks/results/no_such_*.json`, `fcot_plugin.no_such`,\n"
        "`fcot_plugin.tasks.answers.no_such_name`, [a link](docs/no_such_page.md), [an anchor](docs/tasks.md#nope)\n"
        "and what is fine: `fcot_plugin/tasks/answers.py`, `fcot_plugin.tasks.answers.extract_answer`,\n"
        "`Qwen/Qwen2.5-7B-Instruct`, `org/name`, `runs/<task>/student/`, `student/`, `report.md`,\n"
        "`benchmarks/results/paper_table.{md,json}`, `recipes/<Model>/sft/config_<variant>.yaml`, `{question} ###`,\n"
        "[a page](docs/tasks.md#answer-rules)\n"
        "```python\nfrom fcot_plugin.tasks.answers import extract_answer, no_such_function\n```\n",
    )
    found = _new_problems(lambda text, doc: check_docs.check_paths(text, doc, REPO), original, planted, "README.md")
    assert found == sorted(
        [
            "`fcot_plugin/tasks/no_such_module.py` does not exist",
            "`benchmarks/results/no_such_*.json` matches no file",
            "module `fcot_plugin.no_such` does not exist",
            "`fcot_plugin.tasks.answers` defines no no_such_name",
            "`fcot_plugin.tasks.answers` defines no no_such_function",
            "link target `docs/no_such_page.md` does not exist",
            "link anchor `#nope` is not a heading of docs/tasks.md",
        ]
    )


def test_unknown_flags(tmp_path, commands):
    original, planted = _planted(
        tmp_path,
        "docs/distill.md",
        "\n```bash\n"
        "fcot distill --task coin_flip --epochs 2 --no_such_option 1   # --not_a_flag: comments are not checked\n"
        "accelerate launch --config_file ds_configs/zero2.yaml --num_processes 2 recipes/sft.py \\\n"
        "    --config recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml --learning_rate 1e-4 --lora_rank 8\n"
        "python benchmarks/paper_table.py --no_vanilla --sc_limit 0 --sc_limits 5\n"
        "fcot-eval --model hf --tasks fcot_coin_flip --log_samples --output_path runs/x --num_shots 3\n"
        "```\n"
        "Inline too: `fcot curate --task coin_flip --samples paper --out data/x --dedup false`.\n",
    )
    found = _new_problems(
        lambda text, doc: check_docs.check_flags(text, doc, commands), original, planted, "docs/distill.md"
    )
    assert found == sorted(
        [
            "`fcot distill` has no option --no_such_option",
            "`recipes/sft.py` has no option --lora_rank",
            "`benchmarks/paper_table.py` has no option --sc_limits",
            "`fcot-eval` has no option --num_shots",
            "`fcot curate` has no option --dedup",
        ]
    )
