"""Checks that run before anything is written or paid for: each failure is one line naming the fix.

``fcot distill`` calls :func:`check_distill` before it touches the run folder, so a mistyped option costs
seconds, leaves no files behind, and the corrected command starts clean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError
from fcot_plugin.core.files import read_json_object
from fcot_plugin.core.folders import check_output_folder
from fcot_plugin.harness.model_names import LOCAL_MODEL
from fcot_plugin.pipeline.run_folder import MADE_BY, RunFolder
from fcot_plugin.tasks.names import task_name
from fcot_plugin.tasks.sampling import SAMPLES, TEMPERATURE, read_sampling, refuse_greedy_repeats
from fcot_plugin.teacher.spec import WRAPPER_KEYS, TeacherSpec, check_argument_types, parse_model_args
from fcot_plugin.training.checkpoints import has_tokenizer

# lm-eval models that load a checkpoint from ``pretrained=``.
_PRETRAINED_MODELS = ("hf", "hf-regroup", "hf-auto", "huggingface", "vllm", "sglang", "ipex", "openvino", "steered")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or value.count("/") > 1 or Path(value).expanduser().exists()


# Files one of which a saved tokenizer writes (fast, sentencepiece, BPE and WordPiece tokenizers)
def check_readable_weights(folder: Path, what: str) -> None:
    """Every safetensors file's header parses and its tensors fit the file: a truncated download or copy is named."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            raise FcotError(
                f"{what} {str(folder)!r}: {path.name} cannot be read ({error}); it is damaged or cut short, copy or "
                f"save it again"
            ) from None


def check_model_folder(path: str, what: str, needs_tokenizer: bool = True, contents: bool = True) -> None:
    """A local model folder has a config, readable weights and a tokenizer; a path-like name that is missing is
    named. ``needs_tokenizer`` False: the tokenizer comes from elsewhere (lm-eval's ``tokenizer=``)."""
    folder = Path(path).expanduser()
    if not folder.exists():
        if _looks_like_path(path):
            raise FcotError(f"{what} {path!r} does not exist; pass an existing model folder or a Hub model id")
        return  # a Hub id: transformers resolves it (or names the network problem)
    if not folder.is_dir():
        raise FcotError(f"{what} {path!r} is a file; pass a model folder (with config.json) or a Hub model id")
    if (folder / "adapter_config.json").is_file():  # a LoRA adapter: its weights, then the base it names
        from fcot_plugin.training.adapters import adapter_base

        if not any(folder.glob("adapter_model.*")):
            raise FcotError(f"{what} {path!r} has adapter_config.json but no adapter_model.safetensors; save it too")
        check_model_folder(adapter_base(folder), f"{what}'s base model (adapter_config.json)")
        return
    if not (folder / "config.json").is_file():
        raise FcotError(f"{what} {path!r} has no config.json; pass a folder saved with save_pretrained()")
    read_json_object(folder / "config.json", f"{what}: save the model again with save_pretrained()")
    if not any((folder / name).is_file() for name in _WEIGHTS) and not any(folder.glob("*.safetensors")):
        raise FcotError(f"{what} {path!r} has no weights (model.safetensors or pytorch_model.bin); save the model too")
    if contents:
        check_model_contents(folder, what, needs_tokenizer)


def check_model_contents(folder: Path, what: str, needs_tokenizer: bool = True) -> None:
    """Weights that read whole and, unless it comes from elsewhere, a tokenizer."""
    check_readable_weights(folder, what)
    if needs_tokenizer and not has_tokenizer(folder):
        raise FcotError(
            f"{what} {str(folder)!r} has no tokenizer (no tokenizer.json or tokenizer_config.json); save it beside "
            f"the model with tokenizer.save_pretrained({str(folder)!r})"
        )


def check_student(student: str) -> None:
    """A loadable decoder-only causal LM or encoder-decoder LM (T5), with an architecture transformers can build."""
    from fcot_plugin.training.architectures import student_kind

    check_model_folder(student, "student", contents=False)
    student_kind(student)  # causal (SFTTrainer) or seq2seq (Seq2SeqTrainer); anything else is one line
    folder = Path(student).expanduser()
    if folder.is_dir():
        config = read_json_object(folder / "config.json", "student: save the model again with save_pretrained()")
        if not config.get("architectures"):
            raise FcotError(
                f"student {student!r}: config.json names no architectures, so the model class is unknown; save "
                f'the model with save_pretrained() (it writes e.g. "architectures": ["LlamaForCausalLM"])'
            )
        if not (folder / "adapter_config.json").is_file():  # an adapter's base was checked whole already
            check_model_contents(folder, "student")


