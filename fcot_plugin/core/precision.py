"""Training and evaluation precision chosen by the hardware: bf16 where it is native, fp32 otherwise.

bf16 is faster than fp32 on GPUs with bf16 units and on CPUs with AVX-512 BF16 or AMX, and hundreds of times
*slower* on CPUs that only emulate it (AVX2-only machines), so a fixed default is wrong on one of them
(benchmarks/results/design_measurements.md).
``resolve_precision("auto", device)`` looks at the machine; an explicit ``bf16`` on a machine that only
emulates it is honoured with a one-line warning. The features the choice was based on travel with it,
so run folders, benchmarks and reports can say why.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from fcot_plugin.core.errors import FcotError

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp32")
_ALIASES = {"bfloat16": "bf16", "float32": "fp32", "fp32": "fp32", "bf16": "bf16", "auto": "auto"}
# CPU flags (as /proc/cpuinfo spells them) that give native bf16 arithmetic.
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# Recorded beside every figure, so a number can be matched to the instruction set that produced it.
REPORTED_CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


@dataclass(frozen=True)
class Hardware:
    """What the precision choice looks at: the accelerator if any, else the CPU's bf16 support."""

    device: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    torch_threads: int
    gpu_name: str | None = None
    gpu_bf16: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def native_bf16(self) -> bool:
        if self.device.startswith("cuda"):
            return bool(self.gpu_bf16)
        return any(flag in self.cpu_flags for flag in NATIVE_BF16_CPU_FLAGS) or bool(self.extra.get("arm_bf16"))

    def describe(self) -> str:
        flags = " ".join(self.cpu_flags) or "none of " + " ".join(REPORTED_CPU_FLAGS)
        cpu = f"{self.cpu_model}, {self.torch_threads} threads, flags: {flags}"
        if self.device.startswith("cuda"):
            return f"{self.gpu_name} (bf16 {'native' if self.gpu_bf16 else 'not supported'}); host CPU {cpu}"
        return cpu

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_flags": list(self.cpu_flags), "native_bf16": self.native_bf16}

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> Hardware:
        """The machine as ``as_dict`` recorded it (in a run folder's config.json)."""
        names = {item.name for item in fields(cls)}
        values = {key: value for key, value in recorded.items() if key in names}
        return cls(**{**values, "cpu_flags": tuple(values.get("cpu_flags", ()))})


@dataclass(frozen=True)
class Precision:
    """The resolved choice and why: ``name`` is ``bf16`` or ``fp32``."""

    name: str
    requested: str
    hardware: Hardware

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    @property
    def torch_dtype_name(self) -> str:
        """The name transformers and lm-eval take for ``dtype``."""
        return torch_dtype_name(self.name)

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.name, "requested": self.requested, "hardware": self.hardware.as_dict()}


def torch_dtype_name(precision: str) -> str:
    """``bfloat16`` or ``float32``: the ``dtype`` transformers and lm-eval take for a resolved precision name."""
    return "bfloat16" if precision == "bf16" else "float32"


def _cpu_info() -> tuple[str, set[str]]:
    """CPU model name and flags from /proc/cpuinfo (Linux); elsewhere the platform's processor name only."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and value.strip():
                model = value.strip()
            elif key in ("flags", "Features"):  # x86 / Arm spelling
                flags.update(value.split())
            if key in ("flags", "Features") and model:
                break
    return model, flags


@cache
def detect_hardware(device: str = "cpu") -> Hardware:
    """The features of ``device`` (``cpu``, ``cuda``, ``cuda:N``) that decide the precision."""
    import torch

    model, flags = _cpu_info()
    reported = tuple(flag for flag in REPORTED_CPU_FLAGS if flag in flags)
    extra: dict[str, Any] = {"torch": torch.__version__, "machine": platform.machine()}
    if "bf16" in flags and platform.machine() in ("aarch64", "arm64"):  # Arm BF16 extension
        extra["arm_bf16"] = True
    try:
        extra["mkldnn_bf16"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private API; informative only
        pass
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FcotError(f"device {device!r} was asked for but torch sees no CUDA GPU; pass --device cpu")
        index = torch.device(device).index or 0
        return Hardware(
            device,
            model,
            reported,
            torch.get_num_threads(),
            torch.cuda.get_device_name(index),
            torch.cuda.is_bf16_supported(),
            extra,
        )
    return Hardware(device, model, reported, torch.get_num_threads(), extra=extra)


def training_device(use_cpu: bool) -> str:
    """``cpu`` or ``cuda``: where a Trainer with this ``use_cpu`` runs, known before its devices are set up."""
    import torch

    return "cpu" if use_cpu or not torch.cuda.is_available() else "cuda"


def normalise(requested: str) -> str:
    """``auto``/``bf16``/``fp32`` (``bfloat16``/``float32`` accepted); anything else is a one-line error."""
    name = _ALIASES.get(str(requested).strip().lower())
    if name is None:
        raise FcotError(f"unknown precision {requested!r}; choose one of: {', '.join(PRECISIONS)}")
    return name


def resolve_precision(requested: str = "auto", device: str = "cpu") -> Precision:
    """``auto`` → bf16 where the hardware has native bf16, else fp32; an explicit choice is kept."""
    name = normalise(requested)
    hardware = detect_hardware(device)
    if name == "auto":
        name = "bf16" if hardware.native_bf16 else "fp32"
    elif name == "bf16" and not hardware.native_bf16:
        logger.warning(
            "bf16 was asked for but %s has no native bf16 (it is emulated, often 100x+ slower than fp32); "
            "use --precision auto or fp32 unless that is intended",
            hardware.describe(),
        )
    return Precision(name, requested, hardware)
