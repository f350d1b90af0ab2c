"""One concept: how a run's process holds memory: freed memory goes back to the system, so
that a run's peak memory is what it holds, not what glibc's allocator kept after the pass;
large arrays come from the heap and reuse it (:func:`one_arena`); no huge pages for NumPy
(:func:`small_pages`).

At 10^7 rows the pass allocates and frees a chunk's arrays (~14 MB) 89 times on two threads;
glibc's malloc keeps freed blocks below its mmap threshold in per-thread arenas, so the
process held ~0.7 GB more after the pass than it used (measured in-process: 1,751 MiB
resident after the pass, ~1,030 MiB with one arena and trimmed). :func:`one_arena` makes threads share one arena (call it before the
pass starts its reader thread); :func:`trim` returns free pages after the pass and after each
audit (``malloc_trim(0)``, ~20 ms). Both do nothing where the C library is not glibc (macOS,
musl): only the peak memory figures differ there.
"""

from __future__ import annotations

import ctypes
import sys
from functools import lru_cache
from typing import Any

#: mallopt's parameter numbers (glibc's malloc.h): the most arenas, the size from which a
#: block is mapped on its own, and the free memory at the heap's top that free() gives back.
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
_M_TRIM_THRESHOLD = -1
#: Blocks below this come from the heap (reused when freed) rather than mapped each time.
HEAP_BLOCKS = 256 << 20


@lru_cache(maxsize=1)
def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: nothing is opened
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):  # not glibc
        return None


def one_arena() -> None:
    """All threads allocate from one arena from now on (fewer blocks held per thread), and
    arrays of up to :data:`HEAP_BLOCKS` come from it: glibc maps every block past 128 KiB on
    its own and unmaps it when freed, so each of an audit's temporaries (8 MB a column of
    10^6 float64) was paged in afresh, zeroed page by page: the calibration audit's first run at
    10^6 rows took 0.50 s against 0.31 s once glibc had raised its threshold by itself, and 0.26 s
    with it raised from the start. Free memory then stays in the heap until :func:`trim`, which
    the runner calls after the pass and after each audit."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, 1)
        libc.mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCKS)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * HEAP_BLOCKS)


def trim() -> None:
    """Return the allocator's free pages to the system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def small_pages() -> None:
    """No transparent huge pages for NumPy's arrays in this process. NumPy asks the kernel for
    huge pages on every array past 4 MiB (``madvise(MADV_HUGEPAGE)``); where the kernel then
    assembles them on the fault (``defrag`` set to ``madvise``, Debian's default), memory that
    :func:`trim` gave back is compacted again at the next audit's first touch: the calibration
    audit at 10^6 rows took 0.60 s right after a trim and 0.28-0.35 s after, and 0.35 s every
    time with 4 KiB pages. A no-op where NumPy has no such switch."""
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1.x keeps it in numpy.core
        try:
            from numpy.core import multiarray  # type: ignore[no-redef]
        except ImportError:
            return
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is not None:
        switch(False)
