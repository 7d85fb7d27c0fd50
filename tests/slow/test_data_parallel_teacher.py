"""One teacher over several servers (``base_url=A|B``): requests spread, a server that dies is dropped, nothing is
lost or generated twice, and the run ends in one line only when no server is left.

Two real ``transformers serve`` processes on loopback; ``pytest -k data_parallel`` selects these tests.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers.commands import FCOT_EVAL
from helpers.serving import build_served_model, transformers_serve

pytestmark = pytest.mark.slow


def rows(path: Path) -> dict[int, int]:
    """Cache entries per stage, read as another process would."""
    if not path.is_file():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            return dict(db.execute("SELECT stage, COUNT(*) FROM responses GROUP BY stage").fetchall())
        except sqlite3.OperationalError:
            return {}


def teacher_run(urls: list[str], model: Path, out: str, cache: Path, limit: int) -> list[str]:
    model_args = ",".join(
        [
            "base=local-completions",
            f"base_url={'|'.join(urls)}",
            f"model={model}",
            "tokenized_requests=False",
            "num_concurrent=2",
            "max_retries=1",
            "timeout=60",
            f"cache={cache}",
            "answer_max_gen_toks=6",
        ]
    )
    return [
        *FCOT_EVAL,
        "--model",
        "zscot",
        "--model_args",
        model_args,
        "--tasks",
        "fcot_coin_flip_teacher_diverse",
        "--metadata",
        '{"fcot_samples": 3}',
        "--limit",
        str(limit),
        "--gen_kwargs",
        "max_gen_toks=12",
        "--log_samples",
        "--output_path",
        out,
    ]


def test_data_parallel_teacher_over_two_servers_survives_losing_one(tmp_path):
    model = build_served_model(tmp_path / "tiny-sampling")
    cache = tmp_path / "teacher.sqlite"
    with ExitStack() as stack:
        first = stack.enter_context(transformers_serve(model, tmp_path / "a.log"))
        second_server = ExitStack()
        second = second_server.enter_context(transformers_serve(model, tmp_path / "b.log"))
        run = subprocess.Popen(
            teacher_run([first, second], model, "out", cache, limit=6),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None and sum(rows(cache).values()) < 6:
            time.sleep(0.05)
        assert run.poll() is None, "the run finished before a server could be stopped"
        second_server.close()  # one node gone mid-run
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-3000:]
        assert "stopped answering; its unfinished requests go to the others" in err
        # every response once: 6 questions x D=3, rationale and answer
        assert rows(cache) == {1: 18, 2: 18}
        assert "cache: rationales 0 reused, 18 generated; answers 0 reused, 18 generated" in out
        results = json.loads(sorted((tmp_path / "out").rglob("results_*.json"))[-1].read_text())
        accounting = results["config"]["fcot_teacher_accounting"]
        assert accounting["requests"] == 36  # one answered request per response: nothing was generated twice
        samples = [json.loads(line) for line in sorted((tmp_path / "out").rglob("samples_*.jsonl"))[-1].open()]
        assert len(samples) == 6 and all(len(sample["resps"][0]) == 3 for sample in samples)

        stack.close()  # the last server gone too: one line, and the finished responses are kept
        ended = subprocess.run(
            teacher_run([first, second], model, "out2", cache, limit=8),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ended.returncode == 1
        lines = [line for line in ended.stderr.splitlines() if line.startswith("fcot-eval: error: ")]
        assert len(lines) == 1 and "Traceback" not in ended.stderr, ended.stderr[-3000:]
        assert "cannot reach the teacher server" in lines[0] or "stopped answering" in lines[0]
        assert rows(cache) == {1: 18, 2: 18}
