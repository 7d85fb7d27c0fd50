"""Teacher throughput: the same teacher in-process, served by ``transformers serve``, by vLLM and by llama.cpp,
one run.

(a) in-process: ``zscot`` over lm-eval's ``hf`` model, batched (``--hf_batch_size``);
(b) ``transformers serve``: ``zscot`` over lm-eval's ``local-completions`` (one prompt per request,
    ``--num_concurrent`` in flight);
(c) vLLM (``--vllm``, the venv of ``make vllm``): the same, ``--vllm_num_concurrent`` in flight;
(d) llama.cpp (``--llamacpp``, ``make teacher``): ``llama-server`` on the teacher's Q4 GGUF (the embedded
    teachers' and the embedded student's GGUF are found; else ``--gguf``), one request per slot in flight.

(a)-(c) run the fp32 weights, (d) the Q4 GGUF they were dequantised from, so (d) may answer differently. Every
path reports responses/s and tokens/s (response tokens counted with the model's tokenizer). The servers are
started by fcot (:func:`fcot_plugin.serving.served.served_model`, as ``fcot distill
--teacher_engine`` starts them) on a free loopback port. Same model, same prompts (the task's teacher prompts for
the first ``--limit`` train questions), greedy, same budgets, both zscot stages, no response cache, fp32. Model
loading and one warm-up request are not timed; each server's start-up is recorded apart. Results:
``<output>.json`` and ``<output>.md`` with responses/s per path, each path against (a), how many responses equal
(a)'s, the machine (CPU model, flags, cores) and the versions. Run it alone: other processes distort timings.

    python benchmarks/teacher_throughput.py --task coin_flip --limit 32 --max_gen_toks 32
    python benchmarks/teacher_throughput.py --model qwen2.5-coder-1.5b --task multiarith --limit 16 --max_gen_toks 128
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import result_file

RESULTS = Path(__file__).parent / "results"


@dataclass
class TeacherThroughputArguments:
    task: str = field(default="coin_flip", metadata={"help": "fcot task whose train questions are the prompts"})
    model: str = field(
        default="smollm2-135m",
        metadata={
            "help": "teacher id or folder; smollm2-135m is the embedded student, "
            "qwen2.5-coder-1.5b and qwen2.5-coder-0.5b the embedded teachers"
        },
    )
    limit: int = field(default=32, metadata={"help": "questions (one greedy response each)"})
    max_gen_toks: int = field(default=32, metadata={"help": "rationale budget (stage 1)"})
    answer_max_gen_toks: int = field(default=16, metadata={"help": "answer budget (stage 2)"})
    hf_batch_size: int = field(default=16, metadata={"help": "batch size of the in-process hf path"})
    num_concurrent: int = field(default=1, metadata={"help": "requests in flight to transformers serve"})
    vllm: bool = field(default=True, metadata={"help": "also time vLLM (needs `make vllm`)"})
    vllm_num_concurrent: int = field(default=16, metadata={"help": "requests in flight to vLLM (fcot's default)"})
    llamacpp: bool = field(default=True, metadata={"help": "also time llama.cpp on the GGUF (needs `make teacher`)"})
    gguf: str | None = field(default=None, metadata={"help": "the GGUF for llama.cpp (default: the embedded one)"})
    llamacpp_num_concurrent: int | None = field(
        default=None, metadata={"help": "requests in flight to llama.cpp = its slots (default: fcot's, two per core)"}
    )
    output: str = field(default=str(RESULTS / "teacher_throughput"), metadata={"help": "results path, no suffix"})

    def __post_init__(self) -> None:
        from fcot_plugin.core.command_line import check_positive
        from fcot_plugin.pipeline.preflight import check_model_folder
        from fcot_plugin.tasks.registry import get_task
        from fcot_plugin.teacher.embedded import find
        from fcot_plugin.training.students import EMBEDDED_STUDENT

        get_task(self.task)
        if self.model != EMBEDDED_STUDENT and find(self.model) is None:
            check_model_folder(self.model, "--model")
        check_positive(
            self,
            "limit",
            "max_gen_toks",
            "answer_max_gen_toks",
            "hf_batch_size",
            "num_concurrent",
            "vllm_num_concurrent",
        )
        if self.vllm:
            from fcot_plugin.serving.vllm import vllm_python

            vllm_python()  # no venv: one line saying `make vllm` (or pass --vllm false)
        if self.llamacpp:
            from fcot_plugin.serving.llamacpp import llama_server

            llama_server()  # no build: one line saying `make teacher` (or pass --llamacpp false)
            if gguf_of(self) is None:
                raise FcotError(f"no GGUF known for --model {self.model}; pass --gguf <file> or --llamacpp false")


def gguf_of(args: TeacherThroughputArguments) -> Path | None:
    """The GGUF llama.cpp serves: ``--gguf``, the embedded teacher's, or the embedded student's."""
    from fcot_plugin.teacher.embedded import gguf_for
    from fcot_plugin.training.students import EMBEDDED_STUDENT, embedded_gguf

    if args.gguf:
        return Path(args.gguf)
    if args.model == EMBEDDED_STUDENT:
        return embedded_gguf()
    return gguf_for(args.model)


def resolve_model(model: str) -> str:
    """The safetensors folder the in-process, transformers and vLLM paths load."""
    from fcot_plugin.teacher.embedded import find, resolve
    from fcot_plugin.training.students import resolve_student

    return resolve(model, "transformers")[0] if find(model) is not None else resolve_student(model)


def machine(device: str) -> dict:
    """fcot's hardware record (CPU model and flags, torch threads, GPU) plus the cores and Python version."""
    from fcot_plugin.core.precision import detect_hardware

    return {**detect_hardware(device).as_dict(), "cpu_cores": os.cpu_count(), "python": platform.python_version()}


