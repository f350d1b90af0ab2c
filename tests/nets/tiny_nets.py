"""Model classes the tests load weights into with --model-class tiny_nets:..."""

import torch
from torch import nn


class BreastCancerMLP(nn.Module):
    """30 standardised-inside features -> one logit."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(30))
        self.register_buffer("std", torch.ones(30))
        self.net = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


class WineSoftmax(nn.Module):
    """13 features -> 3 class probabilities (softmax inside the model)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(13))
        self.register_buffer("std", torch.ones(13))
        self.net = nn.Sequential(nn.Linear(13, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((x - self.mean) / self.std), dim=1)


class DiabetesRegressor(nn.Module):
    """10 features -> one value."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("shift", torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale + self.shift


class DigitsCNN(nn.Module):
    """8x8 digit images (1 channel) -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x / 16.0).flatten(1))


def needs_arguments(width: int) -> nn.Module:
    """A factory that cannot be called without arguments."""
    return nn.Linear(width, 1)


class DecileRule(nn.Module):
    """COMPAS's published decision rule as a model: 'high risk' when decile_score >= 5.

    Outputs a logit (decile - 4.5), so the predicted class is exactly ProPublica's
    Medium/High versus Low split.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] - 4.5
