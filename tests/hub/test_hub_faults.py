"""A student and its dataset pushed as a pair through a local Hub that fails on purpose: at every step the Hub holds
nothing or the complete model (never data without it, never an empty repo), the error is one line naming what is
published and the command that finishes, and that command completes the pair and changes nothing when run again.

No training: a tiny student folder (config, small safetensors, card, a checkpoint that must stay home) and the
coin_flip dataset curated from the paper's rationales, saved the way ``fcot curate`` saves it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers.hub_server import commit_titles, local_hub_session

from fcot_plugin.hub.push import (
    DATA_COMMIT,
    MODEL_COMMIT,
    HubError,
    PushIncomplete,
    check_push_target,
    main,
    publish_student,
    push_dataset,
    student_repo_ids,
    write_denial,
)

NAMESPACE = "team"  # an organisation the local Hub's user can write to
MODEL, DATA = student_repo_ids(f"{NAMESPACE}/tiny-student-fcot-coin_flip")
MODEL_FILES = {".gitattributes", "README.md", "config.json", "model.safetensors"}  # checkpoint-1/ stays home
DATA_FILES = {".gitattributes", "README.md", "data/train-00000-of-00001.parquet"}
DISTILL_AGAIN = "run the same fcot distill command again"
# the `hub` fixture's accounts (tests/conftest.py): writes only where the user or an organisation may write
pytestmark = pytest.mark.hub(orgs={NAMESPACE: "write", "readers": "read"}, restrict_writes=True)


@pytest.fixture(scope="module")
def dataset_dir(curated_dataset) -> Path:
    """The whole curated Coin Flip set, pushed beside the student."""
    return curated_dataset("coin_flip", rows=None)


@pytest.fixture
def student_dir(tmp_path: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    from fcot_plugin.hub.cards import model_card

    folder = tmp_path / "student"
    (folder / "checkpoint-1").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    save_file({"weight": np.arange(64, dtype=np.float32).reshape(8, 8)}, str(folder / "model.safetensors"))
    shutil.copy(folder / "model.safetensors", folder / "checkpoint-1" / "model.safetensors")
    card = model_card(
        model_name="tiny-student",
        base_model="tiny",
        task="coin_flip",
        dataset="team/data",
        dataset_format="fcot",
        hyperparameters={"learning_rate": 3e-4},
    )
    (folder / "README.md").write_text(str(card))
    return folder


@pytest.fixture(autouse=True)
def _no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """preupload and the LFS calls are retried on 5xx with 1 s, 2 s, 4 s... waits: no waiting here."""
    import huggingface_hub.utils._http as client_http

    monkeypatch.setattr(client_http, "time", SimpleNamespace(sleep=lambda seconds: None))


def add_result(folder: Path) -> None:
    """What ``fcot distill``'s push does to the card first: the test accuracy into its model-index."""
    from huggingface_hub import ModelCard

    from fcot_plugin.hub.cards import eval_result, with_eval_result

    card = with_eval_result(ModelCard.load(folder / "README.md"), eval_result("coin_flip", 0.5, limit=2), "coin_flip")
    card.save(folder / "README.md")


def publish(student_dir: Path, dataset_dir: Path) -> dict[str, str]:
    return publish_student(student_dir, dataset_dir, MODEL, DATA, card_update=add_result, also=DISTILL_AGAIN)


def files(local_hub, repo_type: str, repo_id: str) -> set[str] | None:
    found = local_hub.repo_files(repo_type, repo_id)
    return None if found is None else set(found)


def assert_never_half_published(local_hub) -> None:
    """No data without its complete model, and no repo that holds nothing."""
    model, data = files(local_hub, "model", MODEL), files(local_hub, "dataset", DATA)
    assert model in (None, MODEL_FILES)
    assert data is None or (data == DATA_FILES and model == MODEL_FILES)
    for repo_type, repo_id in local_hub.heads():
        assert files(local_hub, repo_type, repo_id) - {".gitattributes"}, f"empty {repo_type} repo {repo_id}"


