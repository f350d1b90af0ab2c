"""Seeded random generators for work that must be repeatable, restored afterwards.

Training (``--trainer``) and some attribution methods draw from the global generators of
Python, NumPy and torch; seeding them inside :func:`seeded` makes a run repeatable without
changing the random state of the code around it.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    import torch


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's global generators; restore them on exit."""
    import torch  # here, not at the top: importing the plugins that use this must stay fast

    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
