"""An in-memory Hub for the tests: the real clients push to it and load from it on 127.0.0.1 (standard library only).

Why: fcot pushes curated data and students to the Hub and loads them back by id; that must be testable offline with
the *real* clients (``HfApi``, ``hf_hub_download``, ``snapshot_download``, ``ModelCard``, transformers'
``push_to_hub``/``from_pretrained``, datasets' ``push_to_hub``/``load_dataset``). It answers only what those calls
send: each repo has one branch, ``main``; a revision is ``main`` or a commit sha of the repo.

Usage from a test module::

    @pytest.fixture
    def hub(tmp_path, monkeypatch):
        with local_hub_session(tmp_path, monkeypatch) as session:
            yield session  # session.endpoint, session.token, session.hub (LocalHub: .request_log, .errors)

Faults (``LocalHub.inject_fault``): the N-th request matching a method and a path pattern (and the ones after it,
``times`` in all, or every one with ``times=None``) is answered with an error status before the hub looks at it, so
nothing changes; with ``after=True`` the hub does what was asked and the answer is lost (the error status instead);
``clear_faults`` ends them. The client retries some requests itself on 5xx (``preupload``, the LFS
calls: ``http_backoff``, 1 s, 2 s, ... apart), so a fault on those needs ``times=None`` to reach the caller.

Accounts: ``LocalHub(orgs={"org": "write"}, token_role="write")`` is what ``whoami`` reports (an organisation's
``roleInOrg``; the token's ``read``/``write``). By default writes accept any namespace; ``restrict_writes=True``
refuses (403) a write outside the user's and its organisations' namespaces (read role excluded), or by a read token.

Endpoints (``{type}s`` is ``models`` / ``datasets``; ``{id}`` is ``namespace/name``)::

    GET      /api/whoami-v2                              token check (401 without a valid token); name, orgs, role
    POST     /api/repos/create                           409 if it exists (the client's exist_ok relies on it)
    DELETE   /api/repos/delete                           404 RepoNotFound if missing
    POST     /api/validate-yaml                          card metadata check (ModelCard/DatasetCard.push_to_hub)
    GET      /api/{type}s/{id}[/revision/{rev}]          repo info: sha, siblings (+ size/blobId/lfs with blobs=1)
    GET      /api/{type}s/{id}/tree/{rev}[/{path}]       one page; 404 EntryNotFound for a missing folder
    GET      /api/{type}s/{id}/commits/{rev}             history, newest first (list_repo_commits)
    POST     /api/{type}s/{id}/preupload/main            "lfs" for .gitattributes patterns, binary or > 10 MiB
    POST     /api/{type}s/{id}/commit/main               NDJSON: header / file (base64) / lfsFile;
                                                         parentCommit -> 412 when stale
    POST     /[datasets/]{id}.git/info/lfs/objects/batch LFS batch API ("basic" transfer, upload only)
    PUT      /_lfs/upload/{sha256}?ticket=...            LFS object upload, checked against its sha256
    GET|HEAD /[datasets/]{id}/resolve/{rev}/{path}       ETag, X-Repo-Commit, X-Linked-Etag/-Size

Errors carry the headers the client maps to exceptions: ``X-Error-Code: RepoNotFound`` (RepositoryNotFoundError),
``RevisionNotFound`` (RevisionNotFoundError), ``EntryNotFound`` (EntryNotFoundError, with ``X-Repo-Commit``).
Writes accept any namespace; private repos read as missing without the token. Xet is never offered: the client must
run with ``HF_HUB_DISABLE_XET=1``.

``configure_clients_for`` points the clients at the server through ``monkeypatch`` (undone after each test). The
libraries read most settings once, at import, so environment variables alone are not enough once they are imported:

* environment: ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE=0``, ``HF_DATASETS_OFFLINE=0``,
  ``TRANSFORMERS_OFFLINE=0``, ``HF_HUB_DISABLE_XET=1``, ``HF_HUB_DISABLE_TELEMETRY=1``,
  ``HF_UPDATE_DOWNLOAD_COUNTS=0``, and per-test caches (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_ASSETS_CACHE``,
  ``HF_XET_CACHE``, ``HF_TOKEN_PATH``, ``HF_DATASETS_CACHE``, ``HF_MODULES_CACHE``); ``HUGGING_FACE_HUB_TOKEN`` and
  ``HF_HUB_DISABLE_IMPLICIT_TOKEN`` are removed.
* ``huggingface_hub.constants``: ``ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE`` (every ``hf_hub_download``),
  ``HF_URL_HOSTS``, ``HF_HUB_OFFLINE``, the Xet/telemetry/implicit-token switches and the cache and token paths.
* ``huggingface_hub.hf_api.api.endpoint``: the module-level ``create_repo``, ``upload_file``... are bound methods of
  an ``HfApi()`` built at import time.
* ``transformers.utils.hub._hf_api`` -> ``None``: transformers caches one ``HfApi`` (used by ``push_to_hub``).
* ``datasets.config``: ``HF_ENDPOINT``, ``HUB_DATASETS_URL``, the offline switches, ``HF_UPDATE_DOWNLOAD_COUNTS``
  (else ``load_dataset`` sends a HEAD to S3), ``USE_PARQUET_EXPORT`` (else it asks datasets-server) and its caches.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

if TYPE_CHECKING:
    import pytest

DEFAULT_TOKEN = "hf_localtesthubtoken"
DEFAULT_USER = "user"
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub refuses regular (non-LFS) files above 10 MiB
REPO_TYPES = {"models": "model", "datasets": "dataset"}
URL_PREFIXES = {"model": "", "dataset": "datasets/"}

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
        self, status: int, message: str, code: str | None = None, headers: dict | None = None, **body
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers, self.body = status, message, code, headers or {}, body


def _now() -> str:
    """Dates in the one format ``huggingface_hub.utils.parse_datetime`` reads."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which is what the Hub reports as a file's ``oid``/``blobId``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _json_object(raw: bytes) -> dict[str, Any]:
    """A client's JSON object (empty body = {}); malformed input is the client's fault: 400, not 500."""
    try:
        data = json.loads(raw or b"{}")
    except ValueError as error:
        raise HubError(400, f"Invalid JSON: {error}") from error
    if not isinstance(data, dict):
        raise HubError(400, "Expected a JSON object")
    return data


