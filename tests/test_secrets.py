"""A token put anywhere a user can put one never reaches a file, a pushed file, a pickle or a log line."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from fcot_plugin.core.secrets import (
    REDACTED,
    RedactingStream,
    guard_terminal,
    is_secret_key,
    redact,
    redact_text,
    redact_values,
    remember_secrets,
    scrub_files,
    secret_values,
)

FAKE = "hf_fcotFAKEsecret0123456789abcdefXYZ"


def test_token_like_keys_are_redacted_and_vocabulary_tokens_are_not():
    assert all(map(is_secret_key, ["token", "hub_token", "use_auth_token", "api_key", "OPENAI_API_KEY", "password"]))
    assert not any(map(is_secret_key, ["max_gen_toks", "pad_token", "add_bos_token", "tokenizer", "pad_token_id"]))
    text = f"pretrained=/m,token={FAKE},api_key=sk-123456,max_gen_toks=8"
    assert redact_text(text) == f"pretrained=/m,token={REDACTED},api_key={REDACTED},max_gen_toks=8"
    assert redact({"teacher": text, "hub_token": "abc", "pad_token": "<pad>"}) == {
        "teacher": redact_text(text),
        "hub_token": REDACTED,
        "pad_token": "<pad>",
    }
    assert redact_text(f"stray {FAKE} in a message") == f"stray {REDACTED} in a message"


SECRET_KEYS = [
    "token",
    "auth_token",
    "api_key",
    "hub_token",
    "password",
    "use_auth_token",
    "access_token",
    "id_token",
    "refresh_token",
    "github_token",
    "private_key",
    "wandb_key",
    "aws_secret_access_key",
    "client_secret",
    "HF_TOKEN",
    "OPENAI_API_KEY",
    "WANDB_API_KEY",
    "hubToken",
    "apiKey",
    "--hub_token",
    "--hub-token",
    "hf_hub_log_args.token",
]
VOCABULARY_KEYS = [
    "max_gen_toks",
    "pad_token",
    "add_bos_token",
    "add_eos_token",
    "pad_token_id",
    "tokenizer",
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "cls_token",
    "mask_token",
    "decoder_start_token_id",
    "eot_token_id",
    "max_new_tokens",
    "think_end_token",
    "prefix_token_id",
    "image_token",
    "tokenizer_pad_token",
    "tokenizer_backend",
    "tokenized_requests",
    "add_special_tokens",
    "num_tokens",
    "mean_token_accuracy",
    "segment_tokens",
    "key",
    "cache_key",
    "sort_key",
    "recipe_key",
    "tokens",
    "_token",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", VOCABULARY_KEYS)
def test_vocabulary_keys_are_not_secret(key):
    assert not is_secret_key(key)


R = REDACTED
# (what a library prints, what reaches the user): every format, with values of any length and shape
FORMATS = [
    ("pretrained=/m,token=a,api_key=sk-1,max_gen_toks=8", f"pretrained=/m,token={R},api_key={R},max_gen_toks=8"),
    ("hf (pretrained=/m,token=x)y), gen_kwargs: (None)", f"hf (pretrained=/m,token={R}), gen_kwargs: (None)"),
    (
        "hf ({'pretrained': '/m', 'token': 'abc', 'api_key': 'sk-1', 'pad_token': '<pad>', 'auth_token': None})",
        f"hf ({{'pretrained': '/m', 'token': '{R}', 'api_key': '{R}', 'pad_token': '<pad>', 'auth_token': None}})",
    ),
    (
        "with arguments: {'base': 'x', 'api_key': \"it's\", 'cache': '/c'}",
        f"with arguments: {{'base': 'x', 'api_key': \"{R}\", 'cache': '/c'}}",
    ),
    (
        "with arguments: {'base': 'x', 'api_key':\n        'sk-1', 'cache': '/c'}",  # pprint's wrapped line
        f"with arguments: {{'base': 'x', 'api_key':\n        '{R}', 'cache': '/c'}}",
    ),
    (
        '{"token": "a\\"b", "hub_token":"x", "api_key": 12, "password": null, "max_gen_toks": 8}',
        f'{{"token": "{R}", "hub_token":"{R}", "api_key": "{R}", "password": null, "max_gen_toks": 8}}',
    ),
    (
        "error: not used by the HfArgumentParser: ['--hub_token', 'X', '--epochs', '1']",
        f"error: not used by the HfArgumentParser: ['--hub_token', '{R}', '--epochs', '1']",
    ),
    (
        "error: not used by the HfArgumentParser: ['--hub_token=X,Y']",
        f"error: not used by the HfArgumentParser: ['--hub_token={R}']",
    ),
    (
        "error: unrecognized arguments: --hub_token a,b --hub-token=c --seed 1",
        f"error: unrecognized arguments: --hub_token {R} --hub-token={R} --seed 1",
    ),
    (
        "hub_token: abc\npad_token: <pad>\nargs: token=z,more",
        f"hub_token: {R}\npad_token: <pad>\nargs: token={R},more",
    ),
    ("Namespace(hub_token='abc', pad_token='x')", f"Namespace(hub_token='{R}', pad_token='x')"),
    ("export OPENAI_API_KEY=sk-1 HF_TOKEN=x", f"export OPENAI_API_KEY={R} HF_TOKEN={R}"),
    ("GET /v1?api_key=abc Authorization: Bearer abcdefghijkl", f"GET /v1?api_key={R} Authorization: Bearer {R}"),
    (f"stray {FAKE} and sk-proj-abcdefghijklmnopqrstuv", f"stray {R} and {R}"),
    ("'token=abc'", f"'token={R}'"),
    ("usage: [--hub_token HUB_TOKEN]", "usage: [--hub_token HUB_TOKEN]"),  # argparse's placeholder
    (
        "tokenizer: t, add_bos_token=True, think_end_token=</think>, cache_key=k, Token: 5",
        f"tokenizer: t, add_bos_token=True, think_end_token=</think>, cache_key=k, Token: {R}",
    ),
]


@pytest.mark.parametrize(("text", "expected"), FORMATS)
def test_every_format_is_redacted(text, expected):
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # idempotent


def test_exact_values_are_redacted_anywhere_short_ones_as_whole_words():
    values = {"sk-1", "hf_long_value_0123"}
    text = "task-1 sk-1 (sk-1) xsk-1 sk-12 hf_long_value_0123 Xhf_long_value_0123Y"
    assert redact_values(text, values) == f"task-1 {R} ({R}) xsk-1 sk-12 {R} X{R}Y"
    assert redact_text("a secret under no key: sk-1.", values) == f"a secret under no key: {R}."


def test_secret_values_from_model_args_argv_json_and_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_env")
    monkeypatch.setenv("MY_SERVICE_API_KEY", "svc-key-1")
    monkeypatch.setenv("FCOT_SOME_FLAG", "not-a-secret")
    argv = [
        "--teacher",
        "base=x,token=abcd,api_key=sk-1",
        "--hub_token",
        "XYZW",
        "--hub-token=zzzz",
        "--metadata",
        '{"password": "pw-json"}',
        "--seed",
        "1",
        "--other_token",
        "tt",
        "--tokenizer",
        "tok",
    ]
    found = secret_values(argv=argv)
    assert {"hf_from_the_env", "svc-key-1", "abcd", "sk-1", "XYZW", "zzzz", "pw-json"} <= found
    assert not found & {"not-a-secret", "x", "1", "tok", "tt"}  # "tt": too short to replace by value


def test_scrub_files_keeps_json_valid(tmp_path):
    results = tmp_path / "results.json"
    data = {
        "config": {"model_args": "pretrained=/m,token=abc"},
        "tokenizer_pad_token": ["<pad>", "0"],
        "hub_token": "abc",
        "note": "hf_long_value_0123 here",
    }
    results.write_text(json.dumps(data, indent=2))
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"resps": "token: 5 of hf_long_value_0123"}) + "\n")
    assert sorted(scrub_files(tmp_path, {"hf_long_value_0123"})) == [results, samples]
    assert json.loads(results.read_text()) == {
        "config": {"model_args": f"pretrained=/m,token={R}"},
        "tokenizer_pad_token": ["<pad>", "0"],
        "hub_token": R,
        "note": f"{R} here",
    }
    assert json.loads(samples.read_text()) == {"resps": f"token: 5 of {R}"}  # the model's text: values only


class Terminal(io.StringIO):
    """A terminal-like stream that counts flushes."""

    flushes = 0

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 99

    def flush(self) -> None:
        self.flushes += 1


def test_stream_wrapper_redacts_each_write_and_keeps_the_stream_working():
    terminal = Terminal()
    stream = RedactingStream(terminal)
    assert stream.write("hf (pretrained=/m,token=abc), limit: 2") == len("hf (pretrained=/m,token=abc), limit: 2")
    assert terminal.flushes == 0  # no line yet
    stream.write("\n")
    assert terminal.flushes == 1
    print({"api_key": "sk-1"}, file=stream)
    stream.writelines(["--hub_token X\n", '{"token": "abc"}\n'])
    assert terminal.getvalue() == (
        f"hf (pretrained=/m,token={R}), limit: 2\n{{'api_key': '{R}'}}\n--hub_token {R}\n{{\"token\": \"{R}\"}}\n"
    )
    assert stream.isatty() and stream.fileno() == 99 and stream.encoding == terminal.encoding
    assert stream.closed is False


def test_progress_bars_keep_redrawing_through_the_wrapper():
    from tqdm import tqdm

    terminal = Terminal()
    for _ in tqdm(range(3), file=RedactingStream(terminal), desc="token=abc", mininterval=0, ascii=True):
        pass
    output = terminal.getvalue()
    assert output.count("\r") >= 3 and "3/3" in output and "abc" not in output
    assert terminal.flushes >= 3  # each redraw reaches the terminal at once


def test_guard_terminal_wraps_once_and_redacts_prints_logs_and_argv_values(monkeypatch):
    out, err = Terminal(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    guard_terminal(["distill", "--hub_token", "argv-secret-1"])
    guard_terminal([])
    assert isinstance(sys.stdout, RedactingStream) and sys.stdout.wrapped is out
    assert isinstance(sys.stderr, RedactingStream) and sys.stderr.wrapped is err
    print("echo: argv-secret-1, under no key")
    handler = logging.StreamHandler(sys.stderr)
    logger = logging.getLogger("fcot-test-guard")
    logger.addHandler(handler)
    try:
        logger.warning("Initializing with arguments: %s", {"api_key": "sk-1", "base": "b"})
    finally:
        logger.removeHandler(handler)
    assert out.getvalue() == f"echo: {R}, under no key\n"
    assert err.getvalue() == f"Initializing with arguments: {{'api_key': '{R}', 'base': 'b'}}\n"


def test_remembered_secrets_leave_log_records_by_value(caplog):
    remember_secrets(["remembered-value-7"])
    logging.getLogger("fcot-test-remembered").warning("a value under no key: remembered-value-7")
    assert "remembered-value-7" not in caplog.text and R in caplog.text
