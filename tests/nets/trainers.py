"""Training functions the crossval tests pass with --trainer trainers:..., as users write them."""

import numpy as np
import tiny_nets
import torch


def _adam(module: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn, steps: int) -> torch.nn.Module:
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(module(X), y).backward()
        opt.step()
    return module.eval()


def breast_cancer(X: torch.Tensor, y: torch.Tensor, *, seed: int, device: torch.device) -> torch.nn.Module:
    """The recipe of the breast_cancer fixture: standardise, then 150 Adam steps on one logit."""
    module = tiny_nets.BreastCancerMLP().to(device)
    module.mean.copy_(X.mean(dim=0))
    module.std.copy_(X.std(dim=0, unbiased=False) + 1e-6)
    return _adam(module, X, y.float()[:, None], torch.nn.functional.binary_cross_entropy_with_logits, 150)


def diabetes(X, y, **kwargs):
    """The diabetes fixture's recipe; takes its keywords through **kwargs."""
    module = tiny_nets.DiabetesRegressor()
    module.scale.fill_(float(y.std(unbiased=False)))
    module.shift.fill_(float(y.mean()))
    return _adam(module, X, y[:, None], torch.nn.functional.mse_loss, 300)


def wine(X, y, seed=0, n_outputs=3):
    """Softmax probabilities, like the wine fixture's model."""
    module = tiny_nets.WineSoftmax()
    module.mean.copy_(X.mean(dim=0))
    module.std.copy_(X.std(dim=0, unbiased=False) + 1e-6)
    return _adam(module, X, y, lambda p, t: torch.nn.functional.nll_loss(torch.log(p + 1e-9), t), 150)


def digits(X, y):
    """Receives images (rows x 1 x 8 x 8), as the CNN does with --input-shape 1,8,8."""
    assert X.shape[1:] == (1, 8, 8), X.shape
    return _adam(tiny_nets.DigitsCNN(), X, y, torch.nn.functional.cross_entropy, 150)


def noisy(X, y, *, seed):
    """Draws from NumPy's and Python's global generators, which each call seeds."""
    import random

    torch.manual_seed(int(np.random.randint(0, 1000)) + random.randint(0, 1000))
    return breast_cancer(X, y, seed=seed, device=X.device)


def raises(X, y):
    raise ValueError("the learning rate is negative")


def not_a_model(X, y):
    return {"weights": [1, 2, 3]}


def two_outputs(X, y):
    return torch.nn.Linear(X.shape[1], 2)


def one_argument(X):
    return torch.nn.Linear(X.shape[1], 1)


NOT_CALLABLE = 42