@dataclass
class Fault:
    """A planted error answer: requests matching ``method`` and ``pattern`` number ``nth`` to ``nth + times - 1``
    get ``status`` (``times=None``: every matching request from ``nth`` on)."""

    method: str
    pattern: re.Pattern[str]
    status: int = 500
    nth: int = 1
    times: int | None = 1
    after: bool = False  # the request is carried out, and its answer replaced by the error
    seen: int = 0  # matching requests so far
    fired: int = 0  # of which answered with the fault

    def fires(self, method: str, path: str) -> bool:
        if method != self.method or not self.pattern.search(path):
            return False
        self.seen += 1
        if self.seen < self.nth or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class LocalHub:
    """Repos in memory: each commit keeps its full file tree; blobs live in one content-addressed store.

    Regular files are stored under their git blob sha1, LFS files under their sha256. A new repo gets an initial
    commit with the Hub's default ``.gitattributes`` (so it has a ``sha``). The server answers one request at a time
    (``lock``), so the methods need no locking of their own.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        user: str = DEFAULT_USER,
        orgs: dict[str, str] | None = None,
        token_role: str = "write",
        restrict_writes: bool = False,
    ) -> None:
        self.token, self.user = token, user
        self.orgs = dict(orgs or {})  # organisation -> the user's roleInOrg (admin, write, contributor, read)
        self.token_role, self.restrict_writes = token_role, restrict_writes
        self.faults: list[Fault] = []
        self.request_log: deque[str] = deque(maxlen=5000)  # "METHOD /path STATUS", for debugging and asserts
        self.errors: list[str] = []  # tracebacks of unexpected server errors (answered with 500)
        self.objects: dict[str, bytes] = {}
        self._repos: dict[tuple[str, str], dict[str, Any]] = {}
        self._commits: dict[str, dict[str, Any]] = {}
        self._lfs_tickets: dict[str, tuple[str, int]] = {}
        self.lock = threading.Lock()

    def has_object(self, key: str) -> bool:
        return key in self.objects

    # ------------------------------------------------------------------ faults and inspection (for the tests)
    def inject_fault(
        self,
        method: str,
        pattern: str,
        *,
        status: int = 500,
        nth: int = 1,
        times: int | None = 1,
        after: bool = False,
    ) -> Fault:
        """Answer the ``nth`` request whose method is ``method`` and whose path matches the regex ``pattern``
        (``re.search``) with ``status``, and the next ones up to ``times`` in all (``None``: every one after).
        ``after``: carry the request out first (a lost answer), else it changes nothing."""
        fault = Fault(method.upper(), re.compile(pattern), status, nth, times, after)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def fault_for(self, method: str, path: str) -> Fault | None:
        """The first fault that fires on this request (every matching fault counts it)."""
        fired = [fault for fault in self.faults if fault.fires(method, path)]
        return fired[0] if fired else None

    def repo_files(self, repo_type: str, repo_id: str) -> dict[str, str] | None:
        """Path -> oid (sha256 for LFS files) at the head of a repo, or None if there is no such repo."""
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            return None
        return {
            path: (entry["lfs"] or {}).get("sha256", entry["oid"]) for path, entry in self.tree(repo["head"]).items()
        }

    def heads(self) -> dict[tuple[str, str], str]:
        """(type, id) -> head commit of every repo: equal before and after a push that changed nothing."""
        return {key: repo["head"] for key, repo in self._repos.items()}

    def check_write(self, repo_id: str) -> None:
        """With ``restrict_writes``: 403 for a read token, or a namespace that is neither the user's nor one of
        its organisations' (read role excluded), like the Hub."""
        if not self.restrict_writes:
            return
        namespace = repo_id.split("/")[0]
        writable = {self.user} | {org for org, role in self.orgs.items() if role != "read"}
        if self.token_role == "read" or namespace not in writable:
            raise HubError(403, f"You don't have the rights to write to the namespace {namespace!r}")

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        if self._repos.pop((repo_type, repo_id), None) is None:
            raise HubError(404, f"Repository not found: {repo_type}s/{repo_id}", "RepoNotFound")

    def authenticate(self, authorization: str | None, *, required: bool) -> str | None:
        """The user for a valid token, None for no token on a read; 401 otherwise."""
        if not authorization:
            if required:
                raise HubError(401, "Authorization header is missing: this endpoint needs a write token.")
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise HubError(401, "Invalid credentials in Authorization header")  # the client's bad-token message
        return self.user

    def repo(self, repo_type: str, repo_id: str, user: str | None) -> dict[str, Any]:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None or (repo["private"] and user is None):
            raise HubError(404, f"Repository not found: {repo_type}s/{repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool = False) -> bool:
        """Create a repo with its initial commit; False if it already exists."""
        if (repo_type, repo_id) in self._repos:
            return False
        repo = {"type": repo_type, "id": repo_id, "private": private, "createdAt": _now(), "head": None}
        repo["head"] = self._write_commit(repo, {}, [("file", ".gitattributes", GITATTRIBUTES.encode())], "initial")
        self._repos[(repo_type, repo_id)] = repo
        return True

    def resolve_revision(self, repo: dict[str, Any], revision: str) -> str:
        """``main`` or a commit sha of this repo -> commit sha (404 RevisionNotFound otherwise)."""
        if revision == "main":
            return repo["head"]
        if revision in (commit["id"] for commit in self.history(repo, repo["head"])):
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def tree(self, sha: str) -> dict[str, dict[str, Any]]:
        return self._commits[sha]["tree"]

    def history(self, repo: dict[str, Any], sha: str) -> list[dict[str, Any]]:
        out = [self._commits[sha]]
        while out[-1]["parent"]:
            out.append(self._commits[out[-1]["parent"]])
        return out

    def _write_commit(self, repo: dict[str, Any], tree: dict, operations: list[tuple], title: str, message="") -> str:
        """Apply ("file", path, bytes) and ("lfsFile", path, (sha256, size)) on ``tree``; store the commit."""
        tree = dict(tree)
        for kind, path, payload in operations:
            if not path or path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
                raise HubError(400, f"Invalid path in repo: {path!r}")
            if kind == "file":
                self.objects[git_blob_sha1(payload)] = payload
                tree[path] = {"oid": git_blob_sha1(payload), "size": len(payload), "lfs": None}
            else:
                sha256, size = payload
                if sha256 not in self.objects or len(self.objects[sha256]) != size:
                    raise HubError(422, f"LFS object {sha256} ({size} bytes) for {path!r} was never uploaded")
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
                lfs = {"sha256": sha256, "size": size, "pointerSize": len(pointer)}
                tree[path] = {"oid": git_blob_sha1(pointer), "size": size, "lfs": lfs}
        record = {"parent": repo["head"], "title": title, "message": message, "date": _now(), "tree": tree}
        sha = hashlib.sha1(json.dumps({**record, "nonce": secrets.token_hex(8)}, sort_keys=True).encode()).hexdigest()
        self._commits[sha] = {**record, "id": sha}
        return sha

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        operations: list[tuple],
        *,
        title: str,
        message: str = "",
        parent_commit: str | None = None,
    ) -> str:
        """Commit on ``main`` (412 if ``parent_commit`` is not its head); return the new commit sha."""
        repo = self.repo(repo_type, repo_id, self.user)
        if parent_commit is not None and parent_commit != repo["head"]:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        repo["head"] = self._write_commit(repo, self.tree(repo["head"]), operations, title or "Commit", message)
        return repo["head"]

    def upload_mode(self, tree: dict[str, dict[str, Any]], path: str, size: int, sample: bytes) -> str:
        """Like the Hub: LFS for .gitattributes patterns, binary content, or files above the size limit."""
        if size > LFS_SIZE_THRESHOLD or (size > 0 and b"\0" in sample):
            return "lfs"
        for line in self.objects[tree[".gitattributes"]["oid"]].decode().splitlines():
            pattern, *attrs = line.split() or [""]
            if "filter=lfs" in attrs and fnmatch.fnmatch(path if "/" in pattern else path.rsplit("/", 1)[-1], pattern):
                return "lfs"
        return "regular"

    def list_tree(self, sha: str, path: str, *, recursive: bool) -> list[dict[str, Any]]:
        """Entries below ``path`` (folders first, then files), all levels if ``recursive``."""
        tree = self.tree(sha)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in tree):
            raise HubError(404, f"Folder not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        folders, files = set(), []
        for p in tree:
            if p.startswith(prefix):
                parts = p[len(prefix) :].split("/")
                if len(parts) == 1 or recursive:
                    files.append(p)
                depth = len(parts) - 1 if recursive else min(len(parts) - 1, 1)
                folders.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
        entries = [
            {"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
            for f in sorted(folders)
        ]
        for f in sorted(files):
            entry = tree[f]
            entries.append({"type": "file", "oid": entry["oid"], "size": entry["size"], "path": f})
            if entry["lfs"]:
                entries[-1]["lfs"] = {
                    "oid": entry["lfs"]["sha256"],
                    "size": entry["size"],
                    "pointerSize": entry["lfs"]["pointerSize"],
                }
        return entries

    def repo_info(self, repo: dict[str, Any], sha: str, *, blobs: bool) -> dict[str, Any]:
        siblings = []
        for path, entry in sorted(self.tree(sha).items()):
            siblings.append({"rfilename": path})
            if blobs:
                siblings[-1].update(
                    size=entry["size"], blobId=entry["oid"], **({"lfs": entry["lfs"]} if entry["lfs"] else {})
                )
        return {
            "_id": hashlib.sha1(repo["id"].encode()).hexdigest()[:24],
            "id": repo["id"],
            "author": repo["id"].split("/")[0],
            "sha": sha,
            "lastModified": self._commits[sha]["date"],
            "createdAt": repo["createdAt"],
            "private": repo["private"],
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }

    def new_lfs_ticket(self, sha256: str, size: int) -> str:
        ticket = secrets.token_urlsafe(16)
        self._lfs_tickets[ticket] = (sha256, size)
        return ticket

    def take_lfs_ticket(self, ticket: str) -> tuple[str, int]:
        if ticket not in self._lfs_tickets:
            raise HubError(403, "Unknown or already used LFS upload ticket")
        return self._lfs_tickets.pop(ticket)

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
    disable_nagle_algorithm = True  # headers and body are separate writes: without this each answer waits ~40 ms
    timeout = 60  # idle keep-alive connections end by themselves
    server: _HubHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.hub.request_log.append(
            f"{self.command} {self.path} {int(code) if isinstance(code, int) else code}"
        )

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _body(self) -> bytes:
        """The request body, from Content-Length or chunked transfer encoding."""
        self._body_read = True
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)  # CRLF after each chunk
        while self.rfile.readline(1024).strip():
            pass  # trailers
        return b"".join(chunks)

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        if self._answer_lost:  # a fault with after=True: the work is done, the answer replaced by the fault's
            return
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # tell the client, or it reuses a connection about to close ("disconnected")
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode())

    def _dispatch(self) -> None:
        self._body_read = self._answer_lost = False
        hub = self.server.hub
        try:
            url = urlsplit(self.path)
            segments = [unquote(s) for s in url.path.strip("/").split("/")]
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            with hub.lock:
                fault = hub.fault_for(self.command, url.path)
                if fault is not None:
                    injected = HubError(
                        fault.status, f"Injected fault: {self.command} {url.path} (request {fault.seen})"
                    )
                    if not fault.after:
                        raise injected
                    self._answer_lost = True
                    try:
                        self._route(hub, segments, query)
                    finally:
                        self._answer_lost = False
                    raise injected
                self._route(hub, segments, query)
        except HubError as error:
            if not self._body_read and (self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding")):
                self.close_connection = True  # the unread request body is still on the wire
            headers = {**error.headers, "X-Error-Message": error.message.encode("ascii", "replace").decode()[:500]}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, json.dumps({**error.body, "error": error.message}).encode(), headers)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception:
            hub.errors.append(traceback.format_exc())
            self.close_connection = True
            self._send(500, b'{"error": "Internal error in the local hub (see LocalHub.errors)"}')

    def _route(self, hub: LocalHub, segments: list[str], query: dict[str, str]) -> None:
        method = self.command
        if segments == ["api", "whoami-v2"] and method == "GET":
            user = hub.authenticate(self.headers.get("Authorization"), required=True)
            auth = {"type": "access_token", "accessToken": {"displayName": "local-hub", "role": hub.token_role}}
            orgs = [{"type": "org", "name": name, "roleInOrg": role} for name, role in hub.orgs.items()]
            self._json({"type": "user", "name": user, "fullname": "Local Test User", "orgs": orgs, "auth": auth})
        elif segments == ["api", "repos", "create"] and method == "POST":
            self._create_repo(hub, _json_object(self._body()))
        elif segments == ["api", "repos", "delete"] and method == "DELETE":
            hub.authenticate(self.headers.get("Authorization"), required=True)
            payload = _json_object(self._body())
            repo_id = f"{payload.get('organization') or hub.user}/{payload.get('name')}"
            hub.check_write(repo_id)
            hub.delete_repo(payload.get("type") or "model", repo_id)
            self._json({})
        elif segments == ["api", "validate-yaml"] and method == "POST":
            self._body()
            self._json({"errors": [], "warnings": []})
        elif segments[0] == "api" and len(segments) >= 4 and segments[1] in REPO_TYPES:
            self._repo_api(hub, REPO_TYPES[segments[1]], "/".join(segments[2:4]), segments[4:], query)
        elif segments[:2] == ["_lfs", "upload"] and len(segments) == 3 and method == "PUT":
            sha256, size = hub.take_lfs_ticket(query.get("ticket", ""))
            data = self._body()
            if sha256 != segments[2] or hashlib.sha256(data).hexdigest() != sha256 or len(data) != size:
                raise HubError(400, f"LFS upload does not match its oid/size ({sha256}, {size} bytes)")
            hub.objects[sha256] = data
            self._send(200)
        elif segments[-4:] == ["info", "lfs", "objects", "batch"] and method == "POST":
            self._lfs_batch(hub, segments[:-4], _json_object(self._body()))
        elif method in ("GET", "HEAD") and "resolve" in segments[2:4]:
            self._resolve(hub, segments)
        else:
            raise HubError(404, f"Not found: {method} {self.path}")

    def _create_repo(self, hub: LocalHub, payload: dict[str, Any]) -> None:
        hub.authenticate(self.headers.get("Authorization"), required=True)
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIXES or not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,95}", payload.get("name") or ""):
            raise HubError(400, f"Invalid repo type or name: {repo_type!r}, {payload.get('name')!r}")
        repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
        hub.check_write(repo_id)
        url = f"{self.server.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        if not hub.create_repo(repo_type, repo_id, private=private):
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", url=url)
        self._json({"url": url, "name": repo_id})

    def _repo_api(self, hub: LocalHub, repo_type: str, repo_id: str, rest: list[str], query: dict[str, str]) -> None:
        write = self.command == "POST"
        body = self._body() if write else b""
        repo = hub.repo(repo_type, repo_id, hub.authenticate(self.headers.get("Authorization"), required=write))
        action, revision, path = (rest + ["", "main"])[0], (rest[1:] or ["main"])[0], "/".join(rest[2:])
        if self.command == "GET" and action in ("", "revision"):
            sha = hub.resolve_revision(repo, revision)
            self._json(hub.repo_info(repo, sha, blobs=query.get("blobs") in ("1", "true", "True")))
        elif self.command == "GET" and action == "tree":
            recursive = query.get("recursive") in ("1", "true", "True")
            self._json(hub.list_tree(hub.resolve_revision(repo, revision), path, recursive=recursive))
        elif self.command == "GET" and action == "commits":
            commits = hub.history(repo, hub.resolve_revision(repo, revision))
            self._json(
                [
                    {
                        "id": c["id"],
                        "authors": [{"user": hub.user}],
                        "date": c["date"],
                        "title": c["title"],
                        "message": c["message"],
                    }
                    for c in commits
                ]
            )
        elif write and action in ("preupload", "commit") and revision == "main" and not query.get("create_pr"):
            hub.check_write(repo_id)
            (self._preupload if action == "preupload" else self._commit)(hub, repo, body)
        else:
            raise HubError(404, f"Not found: {self.command} {self.path} (the local hub has one branch, main)")

    def _preupload(self, hub: LocalHub, repo: dict[str, Any], body: bytes) -> None:
        tree = hub.tree(repo["head"])
        files = []
        for item in _json_object(body).get("files", []):
            path, existing = item["path"], tree.get(item["path"])
            mode = hub.upload_mode(tree, path, int(item.get("size", 0)), base64.b64decode(item.get("sample", "")))
            oid = None if existing is None else (existing["lfs"] or {}).get("sha256", existing["oid"])
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": files})

    def _commit(self, hub: LocalHub, repo: dict[str, Any], body: bytes) -> None:
        header: dict[str, Any] = {}
        operations: list[tuple] = []
        for line in filter(None, (line.strip() for line in body.splitlines())):
            item = _json_object(line)
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                header = value
            elif key == "file" and value.get("encoding", "base64") == "base64":
                operations.append(("file", value["path"], base64.b64decode(value["content"], validate=True)))
            elif key == "lfsFile" and value.get("algo", "sha256") == "sha256":
                operations.append(("lfsFile", value["path"], (value["oid"], value["size"])))
            else:
                raise HubError(400, f"Commit operation not supported by the local hub: {key!r}")
        sha = hub.commit(
            repo["type"],
            repo["id"],
            operations,
            title=header.get("summary", ""),
            message=header.get("description", ""),
            parent_commit=header.get("parentCommit"),
        )
        url = f"{self.server.endpoint}/{URL_PREFIXES[repo['type']]}{repo['id']}/commit/{sha}"
        self._json({"success": True, "commitOid": sha, "commitUrl": url, "pullRequestUrl": None})

    def _lfs_batch(self, hub: LocalHub, segments: list[str], payload: dict[str, Any]) -> None:
        hub.authenticate(self.headers.get("Authorization"), required=True)
        repo_type = "dataset" if segments[0] == "datasets" else "model"
        repo_id = "/".join(segments[1:] if repo_type == "dataset" else segments)
        if not repo_id.endswith(".git") or payload.get("operation") != "upload":
            raise HubError(404, f"Not found: {self.path} (the local hub takes LFS uploads only)")
        hub.repo(repo_type, repo_id[:-4], hub.user)
        hub.check_write(repo_id[:-4])
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], obj["size"]
            if hub.has_object(oid):
                objects.append({"oid": oid, "size": size})  # no "actions": the client skips the upload
            else:
                href = f"{self.server.endpoint}/_lfs/upload/{oid}?ticket={hub.new_lfs_ticket(oid, size)}"
                objects.append({"oid": oid, "size": size, "actions": {"upload": {"href": href}}})
        body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
        self._send(200, body, content_type="application/vnd.git-lfs+json")

    def _resolve(self, hub: LocalHub, segments: list[str]) -> None:
        repo_type = "dataset" if segments[0] == "datasets" else "model"
        if repo_type == "dataset":
            segments = segments[1:]
        repo = hub.repo(
            repo_type, "/".join(segments[:2]), hub.authenticate(self.headers.get("Authorization"), required=False)
        )
        sha, filename = hub.resolve_revision(repo, segments[3]), "/".join(segments[4:])
        entry = hub.tree(sha).get(filename)
        if entry is None:
            raise HubError(404, f"Entry not found: {filename}", "EntryNotFound", {"X-Repo-Commit": sha})
        etag = entry["lfs"]["sha256"] if entry["lfs"] else entry["oid"]
        disposition = f"inline; filename*=UTF-8''{quote(filename.rsplit('/', 1)[-1])}"
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Content-Disposition": disposition}
        if entry["lfs"]:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(entry["size"])})
        self._send(200, hub.objects[etag], headers, "application/octet-stream")


