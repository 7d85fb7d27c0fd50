"""Which engine scores a student (``--eval_engine``): lm-eval's ``hf-regroup`` or ``hf`` in this process, or one
vLLM server for the whole run.

``fcot distill`` scores several models of one architecture: the untrained student (zero-shot and zero-shot-CoT
baselines), every epoch checkpoint that validation compares, and the trained student. With ``--eval_engine vllm``
they all go through a single vLLM server started once, on the first model scored. Each later model's weights are
swapped into it in place (:func:`~fcot_plugin.serving.vllm_swaps.swap_weights`, a few seconds), so there is no server
start-up per checkpoint. lm-eval then scores through ``local-completions`` (``zscot`` over it for the zero-shot-CoT
baseline) with the task's own prompts, stop sequences, budget and answer rules, as in this process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.harness.model_names import LOCAL_MODEL, ZSCOT
from fcot_plugin.harness.runner import run_lm_eval
from fcot_plugin.training.adapters import adapter_base, lm_eval_model_args

logger = logging.getLogger(__name__)

#: what the vLLM server calls the model it serves, whichever weights it holds at the moment
SERVED_NAME = "fcot-scored-model"


class Scorer:
    """lm-eval's ``hf-regroup`` (``zscot`` over it for zero-shot-CoT), in this process."""

    engine = "hf-regroup"
    #: the lm-eval model that generates (``zscot``'s ``base`` for zero-shot-CoT)
    model = LOCAL_MODEL

    def __init__(self, dtype: str, batch_size: int) -> None:
        self.dtype = dtype
        self.batch_size = batch_size

    def lm_eval_model(self, weights: str | Path, *, zscot: bool = False) -> tuple[str, str]:
        """(lm-eval model, model args) that score ``weights`` (a LoRA folder: ``pretrained=<base>,peft=<it>``)."""
        args = lm_eval_model_args(weights, self.dtype)
        return (ZSCOT, f"base={self.model},{args}") if zscot else (self.model, args)

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
        return run_lm_eval(
            model, model_args, [task], batch_size=self.lm_eval_batch_size, gen_kwargs=gen_kwargs, **lm_eval_options
        )

    def close(self) -> None:
        """Nothing runs outside this process."""

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HfScorer(Scorer):
    """lm-eval's own ``hf`` model (``zscot`` over it for zero-shot-CoT), in this process: fixed batches, each
    decoded until its longest answer ends."""

    engine = "hf"
    model = "hf"


class VllmScorer(Scorer):
    """One vLLM server for every model scored (:class:`~fcot_plugin.serving.vllm_swaps.SwappingServer`): the first
    call starts it, later models are swapped in.

    ``batch_size`` becomes the requests in flight (vLLM batches them continuously). ``close`` stops the server;
    the scorer is a context manager too.
    """

    engine = "vllm"

    def __init__(
        self, dtype: str, batch_size: int, log_file: str | Path, device: str | None = None, server_args=()
    ) -> None:
        from fcot_plugin.serving.vllm_swaps import SwappingServer

        super().__init__(dtype, batch_size)
        self.log_file = Path(log_file)
        self.device = device
        self._server = SwappingServer(
            self.log_file, SERVED_NAME, dtype=dtype, max_model_len=None, device=device, extra_args=list(server_args)
        )

    @property
    def _served(self):
        return self._server.served

    @property
    def start_up_seconds(self) -> float | None:
        """From the first call until the server answered."""
        return self._server.start_up_seconds

    @property
    def swap_seconds(self) -> list[float]:
        """Each weight swap, in order."""
        return self._server.swap_seconds

    def lm_eval_model(self, weights: str | Path, *, zscot: bool = False) -> tuple[str, str]:
        if adapter_base(weights) is not None:
            raise FcotError(
                f"{weights} is a LoRA adapter, which --eval_engine vllm cannot score: pass --eval_engine hf-regroup"
            )
        path = str(Path(weights).expanduser().absolute()) if Path(weights).expanduser().exists() else str(weights)
        if self._served is None:
            logger.info("vllm: one server scores every model of this run; log: %s", self.log_file)
            if self.device and self.device.startswith("cuda"):  # what this process freed (a trained student) goes back
                import torch

                torch.cuda.empty_cache()
        served = self._server.load(path)
        args = served.completions_args(tokenizer=self._tokenizer(path), num_concurrent=self.batch_size)
        return (ZSCOT, f"base=local-completions,{args}") if zscot else ("local-completions", args)

    def _tokenizer(self, path: str) -> str:
        """The scored folder's tokenizer; a checkpoint saved without one uses the first model's."""
        from fcot_plugin.training.checkpoints import has_tokenizer

        local = Path(path)
        if not local.is_dir() or has_tokenizer(local):
            return path
        return self._served.tokenizer

    @property
    def lm_eval_batch_size(self) -> int:
        """One prompt per request; ``batch_size`` requests are in flight (``num_concurrent``)."""
        return 1

    def close(self) -> None:
        self._server.close()


def make_scorer(
    engine: str, dtype: str, batch_size: int, log_file: str | Path, device: str | None = None, server_args=()
) -> Scorer:
    """The scorer of ``--eval_engine`` (checked by :class:`~fcot_plugin.pipeline.settings.ScoringArguments`); close
    it when the run is over (a vLLM server runs until then)."""
    if engine == VllmScorer.engine:
        return VllmScorer(dtype, batch_size, log_file, device, server_args)
    return HfScorer(dtype, batch_size) if engine == HfScorer.engine else Scorer(dtype, batch_size)
