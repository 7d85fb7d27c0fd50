"""Chat teachers, end to end against real chat endpoints: zscot's two stages through ``/v1/chat/completions`` of
``transformers serve``, vLLM and llama.cpp, OpenAI's client with its key from the environment, a local ``hf``
teacher through its chat template, and diverse samples asked ``n`` at a time. Nothing is mocked.

``pytest -k chat_completions`` selects this module; the vLLM tests skip without ``make vllm``'s environment and the
llama.cpp one without ``make teacher``'s ``llama-server``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from helpers.commands import FCOT_EVAL
from helpers.serving import cache_rows, free_port, sampling_model, transformers_serve

from fcot_plugin.core.errors import FcotError
from fcot_plugin.harness.zscot import ZeroShotCoT
from fcot_plugin.tasks.prompts import STAGE2_STOP_SEQUENCES
from fcot_plugin.teacher.api_features import features_of
from fcot_plugin.teacher.chat import CONTINUE, FOLLOW_UP, as_messages, messages_text, stage2_messages

CACHE_LINE = "cache: rationales {} reused, {} generated; answers {} reused, {} generated"
#: A chat template for the tiny test model (its tokenizer knows <s> and </s>).
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)
SECRET = "sk-fcot-test-" + "k" * 24


def build_chat_model(folder: Path) -> Path:
    """The tiny Llama (untied: its text wanders) with a chat template, sampling when asked."""
    from helpers.tiny_models import build_tiny_llama
    from transformers import AutoTokenizer

    source = build_tiny_llama(folder.with_name(folder.name + "-source"), tie_word_embeddings=False)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(source)
    return sampling_model(source, folder)


@pytest.fixture(scope="module")
def chat_model():
    """Built where its path has no digit: lm-eval's openai-chat-completions treats a model name holding "5",
    "o1", "o3" or "o4" as an OpenAI reasoning model (no stop sequences, temperature 1)."""
    letters = "".join(random.choices(string.ascii_lowercase, k=10))
    folder = Path(tempfile.gettempdir()) / f"fcot-chat-teacher-{letters}"
    try:
        yield build_chat_model(folder / "model")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def chat_server(chat_model, tmp_path_factory):
    with transformers_serve(chat_model, tmp_path_factory.mktemp("chat-serve") / "serve.log") as url:
        yield url.replace("/v1/completions", "/v1/chat/completions")


def args_text(**args: object) -> str:
    return ",".join(f"{key}={value}" for key, value in args.items())


def fcot_eval(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FCOT_EVAL, *args], capture_output=True, text=True, cwd=cwd, timeout=900, env=env)


def results_and_samples(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())
    samples = [json.loads(line) for line in sorted(out.rglob("samples_*.jsonl"))[-1].read_text().splitlines()]
    return results, samples


def teacher_run(model_args: str, cache: Path, out: str, *extra: str, limit: int = 2, tokens: int = 8) -> list[str]:
    return [
        "--model",
        "zscot",
        "--model_args",
        model_args,
        "--tasks",
        "fcot_coin_flip_teacher",
        "--limit",
        str(limit),
        "--gen_kwargs",
        f"max_gen_toks={tokens}",
        "--use_cache",
        str(cache),
        "--log_samples",
        "--output_path",
        out,
        *extra,
    ]


def stage_texts(cache: Path, stage: int) -> list[str]:
    return [text for row_stage, text in cache_rows(cache).values() if row_stage == stage]


# ------------------------------------------------------------------------------------------ transformers serve


@pytest.mark.slow
def test_chat_completions_two_stages_on_transformers_serve_and_its_cache(chat_server, chat_model, tmp_path):
    """``transformers serve`` opens a new assistant turn for every request, so stage 2 is a follow-up turn; the
    chat responses are cached and reused like completions ones, and never serve a completions teacher."""
    chat = args_text(base="local-chat-completions", base_url=chat_server, model=chat_model)
    cache = tmp_path / "cache" / "teacher"
    first = fcot_eval(*teacher_run(chat, cache, "one"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert CACHE_LINE.format(0, 2, 0, 2) in first.stdout
    results, samples = results_and_samples(tmp_path / "one")
    config = results["config"]
    assert config["zscot_stage2_chat"] == FOLLOW_UP and config["zscot_engine"] == "local"
    assert config["zscot_n_per_request"] == 1
    assert config["fcot_teacher_accounting"]["requests"] == 4
    assert config["fcot_teacher_accounting"]["token_sources"] == ["server usage"]
    for sample in samples:
        assert "\nTherefore, the answer is" in sample["resps"][0][0]
    # lm-eval's --apply_chat_template sends the same messages zscot makes of a plain prompt: all reused
    again = fcot_eval(*teacher_run(chat, cache, "two", "--apply_chat_template"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert CACHE_LINE.format(2, 0, 2, 0) in again.stdout
    same = results_and_samples(tmp_path / "two")[1]
    assert [s["resps"] for s in same] == [s["resps"] for s in samples]
    # the completions endpoint of the same server is another teacher in the same ledger: nothing of the chat one
    completions = args_text(
        base="local-completions",
        base_url=chat_server.replace("/chat/", "/"),
        model=chat_model,
        tokenized_requests=False,
    )
    other = fcot_eval(*teacher_run(completions, cache, "three"), cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-3000:]
    assert CACHE_LINE.format(0, 2, 0, 2) in other.stdout
    assert len(cache_rows(tmp_path / "cache" / "teacher_rank0.fcot.sqlite")) == 8


def test_chat_completions_follow_up_turn_is_the_stage_2_request(chat_server, chat_model, tmp_path):
    """Stage 2 of a chat teacher without continue-final-message: the rationale as the assistant's message, the
    trigger as the next user turn, and the reply after the trigger with a restated trigger removed."""
    cache = tmp_path / "teacher.sqlite"
    lm = ZeroShotCoT.create_from_arg_string(
        args_text(base="local-chat-completions", base_url=chat_server, model=chat_model, cache=cache)
    )
    assert lm.stage2_chat == FOLLOW_UP
    from lm_eval.api.instance import Instance

    doc = {"fcot_task": "coin_flip", "question": "A coin is heads up. Is it still heads up?"}
    prompt = "Q: A coin is heads up. Is it still heads up?\nA: Let's think step by step."
    request = Instance("generate_until", doc, (prompt, {"max_gen_toks": 6, "until": ["\nQ:"], "do_sample": False}), 0)
    (response,) = lm.generate_until([request])
    (rationale,) = stage_texts(cache, 1)
    (reply,) = stage_texts(cache, 2)
    messages = stage2_messages(as_messages(prompt), rationale, lm.answer_trigger, FOLLOW_UP)
    assert messages[-1] == {"role": "user", "content": "Therefore, the answer is"}
    kwargs = {"until": ["\nQ:"], "do_sample": False, "max_gen_toks": lm.answer_max_gen_toks}
    assert lm.cache.get(lm.cache.key(2, messages_text(messages), kwargs, 0)) == reply
    assert response.startswith(f"{rationale}\nTherefore, the answer is")
    lm.cache.close()


@pytest.mark.slow
def test_openai_chat_completions_takes_its_key_from_the_environment(chat_server, chat_model, tmp_path):
    """``base=openai-chat-completions`` with ``OPENAI_API_KEY`` set: the client OpenAI users run, pointed at a
    local server; the key is sent, and reaches no file and no output."""
    model_args = args_text(base="openai-chat-completions", base_url=chat_server, model=chat_model)
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    run = fcot_eval(*teacher_run(model_args, tmp_path / "cache" / "teacher", "out"), cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert CACHE_LINE.format(0, 2, 0, 2) in run.stdout
    results = results_and_samples(tmp_path / "out")[0]
    assert results["config"]["zscot_stage2_chat"] == FOLLOW_UP
    assert SECRET not in run.stdout + run.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    # without the key: one line saying which variable to set
    env.pop("OPENAI_API_KEY")
    missing = fcot_eval(*teacher_run(model_args, tmp_path / "cache2" / "teacher", "out2"), cwd=tmp_path, env=env)
    assert missing.returncode != 0 and "OPENAI_API_KEY" in missing.stderr


def test_chat_completions_teacher_args_pass_fcot_distills_checks_and_typos_do_not():
    from fcot_plugin.pipeline.preflight import check_teacher
    from fcot_plugin.teacher.spec import TeacherSpec

    url = "http://127.0.0.1:8000/v1/chat/completions"
    chat = f"base=local-chat-completions,base_url={url},model=m,stage2_chat=continue"
    good = TeacherSpec.parse(f"{chat},n_per_request=4")
    check_teacher(good, "", None)
    # n_per_request changes how requests travel, not the teacher: the same stage fingerprint
    assert good.identity() == TeacherSpec.parse(chat).identity()
    with pytest.raises(FcotError, match="'stage2_chats' is not an argument of zscot .* did you mean 'stage2_chat'"):
        check_teacher(TeacherSpec.parse(f"base=local-chat-completions,base_url={url},stage2_chats=x"), "", None)
    with pytest.raises(ValueError, match=r"stage2_chat='again': use one of auto, continue, follow_up"):
        ZeroShotCoT.create_from_arg_string(f"base=local-chat-completions,base_url={url},stage2_chat=again")


# ------------------------------------------------------------------------------------------------ local hf


@pytest.mark.slow
def test_chat_completions_local_hf_teacher_is_prompted_through_its_chat_template(chat_model, tmp_path):
    """A local ``hf`` teacher with ``--apply_chat_template``: stage 1 is the templated user turn and stage 2
    continues the assistant's turn; ``apply_chat_template=true`` in the model args (``fcot distill``) sends the
    same prompts, so its run reuses every response."""
    hf = args_text(base="hf", pretrained=chat_model, device="cpu")
    cache = tmp_path / "cache" / "teacher"
    first = fcot_eval(*teacher_run(hf, cache, "one", "--apply_chat_template", "--batch_size", "2"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert CACHE_LINE.format(0, 2, 0, 2) in first.stdout
    results, samples = results_and_samples(tmp_path / "one")
    assert results["config"]["zscot_chat_template"] is True
    for sample in samples:
        context = sample["arguments"]["gen_args_0"]["arg_0"]
        assert context.startswith("<s>user\nQ: ") and context.endswith("Let's think step by step.</s>\n<s>assistant\n")
    own = fcot_eval(*teacher_run(f"{hf},apply_chat_template=true", cache, "two", "--batch_size", "2"), cwd=tmp_path)
    assert own.returncode == 0, own.stderr[-3000:]
    assert CACHE_LINE.format(2, 0, 2, 0) in own.stdout
    plain = fcot_eval(*teacher_run(hf, cache, "three", "--batch_size", "2"), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert CACHE_LINE.format(0, 2, 0, 2) in plain.stdout  # without the template: other prompts, other entries


# ---------------------------------------------------------------------------------------------------- vLLM


@pytest.mark.vllm
@pytest.mark.slow
def test_chat_completions_vllm_continues_the_assistant_message_with_kojimas_prompt(vllm_server, student, tmp_path):
    """On vLLM, stage 2 continues the assistant's message (``continue_final_message``): the answer is the text the
    completions endpoint gives for Kojima's stage-2 prompt rendered inside the assistant's turn."""
    from lm_eval.api.instance import Instance
    from transformers import AutoTokenizer

    chat_url = vllm_server.base_url.replace("/v1/completions", "/v1/chat/completions")
    cache = tmp_path / "teacher.sqlite"
    lm = ZeroShotCoT.create_from_arg_string(
        args_text(base="local-chat-completions", base_url=chat_url, model=vllm_server.model, cache=cache)
    )
    assert lm.stage2_chat == CONTINUE and lm.get_model_info()["zscot_engine"] == "vllm"
    doc = {"fcot_task": "coin_flip", "question": "A coin is heads up. Ka flips it. Is the coin still heads up?"}
    prompt = f"Q: {doc['question']}\nA: Let's think step by step."
    request = Instance("generate_until", doc, (prompt, {"max_gen_toks": 48, "until": ["\nQ:"], "do_sample": False}), 0)
    (response,) = lm.generate_until([request])
    lm.cache.close()
    (rationale,) = stage_texts(cache, 1)
    (answer,) = stage_texts(cache, 2)
    assert response == f"{rationale}{lm.answer_trigger}{answer}"
    tokenizer = AutoTokenizer.from_pretrained(student)
    messages = stage2_messages(as_messages(prompt), rationale, lm.answer_trigger, CONTINUE)
    kojima = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    assert kojima.endswith(f"{rationale}\nTherefore, the answer is")
    same = requests.post(
        vllm_server.base_url,
        timeout=300,
        json={
            "model": vllm_server.model,
            "prompt": kojima,
            "max_tokens": lm.answer_max_gen_toks,
            "temperature": 0,
            "stop": list(STAGE2_STOP_SEQUENCES),
            "add_special_tokens": False,
        },
    )
    assert same.ok, same.text
    assert same.json()["choices"][0]["text"] == answer


def diverse_run(model_args: str, cache: Path, out: str, samples: int, questions: int) -> list[str]:
    return [
        *FCOT_EVAL,
        "--model",
        "zscot",
        "--model_args",
        model_args,
        "--tasks",
        "fcot_coin_flip_teacher_diverse",
        "--metadata",
        json.dumps({"fcot_samples": samples}),
        "--limit",
        str(questions),
        "--gen_kwargs",
        "max_gen_toks=24",
        "--use_cache",
        str(cache),
        "--log_samples",
        "--output_path",
        out,
    ]


def cache_keys(path: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT key, stage FROM responses"))


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["completions", "chat_completions"])
def test_vllm_diverse_n_samples_in_one_request_cache_as_many_samples(vllm_server, tmp_path, endpoint):
    """D samples of a question in one request (``n=D``) leave as many cache entries, one per sample under the key
    its separate request would have, as D separate requests (``n_per_request=1``), in a D-th of the stage-1
    requests."""
    samples, questions = 4, 2
    if endpoint == "completions":
        base = vllm_server.teacher_args()
    else:
        chat_url = vllm_server.base_url.replace("/v1/completions", "/v1/chat/completions")
        base = args_text(
            base="local-chat-completions",
            base_url=chat_url,
            model=vllm_server.model,
            num_concurrent=vllm_server.num_concurrent,
        )
    runs = {}
    for name, extra in (("together", ""), ("apart", ",n_per_request=1")):
        cache = tmp_path / name / "teacher"
        run = subprocess.run(
            diverse_run(base + extra, cache, f"out-{name}", samples, questions),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        total = samples * questions
        assert CACHE_LINE.format(0, total, 0, total) in run.stdout
        results, logged = results_and_samples(tmp_path / f"out-{name}")
        runs[name] = (results["config"], cache_keys(tmp_path / name / "teacher_rank0.fcot.sqlite"), logged)
    together, apart = runs["together"], runs["apart"]
    assert together[0]["zscot_n_per_request"] == "D" and apart[0]["zscot_n_per_request"] == 1
    # one stage-1 request per question instead of one per sample; stage 2 asks one answer per rationale either way
    assert together[0]["fcot_teacher_accounting"]["requests"] == questions + samples * questions
    assert apart[0]["fcot_teacher_accounting"]["requests"] == 2 * samples * questions
    # the same rationale entries, one per sample (the answers' keys hold the rationales, which differ)
    rationale_keys = [{key for key, stage in keys.items() if stage == 1} for keys in (together[1], apart[1])]
    assert rationale_keys[0] == rationale_keys[1] and len(rationale_keys[0]) == samples * questions
    assert sorted(together[1].values()) == sorted(apart[1].values())  # as many entries of each stage
    for logged in together[2]:
        rationales = [response.split("\nTherefore, the answer is")[0] for response in logged["resps"][0]]
        assert len(rationales) == samples and len(set(rationales)) > 1, "the n samples should differ"


# ----------------------------------------------------------------------------------------------- llama.cpp


FCOT_CACHE = Path(os.environ.get("FCOT_CACHE", Path.home() / ".cache" / "fcot"))


def chat_gguf() -> Path | None:
    """The smallest Qwen GGUF in fcot's cache (an instruct model with a chat template), else the smallest GGUF."""
    ggufs = FCOT_CACHE.glob("**/*.gguf")
    found = sorted(ggufs, key=lambda gguf: ("qwen" not in gguf.name.lower(), gguf.stat().st_size))
    return found[0] if found else None