def configure_clients_for(
    endpoint: str, token: str, monkeypatch: pytest.MonkeyPatch, cache_dir: str | os.PathLike
) -> None:
    """Point huggingface_hub, transformers and datasets at ``endpoint`` with ``token``, online, without Xet.

    Caches go to ``cache_dir`` (use a per-test ``tmp_path``). Everything is set through ``monkeypatch`` and is undone
    at the end of the test. See the module docstring for the list of knobs and why each is needed.
    """
    # Import first: the libraries read the environment at import time, and monkeypatch must record (and later
    # restore) the suite's values, not the ones set below.
    import datasets.config
    import huggingface_hub.hf_api
    import transformers.utils.hub
    from huggingface_hub import constants

    hf_home = Path(cache_dir) / "hf_home"
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

    hub_constants = {
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
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None, raising=False)

    downloads = datasets_cache / "downloads"
    datasets_constants = {
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
    tmp_path: str | os.PathLike, monkeypatch: pytest.MonkeyPatch, **hub_kwargs: Any
) -> Iterator[HubSession]:
    """Serve a fresh hub and configure every client for it (caches in ``tmp_path/cache``)."""
    hub = LocalHub(**hub_kwargs)
    with hub.serve() as endpoint:
        configure_clients_for(endpoint, hub.token, monkeypatch, Path(tmp_path) / "cache")
        try:
            yield HubSession(hub=hub, endpoint=endpoint, token=hub.token)
        finally:
            from huggingface_hub import HfFileSystem

            HfFileSystem.clear_instance_cache()  # instances are cached per endpoint: drop this server's


def commit_titles(repo_id: str, repo_type: str = "model") -> list[str]:
    """Titles of the commits after the repo's creation, oldest first (one per push), as the client lists them."""
    from huggingface_hub import HfApi

    return [commit.title for commit in HfApi().list_repo_commits(repo_id, repo_type=repo_type)][::-1][1:]
