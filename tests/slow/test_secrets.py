"""A token put in every place a user can put one reaches no file, pushed file, pickle or log line of a whole run
(the redaction itself: tests/test_secrets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.hub_server import local_hub_session
from helpers.runs import SMALL_RUN
from helpers.scripts import sft_recipe

from fcot_plugin.cli.fcot import main as fcot

FAKE = "hf_fcotFAKEsecret0123456789abcdefXYZ"  # a token of the Hub's shape, put everywhere a user can


def files_holding(root: Path, secret: str, skip: set[Path]) -> list[str]:
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and path not in skip and secret.encode() in path.read_bytes()
    )


@pytest.mark.slow
def test_no_token_in_any_output_pushed_file_pickle_or_log(tiny_model, tmp_path, monkeypatch, capfd, caplog):
    """Token in the teacher's model args, in HF_TOKEN (pushing) and in a recipe's hub_token: 0 hits anywhere."""
    import helpers.oracle  # noqa: F401  registers the fcot-test-oracle teacher

    caplog.set_level("INFO")
    with local_hub_session(tmp_path, monkeypatch, token=FAKE):
        fcot(
            [
                "distill",
                "--task",
                "coin_flip",
                "--student",
                str(tiny_model),
                "--run_dir",
                str(tmp_path / "run"),
                "--teacher",
                f"base=fcot-test-oracle,token={FAKE},api_key={FAKE}",
                "--train_limit",
                "4",
                *SMALL_RUN,
                "--push_to_hub",
                "true",
                "--hub_model_id",
                f"user/{tiny_model.name}-fcot-coin_flip",
            ]
        )
        assert (tmp_path / "run" / "stages" / "push.json").is_file()

        recipe = tmp_path / "recipe.yaml"  # the user's own file holds the token; nothing fcot writes may
        recipe.write_text(
            f"model_name_or_path: {tiny_model}\ndataset_name: {tmp_path / 'run' / 'data'}\ntask: coin_flip\n"
            f"output_dir: {tmp_path / 'sft'}\nmax_steps: 1\nsave_steps: 1\nper_device_train_batch_size: 2\n"
            f"use_cpu: true\nbf16: false\nreport_to: none\npush_to_hub: true\nhub_model_id: user/tiny-sft\n"
            f"hub_token: {FAKE}\n"
        )
        sft_recipe().main(["--config", str(recipe)])
        assert (tmp_path / "sft" / "training_args.bin").is_file()

    assert files_holding(tmp_path, FAKE, skip={recipe}) == []  # run folder, SFT output, Hub storage, caches
    captured = capfd.readouterr()
    assert FAKE not in captured.out + captured.err
    assert FAKE not in caplog.text
