"""Round trips through the local Hub server with the real clients (huggingface_hub, transformers, datasets).

Why: the recipes push models and datasets to the Hub and load them back; these tests prove that ``hub_server`` is
faithful enough for that, so other tests can rely on it. Everything runs on 127.0.0.1 with per-test caches, and the
offline mode set in conftest.py is lifted only inside each test (monkeypatch undoes it).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers.hub_server import HubSession, local_hub_session


def _request(url: str, *, method: str = "GET", token: str | None = None, body: bytes | None = None):
    """A bare stdlib HTTP call, to check what the server answers without any client-side interpretation."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_whoami_and_token_checks(hub: HubSession, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    assert HfApi(endpoint=hub.endpoint, token=hub.token).whoami()["name"] == hub.hub.user
    assert HfApi().whoami()["name"] == hub.hub.user  # HF_TOKEN + patched ENDPOINT are enough

    with pytest.raises(HfHubHTTPError, match="Invalid user token") as error:
        HfApi(endpoint=hub.endpoint, token="hf_wrong").whoami()
    assert error.value.response.status_code == 401
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(LocalTokenNotFoundError):
        HfApi(endpoint=hub.endpoint).whoami()

    status, headers, body = _request(f"{hub.endpoint}/api/whoami-v2")
    assert status == 401 and "error" in json.loads(body)
    status, _, body = _request(
        f"{hub.endpoint}/api/repos/create", method="POST", body=json.dumps({"name": "nope"}).encode()
    )
    assert status == 401 and "token" in json.loads(body)["error"]
    status, headers, _ = _request(f"{hub.endpoint}/api/models/user/missing")
    assert status == 404 and headers["X-Error-Code"] == "RepoNotFound"


def test_upload_folder_snapshot_and_file_download(hub: HubSession, tmp_path: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    folder = tmp_path / "upload"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"a": 1}))
    blob = b"\0" + os.urandom(100_000)  # binary (NUL in the first 512 bytes) => LFS, like on the Hub
    (folder / "sub" / "weights.dat").write_bytes(blob)

    repo_url = api.create_repo("user/files")
    assert repo_url.repo_id == "user/files"
    with pytest.raises(Exception) as conflict:
        api.create_repo("user/files")
    assert conflict.value.response.status_code == 409
    api.create_repo("user/files", exist_ok=True)

    first = api.upload_folder(repo_id="user/files", folder_path=folder, commit_message="first")
    assert any("/info/lfs/objects/batch" in line for line in hub.hub.request_log)
    (folder / "config.json").write_text(json.dumps({"a": 2}))
    second = api.upload_folder(repo_id="user/files", folder_path=folder, commit_message="second")
    assert first.oid != second.oid and len(second.oid) == 40

    info = api.model_info("user/files", files_metadata=True)
    assert info.sha == second.oid
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {".gitattributes", "config.json", "sub/weights.dat"}
    assert siblings["sub/weights.dat"].lfs is not None and siblings["sub/weights.dat"].size == len(blob)
    assert siblings["config.json"].lfs is None

    snapshot = Path(snapshot_download("user/files"))
    assert (snapshot / "sub" / "weights.dat").read_bytes() == blob
    assert json.loads((snapshot / "config.json").read_text()) == {"a": 2}
    assert snapshot.name == second.oid

    old = hf_hub_download("user/files", "config.json", revision=first.oid)
    assert json.loads(Path(old).read_text()) == {"a": 1}
    assert json.loads(Path(hf_hub_download("user/files", "config.json")).read_text()) == {"a": 2}

    assert [c.title for c in api.list_repo_commits("user/files")] == ["second", "first", "initial"]
    tree = {entry.path for entry in api.list_repo_tree("user/files", recursive=True)}
    assert tree == {".gitattributes", "config.json", "sub", "sub/weights.dat"}

    with pytest.raises(EntryNotFoundError):
        hf_hub_download("user/files", "missing.txt")
    with pytest.raises(RevisionNotFoundError):  # one branch, main; other revisions are commit shas
        hf_hub_download("user/files", "config.json", revision="no-such-branch")
    assert [e.path for e in api.list_repo_tree("user/files", path_in_repo="sub")] == ["sub/weights.dat"]
    with pytest.raises(EntryNotFoundError):  # transformers probes optional folders this way
        list(api.list_repo_tree("user/files", path_in_repo="nope"))
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/missing", "config.json")


