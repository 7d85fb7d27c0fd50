"""No secret reaches stdout, stderr or a file, from any fcot command run the way a user runs it (a subprocess).

Secrets are planted everywhere a user can put one: the teacher's model args (a full-length ``hf_...`` token and a
short ``sk-...`` key, which no shape gives away), ``fcot-eval --model_args ...,token=...``, ``HF_TOKEN`` and
``OPENAI_API_KEY`` in the environment, and an option fcot does not have (``--hub_token X``), whose value argparse
would echo. Then the captured terminal output and every file under the run and output folders are searched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers.hub_server import local_hub_session
from helpers.paths import TESTS
from helpers.runs import SMALL_RUN

from fcot_plugin.core.secrets import REDACTED

LONG = "hf_fcotTERMINALleak0123456789abcdefXYZ"  # a Hugging Face token, on the command line
ENVIRONMENT = "hf_fcotENVIRONleak9876543210zyxwvuTSRQ"  # HF_TOKEN
SHORT = "sk-7Zq"  # an API key too short to have a recognisable shape
SECRETS = (LONG, ENVIRONMENT, SHORT)
# `fcot` itself, with the test oracle teacher registered first (the console script cannot import it)
FCOT_WITH_ORACLE = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r}); import helpers.oracle; "
    "from fcot_plugin.cli.fcot import main; main()"
)
TINY_RUN = ["--train_limit", "4", *SMALL_RUN]


def script(name: str) -> str:
    """A console script of this environment, by absolute path."""
    return str(Path(sysconfig.get_path("scripts")) / name)


def run(command: list[str], cwd: Path, **environment: str) -> subprocess.CompletedProcess:
    """``command`` with the secrets in its environment, its terminal output captured."""
    env = {**os.environ, "HF_TOKEN": ENVIRONMENT, "OPENAI_API_KEY": SHORT, **environment}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def leaks(result: subprocess.CompletedProcess, *folders: Path) -> list[str]:
    """Where a secret shows: the command's stdout or stderr, or a file under ``folders``."""
    found = [
        f"{name}: {secret}"
        for name, text in (("stdout", result.stdout), ("stderr", result.stderr))
        for secret in SECRETS
        if secret in text
    ]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                found += [f"{path}: {secret}" for secret in SECRETS if secret.encode() in data]
    return found


@pytest.fixture(scope="module")
def distilled(tiny_model, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """A tiny ``fcot distill`` whose teacher args hold a long token and a short key; HF_TOKEN is set."""
    root = tmp_path_factory.mktemp("distill")
    teacher = f"base=fcot-test-oracle,token={LONG},api_key={SHORT}"
    command = [
        sys.executable,
        "-c",
        FCOT_WITH_ORACLE,
        "distill",
        "--task",
        "coin_flip",
        "--student",
        str(tiny_model),
        "--run_dir",
        str(root / "run"),
        "--teacher",
        teacher,
        *TINY_RUN,
    ]
    return run(command, cwd=root), root


@pytest.mark.slow
def test_fcot_distill_shows_and_writes_no_secret(distilled):
    result, root = distilled
    assert result.returncode == 0, result.stderr[-3000:]
    assert leaks(result, root) == []
    # lm-eval's own "Initializing zscot model, with arguments: {...}" line is there (pprint may wrap it), redacted
    assert f"'token': '{REDACTED}', 'api_key': '{REDACTED}'" in " ".join(result.stderr.split())


@pytest.mark.slow
def test_fcot_curate_and_push_show_and_write_no_secret(distilled, tmp_path, monkeypatch):
    _, root = distilled
    with local_hub_session(tmp_path, monkeypatch, token=ENVIRONMENT):  # HF_TOKEN: the secret, used for real
        command = [
            script("fcot"),
            "curate",
            "--task",
            "coin_flip",
            "--samples",
            str(root / "run" / "teacher"),
            "--out",
            str(tmp_path / "data"),
            "--push_to_hub",
            "true",
            "--hub_dataset_id",
            "user/coin-flip-fcot",
        ]
        result = run(command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pushed" in result.stdout
    assert leaks(result, tmp_path) == []  # the dataset, its card, the Hub's caches


@pytest.mark.slow
def test_fcot_evaluate_shows_and_writes_no_secret(distilled, tmp_path):
    _, root = distilled
    command = [
        script("fcot"),
        "evaluate",
        "--model",
        str(root / "run" / "student"),
        "--task",
        "coin_flip",
        "--limit",
        "2",
        "--batch_size",
        "4",
        "--max_gen_toks",
        "8",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--output_path",
        str(tmp_path / "out"),
    ]
    result = run(command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert leaks(result, tmp_path) == []


@pytest.mark.slow
def test_fcot_eval_summary_shows_the_model_args_redacted(tiny_model, tmp_path):
    command = [
        script("fcot-eval"),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model},token={LONG}",
        "--tasks",
        "fcot_coin_flip",
        "--limit",
        "2",
        "--batch_size",
        "4",
        "--gen_kwargs",
        "max_gen_toks=8",
        "--device",
        "cpu",
        "--output_path",
        str(tmp_path / "out"),
        "--log_samples",
        "--show_config",
    ]
    result = run(command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert leaks(result, tmp_path) == []
    # lm-eval's results header (print), its log line and --show_config's JSON: each there, redacted
    assert f"hf ({{'pretrained': '{tiny_model}', 'token': '{REDACTED}'}})" in result.stdout
    assert f"with arguments: {{'pretrained': '{tiny_model}', 'token': '{REDACTED}'}}" in result.stderr
    assert f'"token": "{REDACTED}"' in result.stdout


@pytest.mark.parametrize(
    "option",
    [["--hub_token", LONG], [f"--hub_token={SHORT}"], ["--teacher", "paper", "--api-key", SHORT]],
)
def test_an_unknown_option_is_refused_without_echoing_its_secret(option, tmp_path):
    """argparse names what it refuses; a secret value in it is redacted (``fcot distill`` has no --hub_token)."""
    result = run([script("fcot"), "distill", "--task", "coin_flip", *option], cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fcot: error: ") and REDACTED in lines[0], result.stderr
    assert leaks(result, tmp_path) == []