def assert_pair_complete(local_hub) -> None:
    assert files(local_hub, "model", MODEL) == MODEL_FILES and files(local_hub, "dataset", DATA) == DATA_FILES
    assert commit_titles(MODEL, "model") == [MODEL_COMMIT] and commit_titles(DATA, "dataset") == [DATA_COMMIT]


def finish(error: PushIncomplete) -> dict[str, str]:
    """The finishing command the error printed, run in this process (``python -m fcot_plugin.hub.push ...``)."""
    argv = shlex.split(error.finish)
    assert argv[:3] == ["python", "-m", "fcot_plugin.hub.push"]
    return main(argv[3:])


def writes(local_hub) -> list[str]:
    return [line for line in local_hub.request_log if line.split()[0] in ("POST", "PUT", "DELETE")]


def test_the_pair_goes_model_first_in_one_commit_each_and_a_second_push_changes_nothing(
    local_hub, student_dir, dataset_dir
):
    urls = publish(student_dir, dataset_dir)
    assert urls["model"].endswith(f"/{MODEL}") and urls["dataset"].endswith(f"/datasets/{DATA}")
    assert_pair_complete(local_hub)
    log = list(local_hub.request_log)
    first = {key: next(i for i, line in enumerate(log) if key in line) for key in ("repos/create", DATA)}
    model_commit = log.index(f"POST /api/models/{MODEL}/commit/main 200")
    assert log[0] == "GET /api/whoami-v2 200" and first["repos/create"] < model_commit < first[DATA]
    assert "fcot_coin_flip acc (first 2 questions)" in (student_dir / "README.md").read_text()  # card_update ran
    heads = local_hub.heads()
    publish(student_dir, dataset_dir)  # what re-running fcot distill does: the card update again, then the pair
    finish_argv = [
        "--student_dir",
        str(student_dir),
        "--model_repo",
        MODEL,
        "--dataset_dir",
        str(dataset_dir),
        "--dataset_repo",
        DATA,
    ]
    main(finish_argv)
    assert local_hub.heads() == heads  # identical files: no commit at all


# (name, method, path pattern, nth matching request, how many fail (None: all), the model is published)
STEPS = [
    ("whoami", "GET", r"^/api/whoami-v2$", 1, 1, False),
    ("model repo check", "GET", rf"^/api/models/{MODEL}$", 1, 1, False),
    ("create model repo", "POST", r"^/api/repos/create$", 1, 1, False),
    ("upload model weights", "POST", rf"^/{MODEL}\.git/info/lfs/objects/batch$", 1, None, False),
    ("commit model", "POST", rf"^/api/models/{MODEL}/commit/main$", 1, 1, False),
    ("create dataset repo", "POST", r"^/api/repos/create$", 2, 1, True),
    ("upload dataset parquet", "POST", rf"^/datasets/{DATA}\.git/info/lfs/objects/batch$", 1, None, True),
    ("commit dataset", "POST", rf"^/api/datasets/{DATA}/commit/main$", 1, 1, True),
]


@pytest.mark.parametrize(
    ("step", "method", "pattern", "nth", "times", "model_published"), STEPS, ids=[step[0] for step in STEPS]
)
def test_a_500_at_each_step_leaves_nothing_or_the_complete_model_and_the_printed_command_finishes(
    local_hub, student_dir, dataset_dir, step, method, pattern, nth, times, model_published
):
    local_hub.inject_fault(method, pattern, nth=nth, times=times)
    with pytest.raises(PushIncomplete) as raised:
        publish(student_dir, dataset_dir)
    error = raised.value
    message = str(error)
    assert "\n" not in message and "HTTP 500" in message
    if model_published:
        assert f"Published: the model {MODEL} (complete, " in message
        assert f"Not published: the dataset {DATA}." in message
        assert files(local_hub, "model", MODEL) == MODEL_FILES
    else:
        assert f"Published: nothing. Not published: the model {MODEL}, the dataset {DATA}." in message
        assert local_hub.heads() == {}
    assert files(local_hub, "dataset", DATA) is None
    assert_never_half_published(local_hub)
    assert "left on the Hub" not in message
    assert message.endswith(f"To finish, run (safe to run twice): {error.finish} (or {DISTILL_AGAIN})")
    assert error.finish == shlex.join(
        [
            "python",
            "-m",
            "fcot_plugin.hub.push",
            "--student_dir",
            str(student_dir),
            "--model_repo",
            MODEL,
            "--dataset_dir",
            str(dataset_dir),
            "--dataset_repo",
            DATA,
        ]
    )

    local_hub.clear_faults()
    finish(error)
    assert_pair_complete(local_hub)
    heads = local_hub.heads()
    finish(error)
    publish(student_dir, dataset_dir)  # or the same fcot distill command: its push runs again
    assert local_hub.heads() == heads