def check_lm_eval_model(model: str, model_args: str, what: str) -> None:
    """An lm-eval model name and its model args (``k=v,...`` or JSON), checked before any model is loaded."""
    import lm_eval.models  # noqa: F401  fills the registry (lazily): lm-eval's models and the plugins'
    from lm_eval.api.registry import MODEL_REGISTRY

    arguments = parse_model_args(model_args, what)
    check_argument_types(arguments, what, as_text=not model_args.lstrip().startswith("{"))
    known = sorted({*MODEL_REGISTRY, "zscot", LOCAL_MODEL})  # fcot's own two, registered when first used
    if model not in known:
        raise FcotError(f"{what}: unknown lm-eval model {model!r}; choose one of: {', '.join(known)}")
    if model == "zscot":
        base = str(arguments.get("base", LOCAL_MODEL))
        if base == "zscot":
            raise FcotError(f"{what}: zscot cannot wrap itself; pass base=hf (or another lm-eval model)")
        if base not in known:
            raise FcotError(f"{what}: unknown base model {base!r}; choose one of: {', '.join(known)}")
        check_zscot_keys(base, arguments, what)
        model = base
    if model in _PRETRAINED_MODELS:
        if "pretrained" not in arguments:
            raise FcotError(f"{what}: model args name no pretrained=<Hub id or folder>")
        check_model_folder(str(arguments["pretrained"]), f"{what} pretrained", "tokenizer" not in arguments)


# Passed by lm-eval's hf model to transformers' from_pretrained as they are (its **kwargs)
_FROM_PRETRAINED_ARGS = (
    "attn_implementation",
    "low_cpu_mem_usage",
    "torch_dtype",
    "quantization_config",
    "load_in_8bit",
    "load_in_4bit",
    "cache_dir",
    "local_files_only",
    "subfolder",
    "use_safetensors",
    "offload_folder",
    "token",
    "device_map",
    "max_memory",
)


def accepted_arguments(model: str) -> set[str] | None:
    """The model args an lm-eval model's class takes by name (its ``__init__`` and its bases'), None if unknown."""
    import inspect

    from lm_eval.api.model import LM
    from lm_eval.api.registry import get_model

    try:
        model_class = get_model(model)
    except Exception:  # noqa: BLE001 - a backend that does not import here (vllm outside its venv): not checked
        return None
    if not model_class.__module__.startswith(("lm_eval.", "fcot_plugin.")):
        return None  # another plugin's model: its **kwargs may mean anything
    names: set[str] = set()
    for klass in model_class.__mro__:
        if klass is LM or not issubclass(klass, LM) or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"}
    if "pretrained" in names:  # a model loaded by transformers: from_pretrained's own arguments pass through
        names |= set(_FROM_PRETRAINED_ARGS)
    return names


def check_zscot_keys(base: str, arguments: dict[str, str], what: str) -> None:
    """Every key of a zscot teacher's args is zscot's own or its base model's: a typo is one line, not ignored."""
    import difflib

    accepted = accepted_arguments(base)
    if accepted is None:
        return
    accepted |= set(WRAPPER_KEYS)
    for key in arguments:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"zscot takes {', '.join(WRAPPER_KEYS)}"
            raise FcotError(f"{what}: {key!r} is not an argument of zscot or of its base {base!r}; {hint}")


def check_teacher(teacher: TeacherSpec | None, model: str, engine: str | None) -> None:
    """``--teacher`` as lm-eval model args, or (``engine``) a model to serve with an engine that is installed."""
    if engine is not None:
        from fcot_plugin.serving.llamacpp import llama_server
        from fcot_plugin.serving.vllm import vllm_python
        from fcot_plugin.teacher.embedded import resolve

        model, _ = resolve(model, engine)  # an embedded teacher offline: one line naming `make teacher` if missing
        if engine == "llamacpp":
            if not (Path(model).expanduser().is_file() and model.endswith(".gguf")):
                raise FcotError(
                    f"--teacher_engine llamacpp serves a GGUF file; --teacher {model!r} is not one (or "
                    "name an embedded teacher, e.g. Qwen/Qwen2.5-Coder-1.5B-Instruct)"
                )
            llama_server()  # one line naming `make teacher` where the binary is missing
            return
        check_model_folder(model, "--teacher")
        if engine == "vllm":
            vllm_python()  # one line naming `make vllm` where the venv is missing
        return
    if teacher.is_paper:
        return
    check_lm_eval_model("zscot", teacher.text, "--teacher")  # no base= means zscot's default, LOCAL_MODEL


def check_accelerate_config(path: str) -> Path | None:
    """The accelerate YAML, parsed by accelerate; returns the DeepSpeed JSON it names, parsed by accelerate."""
    import yaml
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    config_file = Path(path).expanduser()
    if not config_file.is_file():
        raise FcotError(f"accelerate config {config_file} not found; pass one of ds_configs/*.yaml (repository)")
    try:
        config = load_config_from_file(str(config_file))
    except (yaml.YAMLError, ValueError, TypeError, AttributeError) as error:
        reason = " ".join(str(error).split())
        raise FcotError(f"accelerate config {config_file} is not valid ({reason}); fix it or pass another") from None
    ds_file = (getattr(config, "deepspeed_config", None) or {}).get("deepspeed_config_file")
    if not ds_file:
        return None
    candidates = [Path(ds_file).expanduser(), config_file.parent / Path(ds_file).name]
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        raise FcotError(
            f"{config_file} names the DeepSpeed config {ds_file}, which is not there; run from the repo root"
        )
    try:
        HfDeepSpeedConfig(str(found))
    except (ValueError, TypeError, KeyError) as error:
        reason = " ".join(str(error).split())
        raise FcotError(f"DeepSpeed config {found} is not valid ({reason}); fix it or pass another") from None
    return found.resolve()