@pytest.fixture(scope="module")
def llama_server(llama_server_binary, tmp_path_factory):
    """llama.cpp's ``llama-server`` on the smallest Qwen GGUF of ``make teacher``, for the module."""
    import time

    binary, gguf = llama_server_binary, chat_gguf()
    if gguf is None:
        pytest.skip("no GGUF teacher under ~/.cache/fcot: run `make teacher` first")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "llama-server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                str(binary),
                "-m",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "-c",
                "4096",
                "-t",
                str(os.cpu_count() or 1),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        models = f"http://127.0.0.1:{port}/v1/models"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if requests.get(models, timeout=5).ok:
                    break
            except requests.exceptions.RequestException:
                pass
            assert server.poll() is None, log_path.read_text()[-2000:]
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1", requests.get(models, timeout=5).json()["data"][0]["id"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["llamacpp"])
def test_chat_completions_llamacpp_continues_the_assistant_message(engine, llama_server, tmp_path):
    """``llama-server`` continues a final assistant message and sends the whole message back: the answer is the
    continuation alone."""
    root, model = llama_server
    model_args = args_text(base="local-chat-completions", base_url=f"{root}/chat/completions", model=model)
    cache = tmp_path / "cache" / "teacher"
    run = fcot_eval(*teacher_run(model_args, cache, "out", tokens=48), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert CACHE_LINE.format(0, 2, 0, 2) in run.stdout
    results, samples = results_and_samples(tmp_path / "out")
    assert results["config"]["zscot_engine"] == engine and results["config"]["zscot_stage2_chat"] == CONTINUE
    replies = stage_texts(tmp_path / "cache" / "teacher_rank0.fcot.sqlite", 2)
    for sample in samples:
        (response,) = sample["resps"][0]
        assert response.count("\nTherefore, the answer is") >= 1
        rationale, answer = response.rsplit("\nTherefore, the answer is", 1)
        assert f"{rationale}\nTherefore, the answer is{answer}" in replies  # the whole message came back


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["llamacpp"])
def test_llamacpp_diverse_n_samples_in_one_request_cache_as_many_samples(engine, llama_server, tmp_path):
    samples, questions = 3, 2
    root, model = llama_server
    base = args_text(base="local-chat-completions", base_url=f"{root}/chat/completions", model=model, num_concurrent=4)
    runs = {}
    for name, extra in (("together", ""), ("apart", ",n_per_request=1")):
        cache = tmp_path / name / "teacher"
        run = subprocess.run(
            diverse_run(base + extra, cache, f"out-{name}", samples, questions),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        config = results_and_samples(tmp_path / f"out-{name}")[0]["config"]
        runs[name] = (config, cache_keys(tmp_path / name / "teacher_rank0.fcot.sqlite"))
    assert runs["together"][0]["zscot_engine"] == engine
    assert runs["together"][0]["fcot_teacher_accounting"]["requests"] == questions + samples * questions
    assert runs["apart"][0]["fcot_teacher_accounting"]["requests"] == 2 * samples * questions
    rationale_keys = [{key for key, stage in keys.items() if stage == 1} for _, keys in runs.values()]
    assert rationale_keys[0] == rationale_keys[1] and len(rationale_keys[0]) == samples * questions
    assert sorted(runs["together"][1].values()) == sorted(runs["apart"][1].values())


@pytest.mark.slow
def test_llamacpp_n_never_exceeds_the_servers_slots(llama_server, tmp_path):
    """``llama-server`` answers ``n`` above its slots with HTTP 400: D=6 on its 4 slots goes out as n=4 and n=2.
    (MultiArith's train split repeats 12 questions, whose samples share one prompt: at D=4 they asked n=6.)"""
    root, model = llama_server
    assert features_of(f"{root}/completions").max_n == 4  # --parallel auto: 4 slots
    base = args_text(
        base="local-completions",
        base_url=f"{root}/completions",
        model=model,
        tokenizer_backend="none",
        tokenized_requests=False,
    )
    cache = tmp_path / "teacher"
    run = subprocess.run(
        diverse_run(base, cache, "out", samples=6, questions=1), cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    config = results_and_samples(tmp_path / "out")[0]["config"]
    assert config["zscot_n_per_request"] == 4
    assert config["fcot_teacher_accounting"]["requests"] == 2 + 6  # stage 1: n=4 and n=2; stage 2: one per sample
    assert sorted(cache_keys(tmp_path / "teacher_rank0.fcot.sqlite").values()) == [1] * 6 + [2] * 6