def test_the_printed_command_works_in_a_shell(local_hub, student_dir, dataset_dir):
    local_hub.inject_fault("POST", rf"^/api/datasets/{DATA}/commit/main$")
    with pytest.raises(PushIncomplete) as raised:
        publish(student_dir, dataset_dir)
    local_hub.clear_faults()
    argv = shlex.split(raised.value.finish)
    done = subprocess.run(
        [sys.executable, *argv[1:]], env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"dataset: {hub_url(done.stdout, DATA)}" in done.stdout
    assert_pair_complete(local_hub)


def hub_url(stdout: str, repo_id: str) -> str:
    return next(line.split(": ", 1)[1] for line in stdout.splitlines() if line.endswith(repo_id))


def test_an_empty_repo_the_hub_will_not_delete_is_named_and_the_command_fills_it(local_hub, student_dir, dataset_dir):
    local_hub.inject_fault("POST", rf"^/api/models/{MODEL}/commit/main$")
    local_hub.inject_fault("DELETE", r"^/api/repos/delete$", status=403)
    with pytest.raises(PushIncomplete) as raised:
        publish(student_dir, dataset_dir)
    message = str(raised.value)
    assert "its empty repo could not be deleted" in message and "Published: nothing; left on the Hub: " in message
    assert f"an empty model repo {MODEL} (created by this push; the Hub refused to delete it: HTTP 403" in message
    assert files(local_hub, "model", MODEL) == {".gitattributes"} and files(local_hub, "dataset", DATA) is None
    local_hub.clear_faults()
    finish(raised.value)
    assert_pair_complete(local_hub)


@pytest.mark.parametrize("lost", ["create", "commit"])
def test_a_lost_answer_is_checked_on_the_hub(local_hub, student_dir, dataset_dir, lost):
    """The Hub did the work and the answer was lost: a created repo holding nothing is deleted again; a commit
    that landed counts as pushed (it is never deleted)."""
    if lost == "create":
        local_hub.inject_fault("POST", r"^/api/repos/create$", after=True)
        with pytest.raises(PushIncomplete, match=f"creating the model repo {MODEL} failed .*Published: nothing"):
            publish(student_dir, dataset_dir)
        assert local_hub.heads() == {}
    else:
        local_hub.inject_fault("POST", rf"^/api/models/{MODEL}/commit/main$", after=True)
        local_hub.inject_fault("POST", rf"^/api/datasets/{DATA}/commit/main$", after=True)
        publish(student_dir, dataset_dir)
        assert_pair_complete(local_hub)


def test_a_dataset_alone_is_pushed_the_same_way(local_hub, dataset_dir):
    repo = f"{NAMESPACE}/coin-flip-fcot"
    local_hub.inject_fault("POST", rf"^/api/datasets/{repo}/commit/main$")
    with pytest.raises(PushIncomplete) as raised:
        push_dataset(dataset_dir, repo)
    assert f"Published: nothing. Not published: the dataset {repo}." in str(raised.value)
    assert raised.value.finish == shlex.join(
        ["python", "-m", "fcot_plugin.hub.push", "--dataset_dir", str(dataset_dir), "--dataset_repo", repo]
    )
    assert local_hub.heads() == {}
    local_hub.clear_faults()
    assert finish(raised.value) == {"dataset": f"{hub_endpoint(local_hub)}/datasets/{repo}"}
    heads = local_hub.heads()
    finish(raised.value)
    assert local_hub.heads() == heads and commit_titles(repo, "dataset") == [DATA_COMMIT]


def hub_endpoint(local_hub) -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, d: publish_student(s, d, "team/tiny student", DATA), "'team/tiny student' is not a valid Hub repo"),
        (lambda s, d: publish_student(s, d, MODEL, "team/a/b"), "'team/a/b' is not a Hub repo id"),
        (lambda s, d: push_dataset(d, "coin-flip"), "'coin-flip' is not a Hub repo id; pass <user or organisation>"),
        (lambda s, d: student_repo_ids("team"), "--hub_model_id: 'team' is not a Hub repo id"),
        (lambda s, d: student_repo_ids("team/s", "team/my data"), "--hub_dataset_id: 'team/my data' is not a valid"),
        (lambda s, d: check_push_target([MODEL, "team/x--y"]), "Cannot have -- or .. in repo_id"),
    ],
    ids=["space", "three-parts", "no-namespace", "distill-model-id", "distill-dataset-id", "double-dash"],
)
def test_a_bad_repo_id_fails_before_any_request(local_hub, student_dir, dataset_dir, call, match):
    with pytest.raises(HubError, match=match) as raised:
        call(student_dir, dataset_dir)
    assert not isinstance(raised.value, PushIncomplete) and "\n" not in str(raised.value)
    assert list(local_hub.request_log) == []


