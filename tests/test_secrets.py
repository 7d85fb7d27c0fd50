"""A token put anywhere a user can put one never reaches a file, a pushed file, a pickle or a log line."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from hub_server import local_hub_session

from fcot_plugin.cli.fcot import main as fcot
from fcot_plugin.core.secrets import REDACTED, is_secret_key, redact, redact_text
from fcot_plugin.pipeline.settings import DistillArguments

FAKE = "hf_fcotFAKEsecret0123456789abcdefXYZ"


def test_token_like_keys_are_redacted_and_vocabulary_tokens_are_not():
    assert all(map(is_secret_key, ["token", "hub_token", "use_auth_token", "api_key", "OPENAI_API_KEY", "password"]))
    assert not any(map(is_secret_key, ["max_gen_toks", "pad_token", "add_bos_token", "tokenizer", "pad_token_id"]))
    text = f"pretrained=/m,token={FAKE},api_key=sk-123456,max_gen_toks=8"
    assert redact_text(text) == f"pretrained=/m,token={REDACTED},api_key={REDACTED},max_gen_toks=8"
    assert redact({"teacher": text, "hub_token": "abc", "pad_token": "<pad>"}) == {
        "teacher": redact_text(text), "hub_token": REDACTED, "pad_token": "<pad>"}  # fmt: skip
    assert redact_text(f"stray {FAKE} in a message") == f"stray {REDACTED} in a message"


def files_holding(root: Path, secret: str, skip: set[Path]) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")
                  if path.is_file() and path not in skip and secret.encode() in path.read_bytes())  # fmt: skip


@pytest.mark.slow
def test_no_token_in_any_output_pushed_file_pickle_or_log(tiny_model, tmp_path, monkeypatch, capfd, caplog):
    """Token in the teacher's model args, in HF_TOKEN (pushing) and in a recipe's hub_token: 0 hits anywhere."""
    import oracle  # noqa: F401  registers the fcot-test-oracle teacher

    caplog.set_level("INFO")
    precision = (
        ["--bf16", "false"] if "bf16" in {f.name for f in fields(DistillArguments)} else ["--precision", "fp32"]
    )
    with local_hub_session(tmp_path, monkeypatch, token=FAKE):
        fcot(["distill", "--task", "coin_flip", "--student", str(tiny_model), "--run_dir", str(tmp_path / "run"),
              "--teacher", f"base=fcot-test-oracle,token={FAKE},api_key={FAKE}", "--train_limit", "4",
              "--eval_limit", "2", "--epochs", "1", "--batch_size", "4", "--max_gen_toks", "8", "--eval_batch_size",
              "4", "--device", "cpu", "--baselines", "false", "--push_to_hub", "user", *precision])  # fmt: skip
        assert (tmp_path / "run" / "stages" / "push.json").is_file()

        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "sft_recipe", Path(__file__).parent.parent / "recipes" / "sft.py"
        )
        sft = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sft)
        recipe = tmp_path / "recipe.yaml"  # the user's own file holds the token; nothing fcot writes may
        recipe.write_text(
            f"model_name_or_path: {tiny_model}\ndataset_name: {tmp_path / 'run' / 'data'}\ntask: coin_flip\n"
            f"output_dir: {tmp_path / 'sft'}\nmax_steps: 1\nsave_steps: 1\nper_device_train_batch_size: 2\n"
            f"use_cpu: true\nbf16: false\nreport_to: none\npush_to_hub: true\nhub_model_id: user/tiny-sft\n"
            f"hub_token: {FAKE}\n"
        )
        sft.main(["--config", str(recipe)])
        assert (tmp_path / "sft" / "training_args.bin").is_file()

    assert files_holding(tmp_path, FAKE, skip={recipe}) == []  # run folder, SFT output, Hub storage, caches
    captured = capfd.readouterr()
    assert FAKE not in captured.out + captured.err
    assert FAKE not in caplog.text
