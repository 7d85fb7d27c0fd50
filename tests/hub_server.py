"""A small, real, Hub-compatible HTTP server for the test-suite (standard library only).

Why: pushing to and pulling from "the Hub" must be testable without internet. ``LocalHub`` keeps git-like repos
(models, datasets, spaces) on disk and answers the HTTP endpoints that ``huggingface_hub`` 2.4 calls, so the *real*
clients (``HfApi``, ``hf_hub_download``, ``snapshot_download``, ``HfFileSystem``, transformers' ``push_to_hub`` /
``from_pretrained``, datasets' ``push_to_hub`` / ``load_dataset``) round-trip on 127.0.0.1.

Usage from a test module (``local_hub_session`` wraps ``serve_local_hub`` + ``configure_clients_for``)::

    @pytest.fixture
    def hub(tmp_path, monkeypatch):
        with local_hub_session(tmp_path, monkeypatch) as session:
            yield session  # session.endpoint, session.token, session.hub (LocalHub: .request_log, .errors)

Endpoints (``{type}s`` is ``models`` / ``datasets`` / ``spaces``; ``{id}`` is ``namespace/name``; revisions are
branch names, tag names or full 40-hex commit shas)::

    GET    /api/whoami-v2                                  token check (401 + JSON error without a valid token)
    POST   /api/repos/create                               409 if it exists (the client's exist_ok relies on it)
    DELETE /api/repos/delete
    POST   /api/validate-yaml                              always valid (no YAML parser in the stdlib)
    GET    /api/{type}s/{id}[/revision/{rev}]              repo info: sha, siblings (+ size/blobId/lfs with blobs=1)
    POST   /api/{type}s/{id}/preupload/{rev}               "lfs" for .gitattributes patterns, binary or >10 MiB
    POST   /api/{type}s/{id}/commit/{rev}                  NDJSON: header / file (base64) / lfsFile / deletedFile /
                                                           deletedFolder; parentCommit -> 412 when stale
    POST   /api/{type}s/{id}/paths-info/{rev}              form or JSON body: paths=..., expand=...
    GET    /api/{type}s/{id}/tree/{rev}[/{path}]           recursive / expand / cursor pagination (Link header)
    GET    /api/{type}s/{id}/refs                          branches, tags
    GET    /api/{type}s/{id}/commits/{rev}                 history, newest first
    POST   /api/{type}s/{id}/branch/{branch}               startingPoint; 409 if it exists
    DELETE /api/{type}s/{id}/branch/{branch}
    POST   /api/{type}s/{id}/tag/{rev}                     {"tag": ...}; 409 if it exists
    POST   /[{type}s/]{id}.git/info/lfs/objects/batch      LFS batch API ("basic" transfer, upload only)
    PUT    /_lfs/upload/{sha256}?ticket=...                LFS object upload (checked against its sha256)
    GET|HEAD /[{type}s/]{id}/resolve/{rev}/{path}          ETag, X-Repo-Commit, X-Linked-Etag/-Size, Range

Errors carry the headers the client maps to exceptions: ``X-Error-Code: RepoNotFound`` (RepositoryNotFoundError),
``RevisionNotFound`` (RevisionNotFoundError), ``EntryNotFound`` (EntryNotFoundError, with ``X-Repo-Commit``).
Writes accept any namespace. Private repos read as missing without the token. Xet is never offered: the client must
run with ``HF_HUB_DISABLE_XET=1``. Pull requests (``create_pr``) are answered with 400.

Knobs that point the clients at the server (``configure_clients_for`` sets all of them through ``monkeypatch``, so
they are undone after each test). The libraries read most settings once, at import time, so environment variables
alone are not enough once they are imported:

* environment: ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE=0``, ``HF_DATASETS_OFFLINE=0``,
  ``TRANSFORMERS_OFFLINE=0``, ``HF_HUB_DISABLE_XET=1``, ``HF_HUB_DISABLE_TELEMETRY=1``,
  ``HF_UPDATE_DOWNLOAD_COUNTS=0``, ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_ASSETS_CACHE``, ``HF_XET_CACHE``,
  ``HF_TOKEN_PATH``, ``HF_DATASETS_CACHE``, ``HF_MODULES_CACHE`` (caches in a per-test folder);
  ``HUGGING_FACE_HUB_TOKEN`` and ``HF_HUB_DISABLE_IMPLICIT_TOKEN`` are removed.
* ``huggingface_hub.constants``: ``ENDPOINT`` (``HfApi()``, ``HfFileSystem()``, ``repocard``),
  ``HUGGINGFACE_CO_URL_TEMPLATE`` (``hf_hub_url``: every ``hf_hub_download``), ``HF_URL_HOSTS``,
  ``HF_HUB_OFFLINE`` (``is_offline_mode()``; the request hook refuses all traffic otherwise), ``HF_HUB_DISABLE_XET``,
  ``HF_HUB_DISABLE_TELEMETRY``, ``HF_HUB_DISABLE_IMPLICIT_TOKEN``, ``HF_HOME``, ``HF_HUB_CACHE``,
  ``HUGGINGFACE_HUB_CACHE``, ``HF_ASSETS_CACHE``, ``HF_XET_CACHE``, ``HF_TOKEN_PATH``, ``HF_STORED_TOKENS_PATH``.
* ``huggingface_hub.hf_api.api.endpoint``: the module-level ``create_repo``, ``upload_file``, ``upload_folder``,
  ``model_info``... are bound methods of an ``HfApi()`` built at import time.
* ``transformers.utils.hub._hf_api`` -> ``None``: transformers caches one ``HfApi`` (used by ``push_to_hub``); the
  one built during the test is dropped when monkeypatch puts the previous value back.
* ``datasets.config``: ``HF_ENDPOINT``, ``HUB_DATASETS_URL``, ``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``,
  ``HF_UPDATE_DOWNLOAD_COUNTS`` (else ``load_dataset`` sends a HEAD to S3), ``USE_PARQUET_EXPORT`` (else it asks
  datasets-server), ``HF_CACHE_HOME``, ``HF_DATASETS_CACHE``, ``HF_MODULES_CACHE``, ``DOWNLOADED_DATASETS_PATH``,
  ``EXTRACTED_DATASETS_PATH``.

The libraries are imported by ``configure_clients_for`` *before* it touches the environment: they read it at import
time, and monkeypatch must record the suite's (offline) values to restore. Not redirected: transformers'
``HF_MODULES_CACHE`` (``trust_remote_code`` modules; it is put on ``sys.path`` for good, so a per-test folder would
leak).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import secrets
import socket
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

if TYPE_CHECKING:
    import pytest

DEFAULT_TOKEN = "hf_localtesthubtoken"
DEFAULT_USER = "user"
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub refuses regular (non-LFS) files above 10 MiB
TREE_PAGE_SIZE = 1000  # the Hub's page size for the tree endpoint (50 with expand=True)
TREE_PAGE_SIZE_EXPANDED = 50
MAX_BODY_BYTES = 2 * 1024**3

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")

# The .gitattributes the Hub puts in every new repo: these patterns go through LFS.
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy *.npz "
        "*.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* *.tar.* *.tar "
        "*.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents*"
    ).split()
)


class HubError(Exception):
    """An HTTP error answer, with the ``X-Error-Code`` the client maps to its exceptions."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}  # more fields for the JSON body


