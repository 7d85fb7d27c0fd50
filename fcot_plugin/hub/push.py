"""Hub pushes: the token checked before anything is written, and every push one commit with all its files.

One ``create_commit`` per repo, the card included: the Hub never holds a model without its card, or data without
theirs, and a failed push changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi

from fcot_plugin.core.errors import FcotError


class HubError(FcotError):
    """A Hub operation that cannot go ahead; the message says how to fix it."""


def require_hub_token(token: str | None = None) -> str:
    """The user name behind the token, or a clear error before anything is trained or written."""
    try:
        return HfApi(token=token).whoami()["name"]
    except Exception as error:  # no token, a bad token, or an unreachable Hub: the fix is the same
        raise HubError(
            f"pushing to the Hub needs a valid token ({type(error).__name__}: {error}). Log in with "
            f"`hf auth login` or set HF_TOKEN, or turn off push_to_hub"
        ) from None


def folder_files(folder: str | Path, exclude: Iterable[str] = ("checkpoint-*",)) -> dict[str, Path]:
    """Every file under ``folder`` by its path in the repo, less top-level entries matching ``exclude``."""
    folder = Path(folder)
    patterns = list(exclude)
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(Path(path.relative_to(folder).parts[0]).match(p) for p in patterns)
    }


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
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=content if isinstance(content, bytes) else str(content))
        for name, content in sorted(files.items())
    ]
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    api.create_commit(repo_id, operations, commit_message=commit_message, repo_type=repo_type)
    return f"{api.endpoint}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


def push_dataset(path: str | Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Push a dataset folder written by ``fcot curate`` to the Hub: parquet data and card in one commit."""
    import tempfile

    import datasets

    require_hub_token(token)
    path = Path(path)
    train = datasets.load_from_disk(str(path))["train"]
    with tempfile.TemporaryDirectory(prefix="fcot-push-") as staging:
        parquet = Path(staging) / "train.parquet"
        train.to_parquet(str(parquet))
        files = {
            "README.md": path / "README.md",
            "data/train-00000-of-00001.parquet": parquet,
        }  # the card's data/train-*
        return push_files(
            repo_id, files, repo_type="dataset", commit_message="Add Fine-tune-CoT data", token=token, private=private
        )
