"""``--model zscot``: Kojima et al.'s two-stage zero-shot-CoT around any lm-eval model.

A task has one request pass, so the second stage cannot live in a task; this wrapper runs it:

1. stage 1 sends every request to the base model unchanged (the task's context and generation kwargs,
   so ``repeats``, sampling and temperature apply) and gets a rationale;
2. stage 2 sends ``{context}{rationale}{trigger}`` greedily with a short budget and gets the answer.

The response is ``{rationale}{trigger}{answer}``: lm-eval's filters parse the answer after the trigger
and ``--log_samples`` keeps the whole rationale for curation.

Usage::

    fcot-eval --model zscot --model_args base=hf,pretrained=gpt2 --tasks fcot_multiarith_teacher
"""

from __future__ import annotations

import logging
from typing import Any

import lm_eval.models  # noqa: F401  registers the built-in models before ours (see get_model)
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import get_model, register_model

from fcot_plugin.prompts import DEFAULT_ANSWER_TRIGGER, STAGE2_STOP_SEQUENCES, teacher_stage2
from fcot_plugin.tasks import get_task

logger = logging.getLogger(__name__)

TYPED_TRIGGER = "typed"


@register_model("zscot")
class ZeroShotCoT(LM):
    """Two-stage zero-shot-CoT over a base lm-eval model.

    Args:
        base (`str`, *optional*, defaults to `"hf"`): registered lm-eval model that does the generating
            (``hf``, ``vllm``, ``openai-completions``, ``local-completions``, ...).
        answer_trigger (`str`, *optional*, defaults to ``"\\nTherefore, the answer is"``): text appended
            after the rationale; ``typed`` picks Kojima's per-task trigger, e.g.
            ``" Therefore, the answer (arabic numerals) is"``, from the doc's fcot task.
        answer_max_gen_toks (`int`, *optional*, defaults to 32): budget of the stage-2 answer.
        **base_args: every other argument goes to the base model (``pretrained``, ``dtype``, ...).
    """

    def __init__(
        self,
        base: str = "hf",
        answer_trigger: str = DEFAULT_ANSWER_TRIGGER,
        answer_max_gen_toks: int = 32,
        **base_args: Any,
    ) -> None:
        super().__init__()
        if base == "zscot":
            raise ValueError("zscot cannot wrap itself; pass base=hf (or another lm-eval model)")
        self.answer_trigger = answer_trigger.replace("\\n", "\n")
        self.answer_max_gen_toks = int(answer_max_gen_toks)
        self.base = get_model(base).create_from_arg_obj(base_args)
        self.base_name = base

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict[str, Any], additional_config: dict[str, Any] | None = None):
        additional = {key: value for key, value in (additional_config or {}).items() if value is not None}
        wrapper_keys = ("base", "answer_trigger", "answer_max_gen_toks")
        own = {key: arg_dict[key] for key in wrapper_keys if key in arg_dict}
        base_args = {key: value for key, value in arg_dict.items() if key not in wrapper_keys}
        return cls(**own, **base_args, **additional)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict[str, Any] | None = None):
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    # ------------------------------------------------------------------ generation

    def trigger_for(self, doc: dict[str, Any]) -> str:
        if self.answer_trigger != TYPED_TRIGGER:
            return self.answer_trigger
        task = doc.get("fcot_task") if isinstance(doc, dict) else None
        if task is None:
            raise ValueError("answer_trigger=typed needs an fcot task (its docs carry 'fcot_task')")
        return " " + get_task(task).kojima_trigger

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        logger.info("zscot stage 1/2: %d rationales from %s", len(requests), self.base_name)
        rationales = self.base.generate_until(requests, disable_tqdm=disable_tqdm)
        triggers = [self.trigger_for(request.doc) for request in requests]
        answer_kwargs = {
            "until": list(STAGE2_STOP_SEQUENCES),
            "do_sample": False,
            "max_gen_toks": self.answer_max_gen_toks,
        }
        answer_requests = [
            Instance(
                request_type="generate_until",
                doc=request.doc,
                arguments=(teacher_stage2(request.args[0], rationale, trigger), dict(answer_kwargs)),
                idx=request.idx,
                metadata=(request.task_name, request.doc_id, 1),
            )
            for request, rationale, trigger in zip(requests, rationales, triggers, strict=True)
        ]
        logger.info("zscot stage 2/2: %d answers", len(answer_requests))
        answers = self.base.generate_until(answer_requests, disable_tqdm=disable_tqdm)
        return [
            f"{rationale}{trigger}{answer}"
            for rationale, trigger, answer in zip(rationales, triggers, answers, strict=True)
        ]

    # ------------------------------------------------------------------ delegated to the base model

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False):
        return self.base.loglikelihood(requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False):
        return self.base.loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
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
        info = self.base.get_model_info() if hasattr(self.base, "get_model_info") else {}
        return {**info, "zscot_base": self.base_name, "zscot_answer_trigger": self.answer_trigger}
