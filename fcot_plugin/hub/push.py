"""Hub pushes: repo ids and the token checked before anything is written, every push one commit with all its files,
and a student pushed with its dataset as a pair that the Hub never holds half-published.

One ``create_commit`` per repo, the card included: the Hub never holds a model without its card, or data without
theirs. A pair (:func:`publish_student`) goes model first, data second; a repo is created right before its commit,
and one that this push created and whose commit failed is deleted again, so the Hub holds nothing, or the complete
model, or both, never data without its model or an empty repo. A push that stops part-way raises
:class:`PushIncomplete`: one line with what is published, what is not, and the command that finishes
(``python -m fcot_plugin.hub.push ...``, safe to run twice: unchanged files make no commit).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi

from fcot_plugin.core.errors import FcotError

logger = logging.getLogger(__name__)

#: ``python -m`` this module: the command that finishes a push that stopped part-way
FINISH_MODULE = "fcot_plugin.hub.push"
MODEL_COMMIT = "Add Fine-tune-CoT student"
DATA_COMMIT = "Add Fine-tune-CoT data"
DATA_FILE = "data/train-00000-of-00001.parquet"  # what the dataset card's ``data/train-*`` config reads
_TOKEN_FIX = "Log in with `hf auth login` or set HF_TOKEN, or turn off push_to_hub"


class HubError(FcotError):
    """A Hub operation that cannot go ahead; the message says how to fix it."""


class HubUnreachable(HubError):
    """The Hub did not answer a check (a 5xx, a timeout, no network): nothing was written, trying again may work."""


class PushIncomplete(HubError):
    """A push that stopped part-way: the message says what the Hub holds, what it does not, and how to finish."""

    def __init__(self, message: str, *, published: list[str], not_published: list[str], finish: str) -> None:
        super().__init__(message)
        self.published, self.not_published, self.finish = published, not_published, finish


# ---------------------------------------------------------------------- checks before anything is written


def _reason(error: BaseException) -> str:
    """One short line for an error of the Hub client: ``HTTP 500: <server message>`` or ``Type: text``."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        message = getattr(error, "server_message", None) or response.headers.get("X-Error-Message") or ""
        text = f"HTTP {status}" + (f": {message}" if message else "")
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _status(error: BaseException) -> int | None:
    return getattr(getattr(error, "response", None), "status_code", None)


def check_repo_id(repo_id: str, what: str = "--push_to_hub") -> str:
    """``repo_id`` as ``namespace/name`` that huggingface_hub's own validation accepts, else one line naming it."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"{what}: {repo_id!r} is not a Hub repo id; pass <user or organisation>/<name>")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        reason = " ".join(str(error).split())
        raise HubError(f"{what}: {repo_id!r} is not a valid Hub repo id ({reason})") from None
    return repo_id


def student_repo_ids(hub_model_id: str, hub_dataset_id: str | None = None) -> tuple[str, str]:
    """The repos ``fcot distill --push_to_hub`` pushes to: ``--hub_model_id`` (the student) and ``--hub_dataset_id``
    (its data; default ``<hub_model_id>-data``).

    Both are checked here (no request): a wrong id fails before the first stage.
    """
    model_repo = check_repo_id(hub_model_id, "--hub_model_id")
    return model_repo, check_repo_id(hub_dataset_id or f"{model_repo}-data", "--hub_dataset_id")


def whoami(token: str | None = None) -> dict[str, Any]:
    """What the Hub says about the token; one line for no token, a refused token, or a Hub that did not answer."""
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    try:
        return HfApi(token=token).whoami()
    except LocalTokenNotFoundError:
        raise HubError(f"pushing to the Hub needs a valid token (none is set). {_TOKEN_FIX}") from None
    except HfHubHTTPError as error:
        if _status(error) in (401, 403):
            raise HubError(
                f"pushing to the Hub needs a valid token (the Hub refused it: {_reason(error)}). {_TOKEN_FIX}"
            ) from None
        raise HubUnreachable(f"the Hub did not answer the token check ({_reason(error)})") from error
    except Exception as error:  # no network, a timeout, a proxy: nothing was written, the same command may work later
        raise HubUnreachable(f"the Hub could not be reached to check the token ({_reason(error)})") from error


def writable_namespaces(account: dict[str, Any]) -> list[str]:
    """The user's name and its organisations in which its role is more than ``read`` (from ``whoami``)."""
    orgs = [org.get("name", "") for org in account.get("orgs") or [] if org.get("roleInOrg") != "read"]
    return [account.get("name", ""), *orgs]