def test_transformers_push_and_from_pretrained(hub: HubSession) -> None:
    import torch
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    model = LlamaForCausalLM(config)
    model.push_to_hub("user/tiny")

    loaded = AutoModelForCausalLM.from_pretrained("user/tiny")
    expected, actual = model.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, actual[name]), name

    card = ModelCard("---\nlicense: mit\ntags:\n- fcot\n---\n\n# Tiny\n\nA tiny test model.\n")
    card.push_to_hub("user/tiny")
    loaded_card = ModelCard.load("user/tiny")
    assert loaded_card.data.license == "mit" and loaded_card.data.tags == ["fcot"]
    assert "A tiny test model." in loaded_card.text


def test_datasets_push_and_load(hub: HubSession) -> None:
    import datasets

    rows = {"prompt": [f"Q{i}?" for i in range(5)], "completion": [f"A{i}." for i in range(5)]}
    datasets.Dataset.from_dict(rows).push_to_hub("user/ds")

    loaded = datasets.load_dataset("user/ds", split="train")
    assert loaded.to_dict() == rows


def test_protocol_edges(hub: HubSession) -> None:
    import hashlib
    import http.client
    from urllib.parse import urlsplit

    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    api.create_repo("user/edges", private=True)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.endpoint, token=False).model_info("user/edges")
    head = api.model_info("user/edges").sha
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt", repo_id="user/edges")
    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            "user/edges", operations=[CommitOperationAdd("b.txt", b"x")], commit_message="late", parent_commit=head
        )
    assert stale.value.response.status_code == 412

    # Raw LFS protocol, with a chunked request body (what a streaming client may send).
    data = b"\0lfs payload" * 1000
    oid = hashlib.sha256(data).hexdigest()
    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}
    status, _, body = _request(
        f"{hub.endpoint}/user/edges.git/info/lfs/objects/batch",
        method="POST",
        token=hub.token,
        body=json.dumps(batch).encode(),
    )
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    url = urlsplit(href)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("PUT", f"{url.path}?{url.query}", body=iter([data[:5000], data[5000:]]), encode_chunked=True)
    assert connection.getresponse().status == 200
    connection.close()
    assert hub.hub.has_object(oid)
    status, _, _ = _request(href, method="PUT", body=data)  # tickets are single-use
    assert status == 403
    api.create_commit(
        "user/edges",
        operations=[CommitOperationAdd("big.bin", data)],  # already uploaded: the client skips the PUT
        commit_message="lfs",
    )
    status, headers, content = _request(f"{hub.endpoint}/user/edges/resolve/main/big.bin", token=hub.token)
    assert status == 200 and content == data and headers["X-Linked-Etag"] == f'"{oid}"'


def test_faults_accounts_and_repo_deletion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    orgs = {"lab": "write", "ro": "read"}
    with local_hub_session(tmp_path, monkeypatch, orgs=orgs, restrict_writes=True) as session:
        hub, api = session.hub, HfApi(endpoint=session.endpoint, token=session.token)
        me = api.whoami()
        assert [(org["name"], org["roleInOrg"]) for org in me["orgs"]] == list(orgs.items())
        assert me["auth"]["accessToken"]["role"] == "write"

        fault = hub.inject_fault("POST", r"^/api/repos/create$", nth=2)  # the second create only
        api.create_repo("lab/a")
        with pytest.raises(HfHubHTTPError) as failed:
            api.create_repo("lab/b")
        assert failed.value.response.status_code == 500 and "Injected fault" in str(failed.value)
        assert hub.repo_files("model", "lab/b") is None  # answered before the hub looked at it
        api.create_repo("lab/b")
        assert (fault.seen, fault.fired) == (3, 1)

        for namespace in ("ro", "elsewhere"):  # restrict_writes: like the Hub, no write outside one's namespaces
            with pytest.raises(HfHubHTTPError) as refused:
                api.create_repo(f"{namespace}/x")
            assert refused.value.response.status_code == 403

        hub.inject_fault("DELETE", r"^/api/repos/delete$", status=503, times=None)
        for _ in range(2):
            with pytest.raises(HfHubHTTPError):
                api.delete_repo("lab/a")
        hub.clear_faults()
        api.delete_repo("lab/a")
        assert not api.repo_exists("lab/a") and hub.repo_files("model", "lab/a") is None
        with pytest.raises(RepositoryNotFoundError):
            api.delete_repo("lab/a")
        api.delete_repo("lab/a", missing_ok=True)

        hub.inject_fault("POST", r"/commit/main$", after=True)  # carried out, the answer lost
        with pytest.raises(HfHubHTTPError):
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="lab/b")
        assert set(hub.repo_files("model", "lab/b")) == {".gitattributes", "x.txt"}
        assert list(hub.heads()) == [("model", "lab/b")]
    assert not hub.errors, "\n".join(hub.errors)
