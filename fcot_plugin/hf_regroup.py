"""lm-eval's ``hf`` model, regrouping unfinished answers every few tokens: ``lm_eval --model hf-regroup``.

lm-eval's ``hf`` generates a fixed batch until its *longest* answer ends, so finished rows keep costing a forward
pass and one student that rambles to ``max_gen_toks`` holds its whole batch for the full budget. Here every batch
generates at most ``segment_tokens`` tokens (lm-eval's own ``_model_generate``, stop strings included); answers
that ended leave, and the unfinished ones (prompt plus their tokens so far, as token ids) are regrouped into full
batches for the next segment. Decoding a small student on a CPU costs about as much per step for 8 rows as for 32
(reading the weights sets most of a step's time), so full batches of live rows are where the time goes.

Greedy answers are the ones lm-eval's ``hf`` gives, up to the rounding any change of batch composition brings;
sampling draws from the same distribution. transformers' continuous batching would do this per token, but its
paged-attention path on a CPU without flash-attention was slower than this (see the README, *Faster generation*).
Encoder-decoder students and a token-id ``think_end_token`` use lm-eval's ``hf`` path unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from tqdm import tqdm

#: tokens per segment: about the median Fine-tune-CoT answer (60-100 tokens on the paper's tasks), so most
#: answers end in their first segment and a rambler costs its batch at most one segment
DEFAULT_SEGMENT_TOKENS = 96


@register_model("hf-regroup")
class RegroupingHFLM(HFLM):
    """``HFLM`` whose ``generate_until`` regroups unfinished answers every ``segment_tokens`` tokens."""

    def __init__(self, *args: Any, segment_tokens: int = DEFAULT_SEGMENT_TOKENS, **kwargs: Any) -> None:
        segment_tokens = int(segment_tokens)
        if segment_tokens < 1:
            raise ValueError(f"segment_tokens must be >= 1, got {segment_tokens}")
        super().__init__(*args, **kwargs)
        self.segment_tokens = segment_tokens

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        if self.backend != "causal" or isinstance(self.think_end_token, int) or self.batch_size == "auto":
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        results: list[str] = [""] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(index)
        progress = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0,
                        desc="Running generate_until requests")  # fmt: skip
        for indices in groups.values():
            batch = [requests[i] for i in indices]
            for index, text in zip(indices, self._generate_regrouped(batch, progress), strict=True):
                results[index] = text
        progress.close()
        return results

    def _generate_regrouped(self, batch: list, progress: tqdm) -> list[str]:
        """One group of requests sharing generation kwargs, segment by segment."""
        gen_kwargs = batch[0].args[1]
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen_toks = kwargs.pop("max_gen_toks")
        max_context = self.max_length - max_gen_toks
        if max_context <= 0:
            raise ValueError(f"max_gen_toks={max_gen_toks} leaves no room for a prompt (max_length {self.max_length})")
        contexts = [request.args[0] for request in batch]
        prompts = [self.tok_encode(context, left_truncate_len=max_context) for context in contexts]
        generated: list[list[int]] = [[] for _ in batch]
        outputs: list[str] = [""] * len(batch)
        pending = list(range(len(batch)))
        while pending:
            pending.sort(key=lambda i: -(len(prompts[i]) + len(generated[i])))  # lm-eval's order: longest first
            unfinished = []
            for start in range(0, len(pending), self.batch_size):
                rows = pending[start : start + self.batch_size]
                budget = min(self.segment_tokens, max(max_gen_toks - len(generated[i]) for i in rows))
                for i, new in zip(rows, self._generate_segment([prompts[i] + generated[i] for i in rows], budget,
                                                                  until, kwargs), strict=True):  # fmt: skip
                    ended = self.eot_token_id in new
                    generated[i] += new[: max_gen_toks - len(generated[i])]
                    text = self.tok_decode(generated[i])
                    if ended or len(generated[i]) >= max_gen_toks or any(stop in text for stop in until):
                        outputs[i] = postprocess_generated_text(text, stop=until, think_end_token=self.think_end_token)
                        self.cache_hook.add_partial("generate_until", (contexts[i], gen_kwargs), outputs[i])
                        progress.update(1)
                    else:
                        unfinished.append(i)
            pending = unfinished
        return outputs

    def _generate_segment(self, inputs: list[list[int]], budget: int, until: list[str], kwargs: dict[str, Any]):
        """Up to ``budget`` new tokens for each left-padded row, through lm-eval's ``_model_generate``."""
        width = max(len(ids) for ids in inputs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        context = torch.tensor([[pad] * (width - len(ids)) + ids for ids in inputs], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in inputs], device=self.device)
        tokens = self._model_generate(context=context, attention_mask=mask, stop=until, max_length=width + budget,
                                      **dict(kwargs))  # fmt: skip
        return [row[width:] for row in tokens.tolist()]