def write_denial(account: dict[str, Any], namespace: str) -> str | None:
    """Why the token behind ``account`` (``whoami``'s answer) cannot write to ``namespace``; None if it can.

    A read token, a namespace that is neither the user's nor one of its organisations', a ``read`` role in the
    organisation, or a fine-grained token without ``repo.write`` on the namespace.
    """
    token = (account.get("auth") or {}).get("accessToken") or {}
    user = account.get("name", "?")
    if token.get("role") == "read":
        return f"the token of {user} is read-only"
    if namespace.lower() != user.lower():
        org = next((o for o in account.get("orgs") or [] if o.get("name", "").lower() == namespace.lower()), None)
        if org is None:
            return f"{namespace!r} is neither {user} nor one of its organisations"
        if org.get("roleInOrg") == "read":
            return f"{user} has the read role in {namespace}"
    if token.get("role") == "fineGrained":
        grants = token.get("fineGrained") or {}
        scoped = [
            s
            for s in grants.get("scoped") or []
            if (s.get("entity") or {}).get("name", "").lower() == namespace.lower()
        ]
        if "repo.write" not in (grants.get("global") or []) and not any(
            "repo.write" in (s.get("permissions") or []) for s in scoped
        ):
            return f"the fine-grained token of {user} has no repo.write permission on {namespace}"
    return None


def check_push_target(repo_ids: str | Iterable[str], token: str | None = None, *, what: str = "--push_to_hub") -> str:
    """Before anything is trained or written: each repo id valid, the token valid, and its user allowed to write to
    each id's namespace. One ``whoami`` request, nothing written; returns the user name.

    Raises :class:`HubError` (one line with the fix), :class:`HubUnreachable` when the Hub did not answer.
    """
    ids = [repo_ids] if isinstance(repo_ids, str) else list(repo_ids)
    for repo_id in ids:
        check_repo_id(repo_id, what)
    account = whoami(token)
    for namespace in dict.fromkeys(repo_id.split("/")[0] for repo_id in ids):
        denial = write_denial(account, namespace)
        if denial:
            can = ", ".join(writable_namespaces(account)) or "none"
            raise HubError(
                f"{what}: cannot push to {namespace}/...: {denial}; pass a namespace the token can write to "
                f"({can}) or use a token with write access to {namespace}"
            )
    return account.get("name", "")


def require_hub_token(token: str | None = None) -> str:
    """The user name behind the token, or a clear error before anything is trained or written."""
    try:
        return whoami(token)["name"]
    except HubUnreachable as error:
        raise HubError(
            f"pushing to the Hub needs a valid token, and {error}; nothing was pushed: check the "
            f"connection and run the same command again"
        ) from None


# ---------------------------------------------------------------------- one repo, one commit


def folder_files(folder: str | Path, exclude: Iterable[str] = ("checkpoint-*",)) -> dict[str, Path]:
    """Every file under ``folder`` by its path in the repo, less top-level entries matching ``exclude`` and fcot's
    folder marker (it records local paths, which are nobody's business on the Hub)."""
    from fcot_plugin.core.folders import MARKER

    folder = Path(folder)
    patterns = [*exclude, MARKER]
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(Path(path.relative_to(folder).parts[0]).match(p) for p in patterns)
    }


def _operations(files: dict[str, str | Path | bytes]) -> list[CommitOperationAdd]:
    return [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=content if isinstance(content, bytes) else str(content))
        for name, content in sorted(files.items())
    ]


def _url(api: HfApi, repo_id: str, repo_type: str) -> str:
    return f"{api.endpoint}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