def _now() -> str:
    """Dates in the one format ``huggingface_hub.utils.parse_datetime`` reads."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which is what the Hub reports as a file's ``oid``/``blobId``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that git stores in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _check_path(path: str) -> str:
    """Refuse paths that would escape the repo or that git cannot store."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _parse_json_object(raw: bytes) -> dict[str, Any]:
    """A client's JSON object (empty body = {}); malformed input is the client's fault: 400, not 500."""
    try:
        data = json.loads(raw or b"{}")
    except ValueError as error:
        raise HubError(400, f"Invalid JSON: {error}") from error
    if not isinstance(data, dict):
        raise HubError(400, "Expected a JSON object")
    return data


class LocalHub:
    """Git-like repos on disk: each commit keeps its full file tree; blobs live in a content-addressed store.

    Regular files are stored under their git blob sha1, LFS files under their sha256. Branches and tags point to
    commits; a new repo gets an initial commit with the Hub's default ``.gitattributes`` (so it has a ``sha``).
    All state changes go through one lock, so the threaded server is safe; commits and objects are immutable.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        token: str = DEFAULT_TOKEN,
        user: str = DEFAULT_USER,
        tree_page_size: int = TREE_PAGE_SIZE,
        lfs_threshold: int = LFS_SIZE_THRESHOLD,
    ) -> None:
        self.root = Path(root)
        self.token = token
        self.user = user
        self.tree_page_size = tree_page_size
        self.lfs_threshold = lfs_threshold
        self.request_log: deque[str] = deque(maxlen=5000)  # "METHOD /path STATUS", for debugging and asserts
        self.errors: list[str] = []  # tracebacks of unexpected server errors (answered with 500)
        self._lock = threading.RLock()
        self._commits: dict[str, dict[str, Any]] = {}
        self._lfs_tickets: dict[str, tuple[str, int]] = {}
        for sub in ("repos", "objects", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------------------------------------- storage
    def _repo_dir(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "repos" / f"{repo_type}s" / repo_id

    def _object_path(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key[2:]

    def _write_json(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def _store_bytes(self, data: bytes, key: str) -> None:
        target = self._object_path(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.root / "tmp" / secrets.token_hex(8)
            tmp.write_bytes(data)
            os.replace(tmp, target)

    def has_object(self, key: str) -> bool:
        return self._object_path(key).is_file()

    def store_lfs_stream(self, chunks: Iterator[bytes], sha256: str, size: int) -> None:
        """Write an uploaded LFS object, keeping it only if its sha256 and size match what was announced."""
        tmp = self.root / "tmp" / secrets.token_hex(8)
        digest = hashlib.sha256()
        written = 0
        try:
            with tmp.open("wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    written += len(chunk)
                    f.write(chunk)
            if digest.hexdigest() != sha256 or written != size:
                raise HubError(400, f"LFS upload does not match its oid/size ({sha256}, {size} bytes)")
            target = self._object_path(sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _load_repo(self, repo_type: str, repo_id: str) -> dict[str, Any] | None:
        path = self._repo_dir(repo_type, repo_id) / "repo.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _save_repo(self, repo: dict[str, Any]) -> None:
        self._write_json(self._repo_dir(repo["type"], repo["id"]) / "repo.json", repo)

    def commit_record(self, repo: dict[str, Any], sha: str) -> dict[str, Any]:
        with self._lock:
            if sha not in self._commits:
                path = self._repo_dir(repo["type"], repo["id"]) / "commits" / f"{sha}.json"
                self._commits[sha] = json.loads(path.read_text())
            return self._commits[sha]

    # ----------------------------------------------------------------------------------------------- repos
    def authenticate(self, authorization: str | None, *, required: bool) -> str | None:
        """Return the user for a valid token, None for no token on a read; raise 401 otherwise."""
        if not authorization:
            if required:
                raise HubError(401, "Authorization header is missing: this endpoint needs a write token.")
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            # The exact message the client uses to tell a bad token from a missing repo.
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.user

    def repo(self, repo_type: str, repo_id: str, user: str | None) -> dict[str, Any]:
        with self._lock:
            repo = self._load_repo(repo_type, repo_id)
        if repo is None or (repo["private"] and user is None):
            raise HubError(404, f"Repository not found: {repo_type}s/{repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool = False) -> bool:
        """Create a repo with its initial commit; False if it already exists."""
        namespace, _, name = repo_id.partition("/")
        if not (_NAME_RE.match(namespace) and _NAME_RE.match(name)) or "--" in name or ".." in name:
            raise HubError(400, f"Invalid repo name: {repo_id!r}")
        if name.endswith(".git"):
            raise HubError(400, f"Invalid repo name: {repo_id!r}")
        with self._lock:
            if self._load_repo(repo_type, repo_id) is not None:
                return False
            repo = {
                "type": repo_type,
                "id": repo_id,
                "private": private,
                "createdAt": _now(),
                "branches": {},
                "tags": {},
            }
            sha = self._write_commit(repo, None, {}, [("file", ".gitattributes", GITATTRIBUTES.encode())], "initial")
            repo["branches"]["main"] = sha
            self._save_repo(repo)
            return True

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self._lock:
            repo_dir = self._repo_dir(repo_type, repo_id)
            if not (repo_dir / "repo.json").is_file():
                raise HubError(404, f"Repository not found: {repo_type}s/{repo_id}", "RepoNotFound")
            for path in sorted(repo_dir.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            repo_dir.rmdir()

    def resolve_revision(self, repo: dict[str, Any], revision: str) -> str:
        """Branch, tag or full commit sha -> commit sha (404 RevisionNotFound otherwise)."""
        with self._lock:
            if revision in repo["branches"]:
                return repo["branches"][revision]
            if revision in repo["tags"]:
                return repo["tags"][revision]
            if (
                _SHA_RE.match(revision)
                and (self._repo_dir(repo["type"], repo["id"]) / "commits").joinpath(f"{revision}.json").is_file()
            ):
                return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _write_commit(
        self,
        repo: dict[str, Any],
        parent: str | None,
        tree: dict[str, dict[str, Any]],
        operations: list[tuple[str, str, Any]],
        title: str,
        message: str = "",
    ) -> str:
        """Apply (kind, path, payload) operations on ``tree`` and store the resulting commit. Lock held."""
        tree = dict(tree)
        for kind, path, payload in operations:
            if kind == "file":
                key = git_blob_sha1(payload)
                self._store_bytes(payload, key)
                tree[_check_path(path)] = {"oid": key, "size": len(payload), "lfs": None}
            elif kind == "lfsFile":
                sha256, size = payload
                if not self.has_object(sha256):
                    raise HubError(422, f"LFS object {sha256} for {path!r} was never uploaded")
                actual = self._object_path(sha256).stat().st_size
                if size is not None and size != actual:
                    raise HubError(422, f"LFS object {sha256} has size {actual}, not {size}")
                pointer = lfs_pointer(sha256, actual)
                lfs = {"sha256": sha256, "size": actual, "pointerSize": len(pointer)}
                tree[_check_path(path)] = {"oid": git_blob_sha1(pointer), "size": actual, "lfs": lfs}
            elif kind == "deletedFile":
                if tree.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif kind == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                doomed = [p for p in tree if p.startswith(prefix)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del tree[p]
            else:
                raise HubError(400, f"Unknown commit operation: {kind!r}")
        record = {
            "parents": [parent] if parent else [],
            "title": title,
            "message": message,
            "date": _now(),
            "authors": [self.user],
            "nonce": secrets.token_hex(8),  # two identical commits in the same millisecond still differ
            "tree": tree,
        }
        sha = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()
        record["id"] = sha
        self._write_json(self._repo_dir(repo["type"], repo["id"]) / "commits" / f"{sha}.json", record)
        self._commits[sha] = record
        return sha

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        branch: str,
        operations: list[tuple[str, str, Any]],
        *,
        title: str,
        message: str = "",
        parent_commit: str | None = None,
    ) -> str:
        """Commit on a branch (412 if ``parent_commit`` is not its head); return the new commit sha."""
        with self._lock:
            repo = self.repo(repo_type, repo_id, self.user)
            if branch not in repo["branches"]:
                self.resolve_revision(repo, branch)  # 404 RevisionNotFound for unknown revisions
                raise HubError(400, f"Can only commit to a branch, not to {branch!r}")
            head = repo["branches"][branch]
            if parent_commit is not None and parent_commit != head:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = self.commit_record(repo, head)["tree"]
            sha = self._write_commit(repo, head, tree, operations, title or "Commit", message)
            repo["branches"][branch] = sha
            self._save_repo(repo)
            return sha

    def create_ref(self, repo_type: str, repo_id: str, kind: str, name: str, starting_point: str | None) -> None:
        """Create a branch or tag (409 when it exists)."""
        with self._lock:
            repo = self.repo(repo_type, repo_id, self.user)
            refs = repo["branches" if kind == "branch" else "tags"]
            if not name or name.startswith("refs/") or (kind == "branch" and "/" in name):
                raise HubError(400, f"Invalid {kind} name: {name!r}")
            if name in refs:
                raise HubError(409, f"Reference already exists: {name}")
            refs[name] = self.resolve_revision(repo, starting_point or "main")
            self._save_repo(repo)

    def delete_branch(self, repo_type: str, repo_id: str, name: str) -> None:
        with self._lock:
            repo = self.repo(repo_type, repo_id, self.user)
            if name == "main":
                raise HubError(400, "Cannot delete the main branch")
            if name not in repo["branches"]:
                raise HubError(404, f"Branch not found: {name}", "RevisionNotFound")
            del repo["branches"][name]
            self._save_repo(repo)

    # ----------------------------------------------------------------------------------------------- reads
    def history(self, repo: dict[str, Any], sha: str) -> list[dict[str, Any]]:
        out = [self.commit_record(repo, sha)]
        while out[-1]["parents"]:
            out.append(self.commit_record(repo, out[-1]["parents"][0]))
        return out

    def upload_mode(self, tree: dict[str, dict[str, Any]], path: str, size: int, sample: bytes) -> str:
        """Like the Hub: LFS for .gitattributes patterns, binary content, or files above the size limit."""
        if size > self.lfs_threshold or (size > 0 and b"\0" in sample):
            return "lfs"
        entry = tree.get(".gitattributes")
        if entry is not None and entry["lfs"] is None:
            for line in self._object_path(entry["oid"]).read_text().splitlines():
                pattern, *attrs = line.split() or [""]
                if "filter=lfs" in attrs:
                    target = path if "/" in pattern else path.rsplit("/", 1)[-1]
                    if fnmatch.fnmatch(target, pattern):
                        return "lfs"
        return "regular"

    def object_for(self, entry: dict[str, Any]) -> tuple[Path, str]:
        """Where a tree entry's content lives, and its ETag (sha256 for LFS files, git sha1 otherwise)."""
        key = entry["lfs"]["sha256"] if entry["lfs"] else entry["oid"]
        return self._object_path(key), key

    @staticmethod
    def _folder_oid(tree: dict[str, dict[str, Any]], folder: str) -> str:
        prefix = folder + "/"
        listing = "\n".join(f"{p} {e['oid']}" for p, e in sorted(tree.items()) if p.startswith(prefix))
        return hashlib.sha1(listing.encode()).hexdigest()

    def _last_commit(self, repo: dict[str, Any], sha: str, path: str, is_dir: bool) -> dict[str, str]:
        """The newest commit (first-parent history) that changed ``path``."""

        def signature(commit: dict[str, Any]) -> Any:
            tree = commit["tree"]
            return self._folder_oid(tree, path) if is_dir else (tree.get(path) or {}).get("oid")

        history = self.history(repo, sha)
        found = history[-1]
        for commit, parent in zip(history, history[1:], strict=False):
            if signature(commit) != signature(parent):
                found = commit
                break
        return {"id": found["id"], "title": found["title"], "date": found["date"]}

    def path_info(
        self, repo: dict[str, Any], sha: str, path: str, *, is_dir: bool, expand: bool = False
    ) -> dict[str, Any]:
        """One tree entry in the JSON shape of the tree / paths-info endpoints."""
        tree = self.commit_record(repo, sha)["tree"]
        if is_dir:
            info: dict[str, Any] = {"type": "directory", "oid": self._folder_oid(tree, path), "size": 0, "path": path}
        else:
            entry = tree[path]
            info = {"type": "file", "oid": entry["oid"], "size": entry["size"], "path": path}
            if entry["lfs"]:
                lfs = entry["lfs"]
                info["lfs"] = {"oid": lfs["sha256"], "size": lfs["size"], "pointerSize": lfs["pointerSize"]}
            if expand:
                info["securityFileStatus"] = {
                    "status": "safe",
                    "avScan": {"virusFound": False, "virusNames": None},
                    "pickleImportScan": None,
                }
        if expand:
            info["lastCommit"] = self._last_commit(repo, sha, path, is_dir)
        return info

    def list_tree(
        self, repo: dict[str, Any], sha: str, path: str, *, recursive: bool, expand: bool
    ) -> list[dict[str, Any]]:
        """Entries below ``path`` (directories first, then files), all levels if ``recursive``."""
        tree = self.commit_record(repo, sha)["tree"]
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in tree):
            raise HubError(404, f"Folder not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        folders: set[str] = set()
        files: list[str] = []
        for p in tree:
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix) :].split("/")
            if len(parts) == 1 or recursive:
                files.append(p)
            depth = len(parts) - 1 if recursive else min(len(parts) - 1, 1)
            folders.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
        return [self.path_info(repo, sha, f, is_dir=True, expand=expand) for f in sorted(folders)] + [
            self.path_info(repo, sha, f, is_dir=False, expand=expand) for f in sorted(files)
        ]

    def repo_info(self, repo: dict[str, Any], sha: str, *, blobs: bool) -> dict[str, Any]:
        commit = self.commit_record(repo, sha)
        siblings = []
        for path, entry in sorted(commit["tree"].items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=entry["size"], blobId=entry["oid"])
                if entry["lfs"]:
                    sibling["lfs"] = entry["lfs"]
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(f"{repo['type']}/{repo['id']}".encode()).hexdigest()[:24],
            "id": repo["id"],
            "author": repo["id"].split("/")[0],
            "sha": sha,
            "lastModified": commit["date"],
            "createdAt": repo["createdAt"],
            "private": repo["private"],
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e["size"] for e in commit["tree"].values()),
        }
        if repo["type"] == "space":
            info.update(sdk="static", runtime={"stage": "NO_APP_FILE", "hardware": {"current": None}})
        return info

    def new_lfs_ticket(self, sha256: str, size: int) -> str:
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._lfs_tickets[ticket] = (sha256, size)
        return ticket

    def take_lfs_ticket(self, ticket: str) -> tuple[str, int]:
        with self._lock:
            if ticket not in self._lfs_tickets:
                raise HubError(403, "Unknown or already used LFS upload ticket")
            return self._lfs_tickets.pop(ticket)

    # ----------------------------------------------------------------------------------------------- serving
    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1 (ephemeral port) from a daemon thread; yield the endpoint URL; stop on exit."""
        server = _HubHTTPServer(self)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield server.endpoint
        finally:
            server.shutdown()
            server.close_connections()
            server.server_close()
            thread.join(timeout=5)


class _HubHTTPServer(ThreadingHTTPServer):
    """Threaded server that remembers its open connections so that stopping it also ends idle keep-alives."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, hub: LocalHub) -> None:
        super().__init__(("127.0.0.1", 0), _HubRequestHandler)
        self.hub = hub
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections dropped by the client are normal; anything else is recorded for the tests to see."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            self.hub.errors.append(traceback.format_exc())


