"""Teacher throughput: a served teacher (``transformers serve``) against the same model in-process, one run.

(a) in-process: ``zscot`` over lm-eval's ``hf`` model, batched (``--hf_batch_size``);
(b) served: ``zscot`` over lm-eval's ``local-completions`` against a ``transformers serve`` process started here
    on a free loopback port with the same model (one prompt per request, ``--num_concurrent`` in flight).

Same model, same prompts (the task's teacher prompts for the first ``--limit`` train questions), greedy, same
budgets, both zscot stages, no response cache. Model loading and one warm-up request are not timed. Results:
``<output>.json`` and ``<output>.md`` with responses/s per path, the ratio b/a, how many responses agree, the
machine (CPU model, flags, cores) and the versions. Run it alone: other processes on the CPU distort timings.

    python benchmarks/teacher_throughput.py --task coin_flip --limit 32 --max_gen_toks 32
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


@dataclass
class TeacherThroughputArguments:
    task: str = field(default="coin_flip", metadata={"help": "fcot task whose train questions are the prompts"})
    model: str = field(default="smollm2-135m", metadata={"help": "teacher id/folder; smollm2-135m = embedded"})
    limit: int = field(default=32, metadata={"help": "questions (one greedy response each)"})
    max_gen_toks: int = field(default=32, metadata={"help": "rationale budget (stage 1)"})
    answer_max_gen_toks: int = field(default=16, metadata={"help": "answer budget (stage 2)"})
    hf_batch_size: int = field(default=16, metadata={"help": "batch size of the in-process hf path"})
    num_concurrent: int = field(default=1, metadata={"help": "requests in flight on the served path"})
    output: str = field(default=str(RESULTS / "teacher_throughput"), metadata={"help": "results path, no suffix"})

    def __post_init__(self) -> None:
        from fcot_plugin.core.command_line import check_positive
        from fcot_plugin.pipeline.preflight import check_model_folder
        from fcot_plugin.tasks.registry import get_task
        from fcot_plugin.training.students import EMBEDDED_STUDENT

        get_task(self.task)
        if self.model != EMBEDDED_STUDENT:
            check_model_folder(self.model, "--model")
        check_positive(self, "limit", "max_gen_toks", "answer_max_gen_toks", "hf_batch_size", "num_concurrent")


def machine(device: str) -> dict:
    """fcot's hardware record (CPU model and flags, torch threads, GPU) plus the cores and Python version."""
    from fcot_plugin.core.precision import detect_hardware

    return {**detect_hardware(device).as_dict(), "cpu_cores": os.cpu_count(), "python": platform.python_version()}


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "lm_eval", "fastapi", "uvicorn")}


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
        )  # fmt: skip
        for index, row in enumerate(load_rows(task, "train")[:limit])
    ]


def timed(lm, requests: list) -> tuple[list[str], float]:
    lm.generate_until(requests[:1], disable_tqdm=True)  # warm-up, not timed
    started = time.perf_counter()
    responses = lm.generate_until(requests, disable_tqdm=True)
    return responses, time.perf_counter() - started


def start_server(model: str, log: Path) -> tuple[subprocess.Popen, str]:
    import requests

    from fcot_plugin.core.errors import FcotError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu" if not _cuda() else "auto"]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FcotError(f"transformers serve exited ({process.returncode}) before it answered; see {log}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                return process, f"http://127.0.0.1:{port}/v1/completions"
        except requests.exceptions.ConnectionError:
            pass
        time.sleep(0.5)
    process.kill()
    raise FcotError(f"transformers serve did not answer /health in 300 s; see {log}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(args: TeacherThroughputArguments) -> dict:
    from fcot_plugin.harness.zscot import ZeroShotCoT
    from fcot_plugin.training.students import resolve_student

    model = resolve_student(args.model)
    requests = teacher_requests(args.task, args.limit, args.max_gen_toks)
    paths = {}

    device = "cuda" if _cuda() else "cpu"
    answer_budget = args.answer_max_gen_toks
    in_process = ZeroShotCoT(base="hf", pretrained=model, dtype="float32", batch_size=args.hf_batch_size,
                             device=device, answer_max_gen_toks=answer_budget)  # fmt: skip
    hf_responses, seconds = timed(in_process, requests)
    paths["a: in-process hf"] = {"seconds": round(seconds, 2), "batch_size": args.hf_batch_size}
    del in_process

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    server, url = start_server(model, output.with_name(output.name + ".serve.log"))
    try:
        served = ZeroShotCoT(base="local-completions", base_url=url, model=model, tokenized_requests=False,
                             num_concurrent=args.num_concurrent, answer_max_gen_toks=answer_budget)  # fmt: skip
        served_responses, seconds = timed(served, requests)
        usage = served.accounting.to_dict()
    finally:
        server.terminate()
        server.wait(timeout=60)
    paths["b: transformers serve"] = {"seconds": round(seconds, 2), "num_concurrent": args.num_concurrent,
                                      "completion_tokens_reported": usage["completion_tokens"]}  # fmt: skip
    for record in paths.values():
        record["responses_per_second"] = round(len(requests) / record["seconds"], 3)
    rates = [record["responses_per_second"] for record in paths.values()]
    results = {
        "config": asdict(args),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine(device),
        "versions": versions(),
        "responses": len(requests),
        "paths": paths,
        "served_over_in_process": round(rates[1] / rates[0], 3),
        "identical_responses": sum(a == b for a, b in zip(hf_responses, served_responses, strict=True)),
    }
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(f"| {name} | {r['seconds']} | {r['responses_per_second']} |" for name, r in paths.items())
    from fcot_plugin.core.precision import Hardware

    described = Hardware.from_dict(results["machine"]).describe()
    output.with_suffix(".md").write_text(
        f"# Teacher throughput: {args.task}, {Path(model).name}, {len(requests)} greedy zscot responses\n\n"
        f"Machine: {described}, {results['machine']['cpu_cores']} cores; "
        f"transformers {results['versions']['transformers']}.\n"
        f"Budgets: {args.max_gen_toks} rationale + {args.answer_max_gen_toks} answer tokens.\n\n"
        f"| path | seconds | responses/s |\n|---|---:|---:|\n{rows}\n\n"
        f"**served / in-process: {results['served_over_in_process']}x**; identical responses: "
        f"{results['identical_responses']} of {len(requests)}\n"
    )
    print(json.dumps({name: r["responses_per_second"] for name, r in paths.items()}), flush=True)
    return results


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("teacher_throughput.py", TeacherThroughputArguments, main, sys.argv[1:])
