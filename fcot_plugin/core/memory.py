"""Hands memory that torch freed back to the operating system, between the stages of one process.

A student trained in-process (``fcot distill``'s default launcher, and every task of ``benchmarks/paper_table.py``)
leaves its freed activations in glibc's heap, gigabytes of them even after ``gc.collect()``, and ``malloc_trim(0)``
returns them (benchmarks/results/design_measurements.md). Nothing leaks, but without the trim every later
stage (and the next task of a table) runs beside gigabytes the process no longer uses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_freed_memory() -> bool:
    """``malloc_trim(0)`` after a garbage collection; False where the C library has none (not glibc)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is None:
        return False
    trim(0)
    return True
