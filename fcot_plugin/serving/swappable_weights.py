"""Model folders whose weights vLLM can swap in place exactly, tied output embeddings included.

vLLM 0.32's in-place reload (``reload_weights``) loads every layer whose tensors the checkpoint holds and skips
the rest. A model with tied input and output embeddings (SmolLM2, Qwen2.5-0.5B, GPT-2, ...) stores the shared
matrix once, under the input embedding's name, so the output head loads nothing. On the CPU build the head's
matrix is pre-packed for oneDNN when the model loads, so after a swap it kept computing logits with the first
model's head: a swap from a trained SmolLM2 student back to its base gave other greedy text than the base
itself (benchmarks/results/design_measurements.md).

:func:`swappable_view` presents such a folder untied: links to its files, a ``config.json`` with
``tie_word_embeddings: false``, and one small extra safetensors file holding the shared matrix under the output
head's name. The server then starts untied and every swap loads (and re-packs) the head like any other layer. An
untied model's folder is used as it is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fcot_plugin.core.errors import FcotError

HEAD_FILE = "fcot-output-embedding.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def local_folder(weights: str | Path) -> Path:
    """A local folder of ``weights``: itself, or the Hub snapshot (the Hub cache first)."""
    folder = Path(weights).expanduser()
    if folder.is_dir():
        return folder.absolute()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(weights), allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    except Exception as error:  # noqa: BLE001 - the Hub client raises many kinds; each is one line here
        raise FcotError(
            f"cannot fetch {weights} to score it with vLLM ({type(error).__name__}); pass a local folder"
        ) from None


def embedding_names(folder: Path) -> tuple[str, str] | None:
    """(input embedding, output head) tensor names of a model whose two are tied, or None when they are not.

    Read from the model transformers builds from the config, on the meta device (no memory, no weights).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    if not getattr(config.get_text_config(), "tie_word_embeddings", False):
        return None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    modules = {id(module): name for name, module in model.named_modules(remove_duplicate=False)}
    source, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or head.weight is not source.weight:
        return None
    return f"{modules[id(source)]}.weight", f"{modules[id(head)]}.weight"


def _weights_file(folder: Path, name: str) -> Path:
    index = folder / INDEX_FILE
    if index.is_file():
        return folder / json.loads(index.read_text())["weight_map"][name]
    files = sorted(folder.glob("*.safetensors"))
    if len(files) != 1:
        raise FcotError(
            f"{folder} holds {len(files)} safetensors files and no {INDEX_FILE}; save it with save_pretrained"
        )
    return files[0]


def swappable_view(weights: str | Path, view: Path) -> Path:
    """``weights`` as a folder vLLM swaps in exactly: itself when untied, else an untied view written to ``view``
    (replaced if there). The view links to the original files; only the head's matrix is written again."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = local_folder(weights)
    names = embedding_names(folder)
    if names is None:
        return folder
    source, head = names
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir(parents=True)
    for path in folder.iterdir():
        if path.is_file() and path.name not in ("config.json", INDEX_FILE):
            (view / path.name).symlink_to(path.resolve())
    with safe_open(str(_weights_file(folder, source)), "pt") as tensors:
        save_file({head: tensors.get_tensor(source).contiguous()}, str(view / HEAD_FILE), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = False
    if isinstance(config.get("text_config"), dict):
        config["text_config"]["tie_word_embeddings"] = False
    (view / "config.json").write_text(json.dumps(config, indent=2))
    if (folder / INDEX_FILE).is_file():
        index = json.loads((folder / INDEX_FILE).read_text())
        index["weight_map"][head] = HEAD_FILE
        (view / INDEX_FILE).write_text(json.dumps(index, indent=2))
    return view
