"""How a run's process holds memory (auditor.run.heap): large arrays from the heap, reused when
freed, and no transparent huge pages for NumPy. Each check runs in a fresh interpreter, as the
settings last for the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc: Linux only")

MAPPINGS = """
import numpy as np
from auditor.run import heap
if {configured}:
    heap.one_arena()
def mappings():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)
before = mappings()
kept = [np.ones(1 << 20) for _ in range(10)]  # ten arrays of 8 MiB, alive together
print(mappings() - before)
"""


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_large_arrays_come_from_the_heap_in_a_runs_process():
    assert int(_run(MAPPINGS.format(configured=False))) >= 10  # glibc's default: a mapping each
    assert int(_run(MAPPINGS.format(configured=True))) <= 2  # the heap grows instead


def test_a_runs_process_asks_numpy_for_no_huge_pages():
    code = ("from auditor.run import heap\nfrom numpy._core import multiarray as m\n"
            "before = m._get_madvise_hugepage()\nheap.small_pages()\nprint(before, m._get_madvise_hugepage())")
    assert _run(code) == "True False"
