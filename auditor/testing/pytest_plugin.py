"""pytest fixtures for audit plugin authors, loaded by pytest through the ``pytest11`` entry point.

Installing auditor makes these fixtures available in every pytest session (no conftest.py
needed):

``audit_context``
    :func:`auditor.testing.make_context` itself: call it with arrays to build a context,
    ``audit_context(y=[0, 1], proba=[0.3, 0.8])``.
``binary_context``
    a fresh context of a real binary classifier: a one-hidden-layer MLP trained in the
    session (about a second on a CPU, seeded) on scikit-learn's breast cancer data, audited
    on a held-out 40%. It has everything but an energy measurement: the target (classes
    ``malignant``, ``benign``), the 30 features, a model ``ctx.infer`` runs, the training data
    with the model's predictions on it, the training history (``train_loss`` and
    ``val_loss`` per epoch) and one sensitive column, ``clinic``: three seeded random
    labels that carry no signal, for audits that need a sensitive column. Each test gets its
    own context (changing it does not leak into the next test); the model is shared.
``check_audit``
    :func:`auditor.testing.check_audit`.

Importing this module imports neither torch nor auditor's run machinery: pytest loads it in
every session, and a session that uses none of these fixtures should not pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    import numpy as np

    from auditor.contract.context import AuditContext

#: The epochs the session's MLP trains for (full batch, Adam).
EPOCHS = 60
#: The seed of the session's training, split and ``clinic`` column.
SEED = 0


@dataclass(frozen=True)
class TrainedBinary:
    """The session's trained binary MLP and its data (read-only: tests share it)."""

    module: Any  # torch.nn.Module, in eval mode
    feature_names: list[str]
    class_names: tuple[str, ...]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    clinic: np.ndarray
    history: dict[str, list[float]]


def _train_binary() -> TrainedBinary:
    """Train the MLP: standardising buffers, 16 hidden units, one logit; seeded, full batch."""
    pytest.importorskip("sklearn", reason="binary_context reads scikit-learn's breast cancer data: "
                        "pip install scikit-learn")
    import numpy as np
    import torch
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    X = data.data.astype(np.float32)
    y = data.target.astype(np.int64)  # 0 malignant, 1 benign
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=SEED, stratify=y)

    class BreastCancerMLP(torch.nn.Module):
        mean: torch.Tensor
        std: torch.Tensor

        def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean))
            self.register_buffer("std", torch.tensor(std))
            self.layers = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers((x - self.mean) / self.std)

    with torch.random.fork_rng(devices=[]):  # seeded without touching the session's global RNG
        torch.manual_seed(SEED)
        module = BreastCancerMLP(X_train.mean(axis=0), X_train.std(axis=0) + 1e-6)
        optimiser = torch.optim.Adam(module.parameters(), lr=0.01)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        Xt, yt = torch.from_numpy(X_train), torch.from_numpy(y_train.astype(np.float32))[:, None]
        Xv, yv = torch.from_numpy(X_test), torch.from_numpy(y_test.astype(np.float32))[:, None]
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        for _ in range(EPOCHS):
            module.train()
            optimiser.zero_grad()
            loss = loss_fn(module(Xt), yt)
            loss.backward()
            optimiser.step()
            module.eval()
            with torch.no_grad():
                history["train_loss"].append(float(loss_fn(module(Xt), yt)))
                history["val_loss"].append(float(loss_fn(module(Xv), yv)))
    module.eval()
    clinic = np.random.default_rng(SEED).choice(np.array(["north", "south", "west"]), size=len(y_test))
    names = [str(n).replace(" ", "_") for n in data.feature_names]
    return TrainedBinary(module, names, ("malignant", "benign"), X_train, y_train, X_test, y_test, clinic, history)


@pytest.fixture(scope="session")
def auditor_binary_model() -> TrainedBinary:
    """The session's trained breast cancer MLP and its data (see :func:`binary_context`)."""
    return _train_binary()


@pytest.fixture
def audit_context() -> Callable[..., AuditContext]:
    """:func:`auditor.testing.make_context`: ``audit_context(y=..., proba=..., groups=...)``."""
    from auditor.testing.context import make_context

    return make_context


@pytest.fixture
def binary_context(auditor_binary_model: TrainedBinary) -> AuditContext:
    """A fresh context of the session's breast cancer MLP on held-out data, with training data,
    history, and a seeded random sensitive column ``clinic``."""
    from auditor.testing.context import make_context

    trained = auditor_binary_model
    return make_context(
        X=trained.X_test,
        y=trained.y_test,
        feature_names=trained.feature_names,
        class_names=trained.class_names,
        model=trained.module,
        groups={"clinic": trained.clinic},
        history=trained.history,
        train={"X": trained.X_train, "y": trained.y_train},
        seed=SEED,
    )


@pytest.fixture(name="check_audit")
def check_audit_fixture() -> Callable[..., Any]:
    """:func:`auditor.testing.check_audit`: ``check_audit(MyAudit(), ctx)``."""
    from auditor.testing.check import check_audit

    return check_audit