def versions() -> dict:
    from importlib.metadata import version

    found = {name: version(name) for name in ("torch", "transformers", "lm_eval", "fastapi", "uvicorn")}
    return {**found, "vllm": vllm_version()}


def vllm_version() -> str | None:
    """The version in the vLLM venv (its own interpreter), or None without one."""
    import subprocess

    from fcot_plugin.core.errors import FcotError
    from fcot_plugin.serving.vllm import vllm_python

    try:
        python = vllm_python()
    except FcotError:
        return None
    answer = subprocess.run(
        [str(python), "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True, timeout=300
    )
    return answer.stdout.strip().splitlines()[-1] if answer.returncode == 0 and answer.stdout.strip() else None


def teacher_requests(task: str, limit: int, max_gen_toks: int) -> list:
    from lm_eval.api.instance import Instance

    from fcot_plugin.tasks.prompts import teacher_stage1
    from fcot_plugin.tasks.registry import load_rows

    kwargs = {"until": ["\nQ:"], "do_sample": False, "max_gen_toks": max_gen_toks}
    return [
        Instance(
            "generate_until",
            {"fcot_task": task, "question": row["question"]},
            (teacher_stage1(row["question"]), dict(kwargs)),
            index,
        )
        for index, row in enumerate(load_rows(task, "train")[:limit])
    ]


def timed(lm, requests: list) -> tuple[list[str], float]:
    lm.generate_until(requests[:1], disable_tqdm=True)  # warm-up, not timed
    started = time.perf_counter()
    responses = lm.generate_until(requests, disable_tqdm=True)
    return responses, time.perf_counter() - started


def timed_server(engine: str, model: str, requests: list, args: TeacherThroughputArguments, log: Path) -> tuple:
    """Responses and timings of zscot through ``engine`` serving ``model`` (started and stopped here)."""
    from fcot_plugin.harness.zscot import ZeroShotCoT
    from fcot_plugin.serving.served import served_model

    concurrent = {"vllm": args.vllm_num_concurrent, "llamacpp": args.llamacpp_num_concurrent}.get(
        engine, args.num_concurrent
    )
    served_file = str(gguf_of(args)) if engine == "llamacpp" else model
    started = time.perf_counter()
    with served_model(
        served_file, engine, log, num_concurrent=concurrent, tokenizer=model, device="cpu" if not _cuda() else None
    ) as server:
        concurrent = server.num_concurrent
        start_up = time.perf_counter() - started
        served = ZeroShotCoT(
            base="local-completions",
            base_url=server.base_url,
            model=server.model,
            tokenizer=server.tokenizer,
            tokenized_requests=False,
            num_concurrent=concurrent,
            answer_max_gen_toks=args.answer_max_gen_toks,
        )
        responses, seconds = timed(served, requests)
        usage = served.accounting.to_dict()
    record = {
        "seconds": round(seconds, 2),
        "num_concurrent": concurrent,
        "start_up_seconds": round(start_up, 1),
        "completion_tokens_reported": usage["completion_tokens"],
    }
    return responses, record


def count_tokens(tokenizer, responses: list[str]) -> int:
    return sum(len(tokenizer(text, add_special_tokens=False).input_ids) for text in responses)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(args: TeacherThroughputArguments) -> dict:
    from transformers import AutoTokenizer

    from fcot_plugin.harness.zscot import ZeroShotCoT

    model = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    requests = teacher_requests(args.task, args.limit, args.max_gen_toks)
    paths = {}

    device = "cuda" if _cuda() else "cpu"
    answer_budget = args.answer_max_gen_toks
    in_process = ZeroShotCoT(
        base="hf",
        pretrained=model,
        dtype="float32",
        batch_size=args.hf_batch_size,
        device=device,
        answer_max_gen_toks=answer_budget,
    )
    hf_responses, seconds = timed(in_process, requests)
    paths["a: in-process hf"] = {
        "seconds": round(seconds, 2),
        "batch_size": args.hf_batch_size,
        "tokens": count_tokens(tokenizer, hf_responses),
    }
    del in_process

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    engines = {
        "b: transformers serve": "transformers",
        **({"c: vLLM": "vllm"} if args.vllm else {}),
        **({"d: llama.cpp (Q4 GGUF)": "llamacpp"} if args.llamacpp else {}),
    }
    identical = {}
    for name, engine in engines.items():
        log = output.with_name(f"{output.name}.{engine}.log")
        log.unlink(missing_ok=True)
        responses, paths[name] = timed_server(engine, model, requests, args, log)
        paths[name]["tokens"] = count_tokens(tokenizer, responses)
        identical[name] = sum(a == b for a, b in zip(hf_responses, responses, strict=True))
    for record in paths.values():
        record["responses_per_second"] = round(len(requests) / record["seconds"], 3)
        record["tokens_per_second"] = round(record["tokens"] / record["seconds"], 2)
    base_rate = paths["a: in-process hf"]["responses_per_second"]
    for name in engines:
        paths[name]["over_in_process"] = round(paths[name]["responses_per_second"] / base_rate, 3)
        paths[name]["identical_to_in_process"] = identical[name]
    results = {
        "config": asdict(args),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine(device),
        "versions": versions(),
        "responses": len(requests),
        "paths": paths,
    }
    result_file(output, ".json").write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(
        f"| {name} | {r.get('num_concurrent', r.get('batch_size'))} | {r.get('start_up_seconds', '–')} | "
        f"{r['seconds']} | {r['responses_per_second']} | {r['tokens_per_second']} | "
        f"{r.get('over_in_process', 1.0)}x | "
        f"{r.get('identical_to_in_process', len(requests))} of {len(requests)} |"
        for name, r in paths.items()
    )
    from fcot_plugin.core.precision import Hardware

    described = Hardware.from_dict(results["machine"]).describe()
    result_file(output, ".md").write_text(
        f"# Teacher throughput: {args.task}, {args.model if args.model != model else Path(model).name}, "
        f"{len(requests)} greedy zscot responses\n\n"
        f"Machine: {described}, {results['machine']['cpu_cores']} cores; "
        f"transformers {results['versions']['transformers']}, vLLM {results['versions']['vllm'] or '(none)'}.\n"
        f"Budgets: {args.max_gen_toks} rationale + {args.answer_max_gen_toks} answer tokens.\n\n"
        "Start-up (model loading until the server answers) is not in the timed seconds.\n\n"
        "| path | batch / in flight | start-up s | seconds | responses/s | tokens/s | vs in-process | "
        f"responses equal to (a) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n{rows}\n"
    )
    print(json.dumps({name: r["responses_per_second"] for name, r in paths.items()}), flush=True)
    return results


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("teacher_throughput.py", TeacherThroughputArguments, main, sys.argv[1:])
