"""Which engine scores a student: lm-eval's ``hf-regroup`` in this process, or one vLLM server for the whole run.

``fcot distill`` scores several models of one architecture: the untrained student (zero-shot and zero-shot-CoT
baselines), every epoch checkpoint that validation compares, and the trained student. With ``--eval_engine vllm``
they all go through a single vLLM server started once, on the first model scored. Each later model's weights are
swapped into it in place (:func:`~fcot_plugin.teacher.engine.swap_weights`, a few seconds), so there is no server
start-up per checkpoint. lm-eval then scores through ``local-completions`` (``zscot`` over it for the zero-shot-CoT
baseline) with the task's own prompts, stop sequences, budget and answer rules, as for ``hf``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.harness.model_names import LOCAL_MODEL
from fcot_plugin.harness.runner import run_lm_eval
from fcot_plugin.training.adapters import adapter_base, lm_eval_model_args

logger = logging.getLogger(__name__)

#: ``hf``: lm-eval's ``hf-regroup`` in this process (fcot's default, the faster one on CPU); ``vllm``: a vLLM
#: server from the venv of ``make vllm``.
EVAL_ENGINES = ("hf", "vllm")
#: what the vLLM server calls the model it serves, whichever weights it holds at the moment
SERVED_NAME = "fcot-scored-model"


def check_eval_engine(engine: str) -> None:
    if engine not in EVAL_ENGINES:
        raise FcotError(f"unknown --eval_engine {engine!r}; choose one of: {', '.join(EVAL_ENGINES)}")


class Scorer:
    """lm-eval's ``hf-regroup`` (``zscot`` over it for zero-shot-CoT), in this process."""

    engine = "hf"

    def __init__(self, dtype: str, batch_size: int) -> None:
        self.dtype = dtype
        self.batch_size = batch_size

    def lm_eval_model(self, weights: str | Path, *, zscot: bool = False) -> tuple[str, str]:
        """(lm-eval model, model args) that score ``weights`` (a LoRA folder: ``pretrained=<base>,peft=<it>``)."""
        return ("zscot" if zscot else LOCAL_MODEL), lm_eval_model_args(weights, self.dtype)

    @property
    def lm_eval_batch_size(self) -> int:
        """lm-eval's ``batch_size``: the rows ``hf-regroup`` decodes at once."""
        return self.batch_size

    def score(
        self,
        weights: str | Path,
        task: str,
        *,
        zscot: bool = False,
        max_gen_toks: int | None = None,
        **lm_eval_options: Any,
    ) -> dict[str, Any]:
        """lm-eval's results for ``weights`` on ``task`` (``run_lm_eval``'s ``limit``, ``output_path``,
        ``metadata`` and ``device`` pass through); ``max_gen_toks`` overrides the task's budget."""
        model, model_args = self.lm_eval_model(weights, zscot=zscot)
        gen_kwargs = f"max_gen_toks={max_gen_toks}" if max_gen_toks else None
        return run_lm_eval(model, model_args, [task], batch_size=self.lm_eval_batch_size, gen_kwargs=gen_kwargs,
                           **lm_eval_options)  # fmt: skip

    def close(self) -> None:
        """Nothing runs outside this process."""

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class VllmScorer(Scorer):
    """One vLLM server for every model scored; the first call starts it, later models are swapped in.

    ``batch_size`` becomes the requests in flight (vLLM batches them continuously). ``close`` stops the server;
    the scorer is a context manager too.
    """

    engine = "vllm"

    def __init__(
        self, dtype: str, batch_size: int, log_file: str | Path, device: str | None = None, server_args=()
    ) -> None:
        super().__init__(dtype, batch_size)
        self.log_file = Path(log_file)
        self.device = device
        self.server_args = list(server_args)
        self._stack = ExitStack()
        self._served = None
        self._loaded: str | None = None
        self.start_up_seconds: float | None = None  #: from the first call until the server answered
        self.swap_seconds: list[float] = []  #: each weight swap, in order

    def lm_eval_model(self, weights: str | Path, *, zscot: bool = False) -> tuple[str, str]:
        from fcot_plugin.teacher.engine import swap_weights

        if adapter_base(weights) is not None:
            raise FcotError(
                f"{weights} is a LoRA adapter, which --eval_engine vllm cannot score: pass --eval_engine hf"
            )
        path = str(Path(weights).expanduser().absolute()) if Path(weights).expanduser().exists() else str(weights)
        if self._served is None:
            started = time.monotonic()
            self._views = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="fcot-vllm-views-")))
            self._served = self._stack.enter_context(self._start(self._view(path)))
            self.start_up_seconds = time.monotonic() - started
        elif path != self._loaded:
            started = time.monotonic()
            swap_weights(self._served, self._view(path))
            self.swap_seconds.append(time.monotonic() - started)
            logger.info("vllm: swapped in the weights of %s (%.1f s)", path, self.swap_seconds[-1])
        self._loaded = path
        args = self._served.completions_args(tokenizer=self._tokenizer(path), num_concurrent=self.batch_size)
        return ("zscot", f"base=local-completions,{args}") if zscot else ("local-completions", args)

    def _view(self, path: str) -> str:
        """The folder the server loads ``path`` from (untied when tied; see :mod:`swappable_weights`); earlier
        views go, as the server holds their weights already."""
        from fcot_plugin.pipeline.swappable_weights import swappable_view

        for old in self._views.iterdir():
            shutil.rmtree(old, ignore_errors=True)
        return str(swappable_view(path, self._views / str(len(self.swap_seconds))))

    def _start(self, path: str):
        from fcot_plugin.teacher.engine import served_model

        logger.info("vllm: one server scores every model of this run; log: %s", self.log_file)
        if self.device and self.device.startswith("cuda"):  # what this process freed (a trained student) goes back
            import torch

            torch.cuda.empty_cache()
        return served_model(path, "vllm", self.log_file, dtype=self.dtype, max_model_len=None, served_name=SERVED_NAME,
                            weight_swaps=True, device=self.device, extra_args=self.server_args)  # fmt: skip

    def _tokenizer(self, path: str) -> str:
        """The scored folder's tokenizer; a checkpoint saved without one uses the first model's."""
        from fcot_plugin.pipeline.preflight import has_tokenizer

        local = Path(path)
        if not local.is_dir() or has_tokenizer(local):
            return path
        return self._served.tokenizer

    @property
    def lm_eval_batch_size(self) -> int:
        """One prompt per request; ``batch_size`` requests are in flight (``num_concurrent``)."""
        return 1

    def close(self) -> None:
        self._stack.close()
        self._served = self._loaded = None


def make_scorer(
    engine: str, dtype: str, batch_size: int, log_file: str | Path, device: str | None = None, server_args=()
) -> Scorer:
    """The scorer of ``--eval_engine``; close it when the run is over (a vLLM server runs until then)."""
    check_eval_engine(engine)
    if engine == "vllm":
        return VllmScorer(dtype, batch_size, log_file, device, server_args)
    return Scorer(dtype, batch_size)