class _HubRequestHandler(BaseHTTPRequestHandler):
    """Routes one HTTP request to ``LocalHub``. Every answer has a Content-Length (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end by themselves
    server: _HubHTTPServer

    # ------------------------------------------------------------------------------------------- plumbing
    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.hub.request_log.append(f"{self.command} {self.path} {int(code) if isinstance(code, int) else code}")

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _iter_body(self) -> Iterator[bytes]:
        """The request body, from Content-Length or chunked transfer encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass  # trailers
                    return
                total += size
                if total > MAX_BODY_BYTES:
                    raise HubError(413, "Request body too large")
                yield self.rfile.read(size)
                self.rfile.readline(8)  # CRLF after each chunk
        remaining = int(self.headers.get("Content-Length") or 0)
        if remaining > MAX_BODY_BYTES:
            raise HubError(413, "Request body too large")
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                raise HubError(400, "Truncated request body")
            remaining -= len(chunk)
            yield chunk

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, error: HubError) -> None:
        headers = dict(error.headers)
        headers["X-Error-Message"] = error.message.encode("ascii", "replace").decode()[:500]
        if error.code:
            headers["X-Error-Code"] = error.code
        self._json({**error.extra, "error": error.message}, error.status, headers)

    def _dispatch(self) -> None:
        self._body_read = False
        try:
            url = urlsplit(self.path)
            segments = [unquote(s) for s in url.path.split("/")[1:]]
            if segments and segments[-1] == "":
                segments.pop()
            query = parse_qs(url.query, keep_blank_values=True)
            route = self._route(segments)
            if route is None:
                raise HubError(404, f"Not found: {self.command} {url.path}")
            route(segments, query)
        except HubError as error:
            self._finish_unread_body()
            self._error(error)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception:
            self.hub.errors.append(traceback.format_exc())
            self._finish_unread_body()
            self._error(HubError(500, "Internal error in the local hub (see LocalHub.errors)"))

    def _finish_unread_body(self) -> None:
        """After an early error the request body may still be on the wire: drop the connection instead."""
        if not self._body_read and (self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding")):
            self.close_connection = True

    def _body(self) -> bytes:
        data = b"".join(self._iter_body())
        self._body_read = True
        return data

    def _json_body(self) -> dict[str, Any]:
        return _parse_json_object(self._body())

    def _user(self, *, required: bool) -> str | None:
        return self.hub.authenticate(self.headers.get("Authorization"), required=required)

    # ------------------------------------------------------------------------------------------- routing
    def _route(self, segments: list[str]) -> Callable[[list[str], dict[str, list[str]]], None] | None:
        method = self.command
        if segments[:1] == ["api"]:
            if segments == ["api", "whoami-v2"] and method == "GET":
                return self._whoami
            if segments == ["api", "repos", "create"] and method == "POST":
                return self._create_repo
            if segments == ["api", "repos", "delete"] and method == "DELETE":
                return self._delete_repo
            if segments == ["api", "validate-yaml"] and method == "POST":
                return self._validate_yaml
            if len(segments) >= 4 and segments[1] in REPO_TYPES:
                return self._repo_api
            return None
        if segments[:2] == ["_lfs", "upload"] and len(segments) == 3 and method == "PUT":
            return self._lfs_upload
        if segments[-4:] == ["info", "lfs", "objects", "batch"] and method == "POST":
            return self._lfs_batch
        if method in ("GET", "HEAD"):
            if len(segments) >= 6 and segments[0] in REPO_TYPES and segments[3] == "resolve":
                return self._resolve
            if len(segments) >= 5 and segments[2] == "resolve":
                return self._resolve
        return None

    @staticmethod
    def _flag(query: dict[str, list[str]], name: str) -> bool:
        return any(value.lower() in ("1", "true", "yes") for value in query.get(name, []))

    def _whoami(self, segments: list[str], query: dict[str, list[str]]) -> None:
        user = self._user(required=True)
        self._json(
            {
                "type": "user",
                "id": hashlib.sha1(str(user).encode()).hexdigest()[:24],
                "name": user,
                "fullname": "Local Test User",
                "email": f"{user}@localhost",
                "emailVerified": True,
                "isPro": False,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "local-hub", "role": "write"}},
            }
        )

    def _repo_id_from_payload(self, payload: dict[str, Any]) -> tuple[str, str]:
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type: {repo_type!r}")
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise HubError(400, "Missing repo name")
        return repo_type, f"{payload.get('organization') or self.hub.user}/{name}"

    def _create_repo(self, segments: list[str], query: dict[str, list[str]]) -> None:
        payload = self._json_body()
        self._user(required=True)
        repo_type, repo_id = self._repo_id_from_payload(payload)
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        url = f"{self.server.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"
        if not self.hub.create_repo(repo_type, repo_id, private=private):
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", extra={"url": url})
        self._json({"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _delete_repo(self, segments: list[str], query: dict[str, list[str]]) -> None:
        payload = self._json_body()
        self._user(required=True)
        self.hub.delete_repo(*self._repo_id_from_payload(payload))
        self._send(200)

    def _validate_yaml(self, segments: list[str], query: dict[str, list[str]]) -> None:
        content = str(self._json_body().get("content", ""))
        if content.startswith("---") and "\n---" not in content[3:]:
            self._json({"errors": [{"message": "YAML metadata block is not closed by '---'"}]}, 400)
            return
        self._json({"errors": [], "warnings": []})

    def _repo_api(self, segments: list[str], query: dict[str, list[str]]) -> None:
        repo_type = REPO_TYPES[segments[1]]
        repo_id = f"{segments[2]}/{segments[3]}"
        action, rest = (segments[4], segments[5:]) if len(segments) > 4 else ("", [])
        method = self.command
        write = method in ("POST", "PUT", "DELETE")
        body = self._body() if write else b""
        user = self._user(required=write)
        repo = self.hub.repo(repo_type, repo_id, user)
        if method == "GET" and (action == "" or (action == "revision" and len(rest) == 1)):
            sha = self.hub.resolve_revision(repo, rest[0] if rest else "main")
            self._json(self.hub.repo_info(repo, sha, blobs=self._flag(query, "blobs")))
        elif action == "tree" and rest and method == "GET":
            self._tree(repo, rest[0], "/".join(rest[1:]), query)
        elif action == "paths-info" and len(rest) == 1 and method == "POST":
            self._paths_info(repo, rest[0], body)
        elif action == "preupload" and len(rest) == 1 and method == "POST":
            self._preupload(repo, rest[0], body, query)
        elif action == "commit" and len(rest) == 1 and method == "POST":
            self._commit(repo, rest[0], body, query)
        elif action == "refs" and not rest and method == "GET":
            self._json(
                {
                    "branches": [
                        {"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo["branches"].items()
                    ],
                    "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo["tags"].items()],
                    "converts": [],
                    "pullRequests": [],
                }
            )
        elif action == "commits" and len(rest) == 1 and method == "GET":
            sha = self.hub.resolve_revision(repo, rest[0])
            commits = [
                {
                    "id": c["id"],
                    "authors": [{"user": a} for a in c["authors"]],
                    "date": c["date"],
                    "title": c["title"],
                    "message": c["message"],
                }
                for c in self.hub.history(repo, sha)
            ]
            self._json(commits)
        elif action in ("branch", "tag") and len(rest) == 1 and method in ("POST", "DELETE"):
            payload = _parse_json_object(body)
            if method == "DELETE" and action == "branch":
                self.hub.delete_branch(repo_type, repo_id, rest[0])
            elif action == "branch":
                self.hub.create_ref(repo_type, repo_id, "branch", rest[0], payload.get("startingPoint"))
            else:
                self.hub.create_ref(repo_type, repo_id, "tag", payload.get("tag", ""), rest[0])
            self._json({})
        else:
            raise HubError(404, f"Not found: {self.command} {self.path}")

    def _tree(self, repo: dict[str, Any], revision: str, path: str, query: dict[str, list[str]]) -> None:
        sha = self.hub.resolve_revision(repo, revision)
        expand = self._flag(query, "expand")
        entries = self.hub.list_tree(repo, sha, path, recursive=self._flag(query, "recursive"), expand=expand)
        page_size = min(self.hub.tree_page_size, TREE_PAGE_SIZE_EXPANDED) if expand else self.hub.tree_page_size
        start = int((query.get("cursor") or ["0"])[0] or 0)
        headers = {}
        if start + page_size < len(entries):
            params = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
            params.append(("cursor", str(start + page_size)))
            next_url = f"{self.server.endpoint}{urlsplit(self.path).path}?{urlencode(params)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._json(entries[start : start + page_size], headers=headers)

    def _paths_info(self, repo: dict[str, Any], revision: str, body: bytes) -> None:
        sha = self.hub.resolve_revision(repo, revision)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            payload = _parse_json_object(body)
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), self._flag(form, "expand")
        tree = self.hub.commit_record(repo, sha)["tree"]
        out = []
        for path in dict.fromkeys(p.strip("/") for p in paths):
            if path in tree:
                out.append(self.hub.path_info(repo, sha, path, is_dir=False, expand=expand))
            elif path and any(p.startswith(path + "/") for p in tree):
                out.append(self.hub.path_info(repo, sha, path, is_dir=True, expand=expand))
        self._json(out)

    def _preupload(self, repo: dict[str, Any], revision: str, body: bytes, query: dict[str, list[str]]) -> None:
        if self._flag(query, "create_pr"):
            raise HubError(400, "Pull requests are not supported by the local hub")
        tree = self.hub.commit_record(repo, self.hub.resolve_revision(repo, revision))["tree"]
        files = []
        for item in _parse_json_object(body).get("files", []):
            try:
                path, size = _check_path(item["path"]), int(item.get("size", 0))
                sample = base64.b64decode(item.get("sample", ""))
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise HubError(400, f"Malformed preupload entry: {error!r}") from error
            existing = tree.get(path)
            remote_oid = None if existing is None else (existing["lfs"] or {}).get("sha256", existing["oid"])
            files.append(
                {
                    "path": path,
                    "uploadMode": self.hub.upload_mode(tree, path, size, sample),
                    "shouldIgnore": False,
                    "oid": remote_oid,
                }
            )
        self._json({"files": files})

    def _commit(self, repo: dict[str, Any], revision: str, body: bytes, query: dict[str, list[str]]) -> None:
        if self._flag(query, "create_pr"):
            raise HubError(400, "Pull requests are not supported by the local hub")
        header: dict[str, Any] = {}
        operations: list[tuple[str, str, Any]] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            item = _parse_json_object(line)
            key, value = item.get("key"), item.get("value", {})
            try:
                if key == "header":
                    header = dict(value)
                elif key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise HubError(400, f"Unsupported encoding: {value.get('encoding')!r}")
                    operations.append(("file", value["path"], base64.b64decode(value["content"], validate=True)))
                elif key == "lfsFile":
                    if value.get("algo", "sha256") != "sha256":
                        raise HubError(400, f"Unsupported LFS algo: {value.get('algo')!r}")
                    operations.append(("lfsFile", value["path"], (value["oid"], value.get("size"))))
                elif key in ("deletedFile", "deletedFolder"):
                    operations.append((key, value["path"], None))
                else:
                    raise HubError(400, f"Unknown commit operation: {key!r}")
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise HubError(400, f"Malformed {key!r} line in commit: {error!r}") from error
        sha = self.hub.commit(
            repo["type"],
            repo["id"],
            revision,
            operations,
            title=header.get("summary", ""),
            message=header.get("description", ""),
            parent_commit=header.get("parentCommit"),
        )
        url = f"{self.server.endpoint}/{URL_PREFIXES[repo['type']]}{repo['id']}/commit/{sha}"
        self._json({"success": True, "commitOid": sha, "commitUrl": url, "pullRequestUrl": None})

    def _lfs_batch(self, segments: list[str], query: dict[str, list[str]]) -> None:
        payload = self._json_body()
        self._user(required=True)
        if segments[0] in REPO_TYPES and len(segments) == 7:
            repo_type, namespace, name = REPO_TYPES[segments[0]], segments[1], segments[2]
        elif len(segments) == 6:
            repo_type, namespace, name = "model", segments[0], segments[1]
        else:
            raise HubError(404, f"Not found: {self.path}")
        if not name.endswith(".git"):
            raise HubError(404, f"Not found: {self.path}")
        repo = self.hub.repo(repo_type, f"{namespace}/{name[:-4]}", self.hub.user)
        if payload.get("operation") != "upload":
            raise HubError(400, "The local hub only implements LFS uploads (downloads go through /resolve)")
        if "ref" in payload and payload["ref"].get("name"):
            self.hub.resolve_revision(repo, payload["ref"]["name"])
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid", "")), int(obj.get("size", -1))
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or size < 0:
                objects.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
            elif self.hub.has_object(oid):
                objects.append({"oid": oid, "size": size})  # no "actions": the client skips the upload
            else:
                href = f"{self.server.endpoint}/_lfs/upload/{oid}?ticket={self.hub.new_lfs_ticket(oid, size)}"
                objects.append(
                    {"oid": oid, "size": size, "authenticated": True, "actions": {"upload": {"href": href}}}
                )
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_upload(self, segments: list[str], query: dict[str, list[str]]) -> None:
        """The signed-URL upload of the LFS protocol: the client sends no token, the ticket stands for it."""
        sha256, size = self.hub.take_lfs_ticket((query.get("ticket") or [""])[0])
        if sha256 != segments[2]:
            raise HubError(403, "LFS upload ticket does not match the object")
        self.hub.store_lfs_stream(self._iter_body(), sha256, size)
        self._body_read = True
        self._send(200)

    def _resolve(self, segments: list[str], query: dict[str, list[str]]) -> None:
        if segments[0] in REPO_TYPES and segments[3] == "resolve":
            repo_type, repo_id, revision, path = (
                REPO_TYPES[segments[0]],
                "/".join(segments[1:3]),
                segments[4],
                segments[5:],
            )
        else:
            repo_type, repo_id, revision, path = "model", "/".join(segments[:2]), segments[3], segments[4:]
        repo = self.hub.repo(repo_type, repo_id, self._user(required=False))
        sha = self.hub.resolve_revision(repo, revision)
        filename = "/".join(path)
        entry = self.hub.commit_record(repo, sha)["tree"].get(filename)
        if entry is None:
            raise HubError(404, f"Entry not found: {filename}", "EntryNotFound", {"X-Repo-Commit": sha})
        object_path, etag = self.hub.object_for(entry)
        total = entry["size"]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{etag}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename.rsplit('/', 1)[-1])}",
        }
        if entry["lfs"]:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(total)})
        start, end, status = 0, total - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match is None or match.groups() == ("", ""):
                raise HubError(416, f"Invalid range: {range_header}", headers={"Content-Range": f"bytes */{total}"})
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), total - 1) if last else total - 1
            else:
                start, end = max(total - int(last), 0), total - 1
            if start >= total or start > end:
                raise HubError(
                    416, f"Unsatisfiable range: {range_header}", headers={"Content-Range": f"bytes */{total}"}
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        length = max(end - start + 1, 0)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        with object_path.open("rb") as f:
            f.seek(start)
            while length > 0:
                chunk = f.read(min(length, 1024 * 1024))
                if not chunk:
                    break
                self.wfile.write(chunk)
                length -= len(chunk)


@contextmanager
def serve_local_hub(root: str | os.PathLike[str], **hub_kwargs: Any) -> Iterator[tuple[str, str]]:
    """Run a ``LocalHub`` stored under ``root`` on 127.0.0.1; yield ``(endpoint_url, token)``; stop on exit."""
    hub = LocalHub(root, **hub_kwargs)
    with hub.serve() as endpoint:
        yield endpoint, hub.token


def configure_clients_for(
    endpoint: str, token: str, monkeypatch: pytest.MonkeyPatch, cache_dir: str | os.PathLike[str]
) -> None:
    """Point huggingface_hub, transformers and datasets at ``endpoint`` with ``token``, online, without Xet.

    Caches go to ``cache_dir`` (use a per-test ``tmp_path``). Everything is set through ``monkeypatch`` and is undone
    at the end of the test. See the module docstring for the list of knobs and why each is needed.
    """
    import importlib.util

    # Import first: the libraries read the environment at import time, and monkeypatch must record (and later
    # restore) the suite's values, not the ones set below.
    import huggingface_hub.hf_api
    from huggingface_hub import constants

    has_transformers = importlib.util.find_spec("transformers") is not None
    has_datasets = importlib.util.find_spec("datasets") is not None
    if has_transformers:
        import transformers.utils.hub
    if has_datasets:
        import datasets.config

    cache = Path(cache_dir)
    hf_home = cache / "hf_home"
    hub_cache, datasets_cache = hf_home / "hub", hf_home / "datasets"
    for folder in (hub_cache, datasets_cache):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": token,
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(hf_home / "assets"),
        "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_DATASETS_CACHE": str(datasets_cache),
        "HF_MODULES_CACHE": str(hf_home / "modules"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", raising=False)

    hub_constants: dict[str, Any] = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {"127.0.0.1"}),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hub_cache),
        "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": env["HF_ASSETS_CACHE"],
        "HF_XET_CACHE": env["HF_XET_CACHE"],
        "HF_TOKEN_PATH": env["HF_TOKEN_PATH"],
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
    }
    for name, value in hub_constants.items():
        monkeypatch.setattr(constants, name, value, raising=False)
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", endpoint)

    if has_transformers:
        monkeypatch.setattr(transformers.utils.hub, "_hf_api", None, raising=False)

    if has_datasets:
        downloads = datasets_cache / "downloads"
        datasets_constants: dict[str, Any] = {
            "HF_ENDPOINT": endpoint,
            "HUB_DATASETS_URL": endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
            "HF_HUB_OFFLINE": False,
            "HF_DATASETS_OFFLINE": False,
            "HF_UPDATE_DOWNLOAD_COUNTS": False,
            "USE_PARQUET_EXPORT": False,
            "HF_CACHE_HOME": str(hf_home),
            "HF_DATASETS_CACHE": datasets_cache,
            "HF_MODULES_CACHE": hf_home / "modules",
            "DOWNLOADED_DATASETS_PATH": downloads,
            "EXTRACTED_DATASETS_PATH": downloads / "extracted",
        }
        for name, value in datasets_constants.items():
            monkeypatch.setattr(datasets.config, name, value, raising=False)


@dataclass
class HubSession:
    """What a test gets from ``local_hub_session``: the running hub and how to reach it."""

    hub: LocalHub
    endpoint: str
    token: str


@contextmanager
def local_hub_session(
    tmp_path: str | os.PathLike[str], monkeypatch: pytest.MonkeyPatch, **hub_kwargs: Any
) -> Iterator[HubSession]:
    """Serve a fresh hub under ``tmp_path/hub`` and configure every client for it (caches in ``tmp_path/cache``)."""
    hub = LocalHub(Path(tmp_path) / "hub", **hub_kwargs)
    with hub.serve() as endpoint:
        configure_clients_for(endpoint, hub.token, monkeypatch, Path(tmp_path) / "cache")
        try:
            yield HubSession(hub=hub, endpoint=endpoint, token=hub.token)
        finally:
            try:  # HfFileSystem instances are cached per endpoint: drop the ones that point at this server
                from huggingface_hub import HfFileSystem

                HfFileSystem.clear_instance_cache()
            except ImportError:
                pass