@pytest.mark.parametrize(
    ("namespace", "match"),
    [
        (
            "someone-else",
            "cannot push to someone-else/...: 'someone-else' is neither user nor one of its organisations",
        ),
        ("readers", "cannot push to readers/...: user has the read role in readers"),
    ],
)
def test_a_namespace_the_token_cannot_write_to_fails_before_any_write(
    local_hub, student_dir, dataset_dir, namespace, match
):
    model, data = student_repo_ids(f"{namespace}/tiny-fcot-coin_flip")
    with pytest.raises(HubError, match=match) as raised:
        publish_student(student_dir, dataset_dir, model, data, card_update=add_result)
    assert "pass a namespace the token can write to (user, team)" in str(raised.value)
    assert list(local_hub.request_log) == ["GET /api/whoami-v2 200"] and not writes(local_hub)
    assert check_push_target([f"{NAMESPACE}/a", "user/b"]) == "user"


def test_a_read_token_or_a_refused_token_fails_before_any_write(tmp_path, monkeypatch, student_dir, dataset_dir):
    with local_hub_session(tmp_path, monkeypatch, token_role="read", restrict_writes=True) as session:
        with pytest.raises(HubError, match="cannot push to user/...: the token of user is read-only"):
            publish_student(student_dir, dataset_dir, "user/x", "user/x-data")
        monkeypatch.setenv("HF_TOKEN", "hf_not_the_token")
        with pytest.raises(HubError, match="needs a valid token .the Hub refused it: HTTP 401") as raised:
            publish_student(student_dir, dataset_dir, "user/x", "user/x-data")
        assert not isinstance(raised.value, PushIncomplete)
        assert not writes(session.hub) and session.hub.heads() == {}


def test_write_denial_reads_roles_and_fine_grained_tokens():
    def account(role: str, orgs=(), scoped=()) -> dict:
        token = {"role": role, "fineGrained": {"global": ["discussion.write"], "scoped": list(scoped)}}
        return {"name": "ada", "orgs": [{"name": n, "roleInOrg": r} for n, r in orgs], "auth": {"accessToken": token}}

    assert write_denial(account("write"), "ada") is None
    assert write_denial(account("write"), "Ada") is None  # namespaces are case-insensitive on the Hub
    assert write_denial(account("write", [("lab", "contributor")]), "lab") is None
    assert write_denial(account("write", [("lab", "read")]), "lab") == "ada has the read role in lab"
    assert write_denial(account("read"), "ada") == "the token of ada is read-only"
    assert "neither ada nor" in write_denial(account("write"), "lab")
    own = {"entity": {"type": "user", "name": "ada"}, "permissions": ["repo.content.read", "repo.write"]}
    lab = {"entity": {"type": "org", "name": "lab"}, "permissions": ["repo.content.read"]}
    fine = account("fineGrained", [("lab", "write")], [own, lab])
    assert write_denial(fine, "ada") is None
    assert write_denial(fine, "lab") == "the fine-grained token of ada has no repo.write permission on lab"