def push_files(
    repo_id: str,
    files: dict[str, str | Path | bytes],
    *,
    repo_type: str = "model",
    commit_message: str,
    token: str | None = None,
    private: bool = False,
) -> str:
    """Create the repo if needed and add ``files`` (path in repo → local file or bytes) as ONE commit.

    One commit per push: the Hub never holds a model without its card, or data without theirs, and a failed
    push changes nothing. Returns the repo's URL.
    """
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    api.create_commit(repo_id, _operations(files), commit_message=commit_message, repo_type=repo_type)
    return _url(api, repo_id, repo_type)


class _StepFailed(Exception):
    """One repo's push failed; ``what`` says how, ``left`` what it left on the Hub (None: nothing changed)."""

    def __init__(self, what: str, left: str | None = None) -> None:
        super().__init__(what)
        self.what, self.left = what, left


def _push_repo(api: HfApi, repo_id: str, repo_type: str, files: dict[str, Any], message: str, private: bool) -> str:
    """Create the repo right before its commit (if it is not there), then ONE commit; returns the repo's URL.

    If the commit fails in a repo this push created, the repo is deleted again when it holds nothing but the
    Hub's ``.gitattributes``; one holding files means the commit landed after all, and counts as pushed.
    Unchanged files make no commit: pushing the same files twice changes nothing.
    """
    from huggingface_hub.errors import RepositoryNotFoundError

    kind = "dataset" if repo_type == "dataset" else "model"
    try:
        existed = api.repo_exists(repo_id, repo_type=repo_type)
    except Exception as error:
        raise _StepFailed(f"checking whether the {kind} repo {repo_id} exists failed ({_reason(error)})") from error
    if not existed:
        try:
            api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        except Exception as error:
            left = _empty_repo_left(api, repo_id, repo_type, kind)  # a create that landed but was not answered
            raise _StepFailed(f"creating the {kind} repo {repo_id} failed ({_reason(error)})", left) from error
    try:
        api.create_commit(repo_id, _operations(files), commit_message=message, repo_type=repo_type)
    except Exception as error:
        cause = f"the commit to the {kind} repo {repo_id} failed ({_reason(error)})"
        if existed:  # a commit is all or nothing: an error answer means no change
            unchanged = "the repo is unchanged" if _status(error) else "it holds its earlier files or all the new ones"
            raise _StepFailed(f"{cause}; {unchanged}") from error
        try:
            landed = set(api.list_repo_files(repo_id, repo_type=repo_type)) - {".gitattributes"}
        except RepositoryNotFoundError:
            raise _StepFailed(cause) from error
        except Exception as check_error:
            left = f"the {kind} repo {repo_id}, which this push created and may be empty"
            raise _StepFailed(f"{cause}, and checking it failed too ({_reason(check_error)})", left) from error
        if landed:  # the answer was lost, not the commit: a commit is all or nothing
            logger.warning("%s, but the repo holds the pushed files: the commit landed", cause)
            return _url(api, repo_id, repo_type)
        left = _delete_created(api, repo_id, repo_type, kind)
        done = (
            "the empty repo this push created was deleted" if left is None else "its empty repo could not be deleted"
        )
        raise _StepFailed(f"{cause}; {done}", left) from error
    return _url(api, repo_id, repo_type)