def check_writable(folder: str | Path, what: str) -> None:
    """``folder`` can be made and written, and fcot adds files there only (lm-eval's results): not empty, not a
    file, no link loop, no over-long part, not read-only (:func:`~fcot_plugin.core.folders.check_output_folder`)."""
    check_output_folder(folder, what, replaces=False)


def is_starting_run(folder: Path) -> bool:
    """A run folder whose run is starting: its lock is taken before its marker is written, and the lock, not this
    check, then tells the second run who holds the folder."""
    return (folder / RunFolder(folder).lock_file.name).is_file()


def check_run_dir(run_dir: str | Path | None) -> Path:
    """``--run_dir`` is new, empty or fcot distill's own (its marker); else one line."""
    return check_output_folder(run_dir, "--run_dir", adopt=is_starting_run, made_by=MADE_BY)


def check_vllm_scoring(student: str, lora: bool) -> None:
    """What vLLM scoring needs, before anything runs: its venv, a causal LM, full weights. ``lora``: the student
    is (or will be trained as) an adapter of ``student``."""
    from fcot_plugin.serving.vllm import vllm_python
    from fcot_plugin.training.architectures import student_kind

    if not lora and student_kind(student) != "causal":
        raise FcotError(
            f"--eval_engine vllm scores decoder-only students; {student} is an encoder-decoder model: pass "
            "--eval_engine hf-regroup"
        )
    if lora:
        raise FcotError(
            "--eval_engine vllm swaps full weights into its server, and a --lora student is an adapter: pass "
            "--eval_engine hf-regroup, or train without --lora"
        )
    vllm_python()  # one line saying `make vllm` when there is no venv


def check_distill(args: Any) -> str:
    """Every check of ``fcot distill`` that can fail before the first stage; returns the student to load."""
    from fcot_plugin.training.students import resolve_student

    check_run_dir(args.run_dir)  # the user's own folders are refused before anything runs
    check_teacher(args.teacher_spec, args.teacher, args.teacher_engine)
    read_sampling({SAMPLES: args.diverse, TEMPERATURE: args.teacher_temperature})
    if args.launcher == "accelerate":
        check_accelerate_config(args.accelerate_config)
    if args.push_to_hub:  # the repo ids, the token and the right to write, before the first stage
        from fcot_plugin.hub.push import check_push_target, student_repo_ids

        check_push_target(student_repo_ids(args.hub_model_id, args.hub_dataset_id), what="--hub_model_id")
    student = resolve_student(args.student)
    check_student(student)
    if args.eval_engine == "vllm":
        check_vllm_scoring(student, args.lora)
    return student


def option_value(argv: list[str], option: str) -> str | None:
    """The value of ``option`` in ``argv`` (``--x v`` or ``--x=v``), as lm-eval's argparse would read it."""
    for index, arg in enumerate(argv):
        if arg == option and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def check_lm_eval_arguments(argv: list[str], fcot_tasks: list[str]) -> None:
    """What ``fcot-eval`` can check before lm-eval starts: metadata, model args and unprefixed fcot tasks."""
    import importlib.util

    metadata_text = option_value(argv, "--metadata")
    metadata: dict[str, Any] = {}
    if metadata_text is not None:
        try:
            metadata = json.loads(metadata_text)
        except json.JSONDecodeError as error:
            raise FcotError(
                f"--metadata is not JSON ({error.msg} at character {error.pos}): pass an object such as "
                f'--metadata \'{{"fcot_samples": 4, "fcot_temperature": 0.7}}\''
            ) from None
        if not isinstance(metadata, dict):
            raise FcotError(f"--metadata must be a JSON object, got {metadata_text!r}")
    tasks = [name.strip() for name in (option_value(argv, "--tasks") or "").split(",") if name.strip()]
    voting = [name for name in tasks if name.startswith("fcot") and name.endswith("_sc")]  # self-consistency
    samples, temperature = read_sampling(
        metadata, voting[0] if voting else "--metadata", positive_temperature=bool(voting)
    )
    for name in tasks:
        if name.startswith("fcot") and name.endswith("_teacher") and temperature is None:  # greedy by default
            fix = f'add "{TEMPERATURE}": 0.7 to --metadata, or use {name}_diverse'
            refuse_greedy_repeats(samples or 1, False, name, fix)
    spec = importlib.util.find_spec("lm_eval")
    builtin_tasks = Path(spec.origin).parent / "tasks" if spec and spec.origin else None
    for name in tasks:
        if name.startswith("fcot") or task_name(name) not in fcot_tasks:
            continue
        if builtin_tasks is not None and (builtin_tasks / name).is_dir():
            continue  # lm-eval's own task of that name (e.g. gsm8k)
        raise FcotError(f"unknown task {name!r}: fcot tasks carry the fcot_ prefix, did you mean {task_name(name)}?")
    model_args = option_value(argv, "--model_args")
    if model_args:
        check_lm_eval_model(option_value(argv, "--model") or "hf", model_args, "--model_args")
