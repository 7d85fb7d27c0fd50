"""lm-eval's ``hf`` model, keeping its batch full of unfinished answers: ``lm_eval --model hf-regroup``.

lm-eval's ``hf`` generates a fixed batch until its *longest* answer ends, so finished rows keep costing a forward
pass and one student that rambles to ``max_gen_toks`` holds its whole batch for the full budget. A small student
decoding on a CPU pays a fixed cost per step (reading the weights, launching ~30 layers of small kernels) plus a
cost per live row, so the cheapest schedule has few steps and no dead rows.

Greedy requests (the ``fcot_*`` tasks) are decoded by continuous batching over one KV cache: up to ``batch_size``
rows decode together, a row leaves the cache the step its answer ends (EOS, a stop string or its budget), and
waiting prompts are prefilled and merged in (left-padded, masked) as rows leave. Answers are lm-eval's ``hf``
answers: same prompts, truncation, stop strings and post-processing, and in fp32 the same tokens
(``tests/harness/test_hf_regroup.py``); in bf16 a few differ, as between two batch sizes of ``hf``. Sampled
requests, models with other generation kwargs and caches that are not plain per-layer key/value tensors
(sliding windows, state-space layers) use the earlier schedule: segments of ``segment_tokens`` tokens through
lm-eval's own ``_model_generate``, unfinished rows regrouped between segments. A model whose generation config
changes greedy decoding (repetition penalty, beams, ...) is decoded by lm-eval's ``hf`` unchanged.
transformers' continuous batching does this per token too, but its paged-attention path on a CPU without
flash-attention was slower (docs/evaluation.md, *Why wide batches*). Encoder-decoder students and a token-id
``think_end_token`` use lm-eval's ``hf`` path unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from tqdm import tqdm
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

#: tokens per segment on the segment path (sampling): about the median Fine-tune-CoT answer (60-100 tokens on the
#: paper's tasks), so most answers end in their first segment and a rambler costs its batch at most one segment
DEFAULT_SEGMENT_TOKENS = 96

#: prompts prefilled together when rows join the cache: each group is padded to its own longest prompt
PREFILL_ROWS = 64

#: generation-config settings that make ``generate``'s greedy choice differ from a plain argmax, with the value
#: that leaves it unchanged; a model whose config sets one otherwise is decoded by ``generate`` itself
_GREEDY_NEUTRAL = {
    "num_beams": 1,
    "num_return_sequences": 1,
    "repetition_penalty": 1.0,
    "guidance_scale": 1.0,
    "min_length": 0,
    "min_new_tokens": 0,
    "no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "force_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "exponential_decay_length_penalty": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
    "watermarking_config": None,
    "penalty_alpha": None,
    "dola_layers": None,
    "constraints": None,
    "token_healing": None,
}


def greedy_changers(generation_config) -> list[str]:
    """Settings of ``generation_config`` under which ``generate``'s greedy answer is not a plain argmax."""
    changed = []
    for name, neutral in _GREEDY_NEUTRAL.items():
        value = getattr(generation_config, name, None)
        if value is not None and value != neutral and value not in ([], {}):
            changed.append(f"{name}={value!r}")
    return changed


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` that appends each token into spare room instead of copying the whole cache.

    ``DynamicLayer.update`` concatenates (a full copy of every layer's keys and values per token), a large part of
    a small student's decode step on a CPU (benchmarks/results/design_measurements.md).
    """

    GROWTH = 64  #: positions allocated beyond the need: the cache is copied once per 64 tokens, not every token

    def __init__(self) -> None:
        # keys and values are replaced one after the other (``layer.keys = layer.keys[rows]``): one length each
        self._buffers: dict[str, torch.Tensor | None] = {"keys": None, "values": None}
        self._lengths = {"keys": 0, "values": 0}
        super().__init__()

    def _view(self, name: str) -> torch.Tensor | None:
        buffer = self._buffers[name]
        return buffer[:, :, : self._lengths[name]] if buffer is not None and buffer.dim() == 4 else buffer

    def _store(self, name: str, tensor: torch.Tensor | None) -> None:
        """Replace the cache (as ``merge``/``keep`` and transformers' own cache methods do): no spare room."""
        self._buffers[name] = tensor
        self._lengths[name] = tensor.shape[-2] if tensor is not None and tensor.dim() == 4 else 0

    keys = property(lambda self: self._view("keys"), lambda self, tensor: self._store("keys", tensor))
    values = property(lambda self: self._view("values"), lambda self, tensor: self._store("values", tensor))

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.device, self.is_initialized = key_states.device, True
            self._store("keys", key_states[:, :, :0])
            self._store("values", value_states[:, :, :0])
        for name, new in (("keys", key_states), ("values", value_states)):
            buffer, length = self._buffers[name], self._lengths[name]
            end = length + new.shape[-2]
            if end > buffer.shape[-2]:
                grown = new.new_empty(*new.shape[:2], end + self.GROWTH, new.shape[-1])
                grown[:, :, :length] = buffer[:, :, :length]
                self._buffers[name] = buffer = grown
            buffer[:, :, length:end] = new
            self._lengths[name] = end
        return self.keys, self.values


@dataclass
class LiveRows:
    """Rows decoding together: which requests, their KV cache, which cache positions are real, the next input."""

    requests: list[int]
    cache: DynamicCache
    mask: torch.Tensor  # [rows, cached positions]: 1 real token, 0 left padding
    next_tokens: torch.Tensor  # [rows]: chosen last step, not yet in the cache

    def merge(self, other: LiveRows) -> None:
        """Append ``other``'s rows, left-padding the shorter cache so both share one length."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, width, -2), _pad_left(theirs.keys, width, -2)])
            mine.values = torch.cat([_pad_left(mine.values, width, -2), _pad_left(theirs.values, width, -2)])
        self.mask = torch.cat([_pad_left(self.mask, width, 1), _pad_left(other.mask, width, 1)])
        self.next_tokens = torch.cat([self.next_tokens, other.next_tokens])
        self.requests += other.requests

    def keep(self, positions: list[int]) -> None:
        """Keep only the rows at ``positions``, and drop cache columns that are padding for every kept row."""
        index = torch.tensor(positions, device=self.mask.device)
        mask = self.mask[index]
        first = int(mask.any(0).nonzero()[0])
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, first:]
            layer.values = layer.values[index, :, first:]
        self.mask = mask[:, first:]
        self.next_tokens = self.next_tokens[index]
        self.requests = [self.requests[p] for p in positions]


def growing_cache(config) -> DynamicCache:
    """transformers' ``DynamicCache`` for this model, its (plain key/value) layers made ``GrowingLayer``s."""
    cache = DynamicCache(config=config)
    if cache.layers:
        cache.layers = [GrowingLayer() for _ in cache.layers]
    else:  # a config without layer types: layers are added as the model first writes them
        cache.layer_class_to_replicate = GrowingLayer
    return cache


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


@register_model("hf-regroup")
class RegroupingHFLM(HFLM):
    """``HFLM`` whose ``generate_until`` keeps its batch full of unfinished answers (see the module docstring)."""

    def __init__(self, *args: Any, segment_tokens: int = DEFAULT_SEGMENT_TOKENS, **kwargs: Any) -> None:
        segment_tokens = int(segment_tokens)
        if segment_tokens < 1:
            raise ValueError(f"segment_tokens must be >= 1, got {segment_tokens}")
        super().__init__(*args, **kwargs)
        self.segment_tokens = segment_tokens

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        if (
            self.backend != "causal"
            or isinstance(self.think_end_token, int)
            or self.batch_size == "auto"
            or greedy_changers(self.model.generation_config)
        ):
            # a penalty over the input ids also sees the padding, which differs under any other batching
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        results: list[str] = [""] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(index)
        progress = tqdm(
            total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Running generate_until requests"
        )
        for indices in groups.values():
            batch = [requests[i] for i in indices]
            greedy = self._decodes_greedily(batch[0].args[1])
            generate = self._generate_continuous if greedy else self._generate_regrouped
            for index, text in zip(indices, generate(batch, progress), strict=True):
                results[index] = text
        progress.close()
        return results

    def _decodes_greedily(self, gen_kwargs: dict) -> bool:
        """Whether these requests can take continuous batching: greedy, on a plain key/value cache."""
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        if kwargs["do_sample"] or set(kwargs) - {"do_sample", "temperature", "until", "max_gen_toks"}:
            return False
        try:
            layers = DynamicCache(config=self.model.config).layers
        except Exception:  # a cache transformers builds differently (state-space, encoder-decoder): generate's own
            return False
        return all(type(layer) is DynamicLayer for layer in layers)

    def _prepare(self, batch: list) -> tuple[list[str], list[list[int]], list[str], int, dict[str, Any]]:
        """The group's contexts, their token ids (left-truncated as lm-eval's ``hf`` does), stop strings, budget,
        and the other generation kwargs."""
        kwargs = normalize_gen_kwargs(batch[0].args[1], self.max_gen_toks)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen_toks = kwargs.pop("max_gen_toks")
        max_context = self.max_length - max_gen_toks
        if max_context <= 0:
            raise ValueError(f"max_gen_toks={max_gen_toks} leaves no room for a prompt (max_length {self.max_length})")
        contexts = [request.args[0] for request in batch]
        prompts = [self.tok_encode(context, left_truncate_len=max_context) for context in contexts]
        return contexts, prompts, until, max_gen_toks, kwargs

    def _left_padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask of ``rows`` left-padded to the longest, as lm-eval's ``hf`` pads."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        width = max(len(row) for row in rows)
        tokens = torch.tensor([[pad] * (width - len(row)) + row for row in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows], device=self.device)
        return tokens, mask

    def _finish(self, context: str, gen_kwargs: dict, tokens: list[int], until: list[str], progress: tqdm) -> str:
        """lm-eval's ``hf`` post-processing of one answer's tokens."""
        text = postprocess_generated_text(self.tok_decode(tokens), stop=until, think_end_token=self.think_end_token)
        self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        progress.update(1)
        return text

    @torch.inference_mode()
    def _generate_continuous(self, batch: list, progress: tqdm) -> list[str]:
        """Greedy answers by continuous batching: rows leave the cache as they end, waiting prompts join it."""
        gen_kwargs = batch[0].args[1]
        contexts, prompts, until, max_gen_toks, _ = self._prepare(batch)
        stop_ids = {self.eot_token_id, *_token_ids(self.model.generation_config.eos_token_id)}
        generated: list[list[int]] = [[] for _ in batch]
        outputs: list[str] = [""] * len(batch)
        ended: set[int] = set()
        waiting = deque(sorted(range(len(batch)), key=lambda i: -len(prompts[i])))  # lm-eval's order: longest first
        refill_below = self.batch_size - max(1, self.batch_size // 4)  # prefill newcomers once a quarter has left
        live: LiveRows | None = None
        while waiting or live is not None:
            if waiting and (live is None or len(live.requests) <= refill_below):
                room = self.batch_size - (len(live.requests) if live is not None else 0)
                newcomers = self._prefill([waiting.popleft() for _ in range(min(room, len(waiting)))], prompts)
                chosen = newcomers
                if live is None:
                    live = newcomers
                else:
                    live.merge(newcomers)
            else:
                self._step(live)
                chosen = live
            for i, token in zip(chosen.requests, chosen.next_tokens.tolist(), strict=True):
                generated[i].append(token)
            texts = self.tokenizer.batch_decode([generated[i] for i in chosen.requests], skip_special_tokens=False)
            for i, text in zip(chosen.requests, texts, strict=True):
                if generated[i][-1] in stop_ids or len(generated[i]) >= max_gen_toks or any(s in text for s in until):
                    outputs[i] = self._finish(contexts[i], gen_kwargs, generated[i], until, progress)
                    ended.add(i)
            going_on = [position for position, i in enumerate(live.requests) if i not in ended]
            if not going_on:
                live = None
            elif len(going_on) < len(live.requests):
                live.keep(going_on)
        return outputs

    def _prefill(self, requests: list[int], prompts: list[list[int]]) -> LiveRows:
        """A new cache for ``requests``' prompts and each row's first answer token.

        Prompts arrive longest first; they are prefilled ``PREFILL_ROWS`` at a time, each chunk left-padded only to
        its own longest prompt, so a wide batch of short and long prompts does not compute padding."""
        rows: LiveRows | None = None
        for start in range(0, len(requests), PREFILL_ROWS):
            chunk = requests[start : start + PREFILL_ROWS]
            tokens, mask = self._left_padded([prompts[i] for i in chunk])
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            cache = growing_cache(self.model.config)
            prefilled = LiveRows(list(chunk), cache, mask, self._next_tokens(tokens, mask, positions, cache))
            if rows is None:
                rows = prefilled
            else:
                rows.merge(prefilled)
        return rows

    def _step(self, live: LiveRows) -> None:
        """Feed every live row its chosen token; choose the next one."""
        mask = torch.cat([live.mask, live.mask.new_ones(len(live.requests), 1)], dim=1)
        positions = live.mask.sum(1, keepdim=True)
        live.next_tokens = self._next_tokens(live.next_tokens[:, None], mask, positions, live.cache)
        live.mask = mask

    def _next_tokens(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        """Greedy choice after the last position of each row, under lm-eval's autocast settings."""
        with torch.autocast(
            device_type=self.device.type,
            dtype=self.mixed_precision_dtype,
            enabled=self.mixed_precision_dtype is not None,
        ):
            logits = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **self._cache_arguments(cache),
            ).logits
        return logits[:, -1, :].argmax(-1)

    @functools.cached_property
    def _forward_parameters(self) -> frozenset[str]:
        """Read once: ``_cache_arguments`` runs on every decode step."""
        return frozenset(inspect.signature(self.model.forward).parameters)

    def _cache_arguments(self, cache: DynamicCache) -> dict[str, Any]:
        """The cache under the name this model's ``forward`` takes (``cache``; ``past_key_values`` before
        transformers 5.x), and ``logits_to_keep=1`` where it is taken, so a prefill skips the LM head for every
        prompt token but the last."""
        names = self._forward_parameters
        arguments: dict[str, Any] = {"cache" if "cache" in names else "past_key_values": cache}
        if "logits_to_keep" in names:
            arguments["logits_to_keep"] = 1
        return arguments

    def _generate_regrouped(self, batch: list, progress: tqdm) -> list[str]:
        """Sampled requests: segments of ``segment_tokens`` tokens, unfinished rows regrouped between them."""
        gen_kwargs = batch[0].args[1]
        contexts, prompts, until, max_gen_toks, kwargs = self._prepare(batch)
        generated: list[list[int]] = [[] for _ in batch]
        outputs: list[str] = [""] * len(batch)
        pending = list(range(len(batch)))
        while pending:
            pending.sort(key=lambda i: -(len(prompts[i]) + len(generated[i])))  # lm-eval's order: longest first
            unfinished = []
            for start in range(0, len(pending), self.batch_size):
                rows = pending[start : start + self.batch_size]
                budget = min(self.segment_tokens, max(max_gen_toks - len(generated[i]) for i in rows))
                for i, new in zip(
                    rows,
                    self._generate_segment([prompts[i] + generated[i] for i in rows], budget, until, kwargs),
                    strict=True,
                ):
                    ended = self.eot_token_id in new
                    generated[i] += new[: max_gen_toks - len(generated[i])]
                    text = self.tok_decode(generated[i])
                    if ended or len(generated[i]) >= max_gen_toks or any(stop in text for stop in until):
                        outputs[i] = self._finish(contexts[i], gen_kwargs, generated[i], until, progress)
                    else:
                        unfinished.append(i)
            pending = unfinished
        return outputs

    def _generate_segment(self, inputs: list[list[int]], budget: int, until: list[str], kwargs: dict[str, Any]):
        """Up to ``budget`` new tokens for each left-padded row, through lm-eval's ``_model_generate``."""
        context, mask = self._left_padded(inputs)
        width = context.shape[1]
        tokens = self._model_generate(
            context=context, attention_mask=mask, stop=until, max_length=width + budget, **dict(kwargs)
        )
        return [row[width:] for row in tokens.tolist()]


def _token_ids(value: int | list[int] | None) -> list[int]:
    """A generation config's ``eos_token_id``: one id, several, or none."""
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)