def _empty_repo_left(api: HfApi, repo_id: str, repo_type: str, kind: str) -> str | None:
    """After a failed create: delete ``repo_id`` if it is there after all and holds nothing; what is left, as words."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        if set(api.list_repo_files(repo_id, repo_type=repo_type)) - {".gitattributes"}:
            return None  # not empty: not ours to delete
    except RepositoryNotFoundError:
        return None  # the usual case: nothing was created
    except Exception as error:
        return f"perhaps an empty {kind} repo {repo_id} (checking it failed: {_reason(error)})"
    return _delete_created(api, repo_id, repo_type, kind)


def _delete_created(api: HfApi, repo_id: str, repo_type: str, kind: str) -> str | None:
    """Delete the empty repo this push created; None when gone, else what is left on the Hub, as words."""
    try:
        api.delete_repo(repo_id, repo_type=repo_type, missing_ok=True)
    except Exception as error:
        return (
            f"an empty {kind} repo {repo_id} (created by this push; the Hub refused to delete it: {_reason(error)}; "
            f"the command below fills it, or delete it on the Hub)"
        )
    return None


# ---------------------------------------------------------------------- datasets


def dataset_files(path: str | Path, staging: str | Path) -> dict[str, Path]:
    """The files of a dataset folder written by ``fcot curate``, as the Hub repo holds them: its card and the train
    split as parquet (written into ``staging``). Checked before anything is pushed."""
    import datasets

    path, staging = Path(path).expanduser(), Path(staging)
    card = path / "README.md"
    try:
        train = datasets.load_from_disk(str(path))["train"]
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise HubError(f"{path} is not a dataset folder written by fcot curate ({_reason(error)})") from None
    if not card.is_file():
        raise HubError(f"{path} has no README.md (the dataset card); write it with fcot curate")
    parquet = staging / "train.parquet"
    train.to_parquet(str(parquet))
    return {"README.md": card, DATA_FILE: parquet}  # the card's data/train-*


def finish_command(
    *,
    student_dir: str | Path | None = None,
    dataset_dir: str | Path | None = None,
    model_repo: str | None = None,
    dataset_repo: str | None = None,
    private: bool = False,
) -> str:
    """The shell command that (re)pushes what is given, with absolute paths: ``python -m fcot_plugin.hub.push ...``."""
    argv = ["python", "-m", FINISH_MODULE]
    if student_dir is not None:
        argv += ["--student_dir", str(Path(student_dir).expanduser().absolute()), "--model_repo", str(model_repo)]
    if dataset_dir is not None:
        argv += ["--dataset_dir", str(Path(dataset_dir).expanduser().absolute()), "--dataset_repo", str(dataset_repo)]
    return shlex.join(argv + (["--private"] if private else []))


def _incomplete(
    cause: str, published: list[str], pending: list[str], left: str | None, finish: str, also: str | None
) -> PushIncomplete:
    on_hub = ", ".join(published) or "nothing"
    if left:
        on_hub = f"{on_hub}; left on the Hub: {left}"
    again = f" (or {also})" if also else ""
    message = (
        f"the Hub push stopped: {cause}. Published: {on_hub}. Not published: {', '.join(pending)}. To finish, run "
        f"(safe to run twice): {finish}{again}"
    )
    return PushIncomplete(message, published=published, not_published=pending, finish=finish)


def push_dataset(
    path: str | Path, repo_id: str, token: str | None = None, private: bool = False, *, also: str | None = None
) -> str:
    """Push a dataset folder written by ``fcot curate``: parquet data and card in one commit; returns the URL.

    The id and the token's rights are checked first; a failed push raises :class:`PushIncomplete` with the command
    that finishes it (``also``: another one, e.g. the caller's own command run again).
    """
    finish = finish_command(dataset_dir=path, dataset_repo=repo_id, private=private)
    pending = [f"the dataset {repo_id}"]
    try:
        check_push_target([repo_id], token)
    except HubUnreachable as error:
        raise _incomplete(str(error), [], pending, None, finish, also) from error
    with tempfile.TemporaryDirectory(prefix="fcot-push-") as staging:
        files = dataset_files(path, staging)
        try:
            return _push_repo(HfApi(token=token), repo_id, "dataset", files, DATA_COMMIT, private)
        except _StepFailed as failed:
            raise _incomplete(failed.what, [], pending, failed.left, finish, also) from failed


# ---------------------------------------------------------------------- a student and its dataset


def publish_student(
    student_dir: str | Path,
    dataset_dir: str | Path,
    model_repo: str,
    dataset_repo: str,
    *,
    token: str | None = None,
    private: bool = False,
    card_update: Callable[[Path], object] | None = None,
    also: str | None = None,
) -> dict[str, str]:
    """Push a student folder (less ``checkpoint-*``) and its curated dataset as a pair; returns their URLs
    (``{"model": ..., "dataset": ...}``).

    1. Before any request: both ids valid, the dataset readable and converted to parquet, ``card_update(student_dir)``
       (e.g. results into the local card), the student's files listed. Then, before any write, the token valid
       and allowed to write to both namespaces (one ``whoami``).
    2. The model: its repo created right before its commit, one commit with weights, tokenizer and card.
    3. The data, the same way. Model first: a model without its data is a complete, usable student (its card
       stands alone), data without the model it was made for is not what was asked for.

    A failed commit in a repo this push created deletes that (empty) repo again. So the Hub holds nothing, the
    complete model, or the pair. Anything else raises :class:`PushIncomplete`, one line: what is published, what
    is not, and the command that finishes (``python -m fcot_plugin.hub.push ...``; ``also`` names another, e.g.
    the same ``fcot distill`` command). Running it again when everything is there makes no commit.
    """
    student_dir, dataset_dir = Path(student_dir).expanduser(), Path(dataset_dir).expanduser()
    finish = finish_command(
        student_dir=student_dir,
        dataset_dir=dataset_dir,
        model_repo=model_repo,
        dataset_repo=dataset_repo,
        private=private,
    )
    model, data = f"the model {model_repo}", f"the dataset {dataset_repo}"
    check_repo_id(model_repo)
    check_repo_id(dataset_repo)
    if not student_dir.is_dir():
        raise HubError(f"the student folder {student_dir} does not exist; nothing was pushed")
    with tempfile.TemporaryDirectory(prefix="fcot-push-") as staging:
        data_files = dataset_files(dataset_dir, staging)
        if card_update is not None:  # before any request: the finishing command then pushes the final card
            card_update(student_dir)
        model_files = folder_files(student_dir, exclude=["checkpoint-*"])  # weights, tokenizer and card together
        if not model_files:
            raise HubError(f"the student folder {student_dir} holds no files; nothing was pushed")
        try:
            check_push_target([model_repo, dataset_repo], token)
        except HubUnreachable as error:
            raise _incomplete(str(error), [], [model, data], None, finish, also) from error
        api = HfApi(token=token)
        try:
            model_url = _push_repo(api, model_repo, "model", model_files, MODEL_COMMIT, private)
        except _StepFailed as failed:
            raise _incomplete(failed.what, [], [model, data], failed.left, finish, also) from failed
        try:
            dataset_url = _push_repo(api, dataset_repo, "dataset", data_files, DATA_COMMIT, private)
        except _StepFailed as failed:
            raise _incomplete(
                failed.what, [f"{model} (complete, {model_url})"], [data], failed.left, finish, also
            ) from failed
    return {"model": model_url, "dataset": dataset_url}


# ---------------------------------------------------------------------- python -m fcot_plugin.hub.push


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    """``python -m fcot_plugin.hub.push``: push a student and its dataset as a pair, or a dataset alone.

    What a stopped push prints to finish it; pushing files the Hub already holds makes no commit.
    """
    import sys

    from fcot_plugin.core.command_line import debug_requested, exit_with_one_line
    from fcot_plugin.core.secrets import install_log_redaction

    debug, argv = debug_requested(sys.argv[1:] if argv is None else argv)

    prog = f"python -m {FINISH_MODULE}"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Push an fcot student and its curated dataset as a pair (model first), or a dataset alone; "
        "files already on the Hub make no new commit.",
    )
    parser.add_argument("--student_dir", help="the student folder (checkpoint-* left out)")
    parser.add_argument("--model_repo", help="its Hub model repo, namespace/name")
    parser.add_argument("--dataset_dir", required=True, help="the dataset folder written by fcot curate")
    parser.add_argument("--dataset_repo", required=True, help="its Hub dataset repo, namespace/name")
    parser.add_argument("--private", action="store_true", help="create missing repos as private")
    args = parser.parse_args(argv)
    if (args.student_dir is None) != (args.model_repo is None):
        parser.error("--student_dir and --model_repo go together")
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    install_log_redaction()

    def push() -> dict[str, str]:
        if args.student_dir is None:
            return {"dataset": push_dataset(args.dataset_dir, args.dataset_repo, private=args.private)}
        return publish_student(
            args.student_dir, args.dataset_dir, args.model_repo, args.dataset_repo, private=args.private
        )

    urls = exit_with_one_line(prog, push, debug)
    for kind, url in urls.items():
        print(f"{kind}: {url}")
    return urls


if __name__ == "__main__":
    main()
