"""The training recipe of the bundled demo model, as a --trainer for the crossval audit.

    audit auditor/demo/model.pt --data auditor/demo/test.csv.gz \
        --train-data auditor/demo/train.csv.gz \
        --trainer adult_trainer:train --model-path examples/retrain --audits crossval

The same network and optimiser as scripts/build_demo.py (standardisation inside the model,
64-32-1 MLP, Adam at 1e-3, batches of 128), for the 10 epochs at which the demo's validation
loss was best. auditor seeds torch, NumPy and Python before each call and passes the seed,
the device and the model's output width when the function asks for them.
"""

from __future__ import annotations

import torch
from torch import nn

EPOCHS = 10
BATCH_SIZE = 128
LEARNING_RATE = 1e-3


class IncomeMLP(nn.Module):
    """Raw Adult features -> standardise -> 64 -> 32 -> one logit for '>50K'."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        self.layers = nn.Sequential(
            nn.Linear(mean.shape[0], 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - self.mean) / self.std)


def train(X: torch.Tensor, y: torch.Tensor, *, seed: int, device: torch.device) -> nn.Module:
    """Train a fresh IncomeMLP on features X (rows x 40) and 0/1 labels y."""
    std = X.std(dim=0)
    model = IncomeMLP(X.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std))).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    target = y.float()
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(len(X), generator=generator).split(BATCH_SIZE):
            batch = batch.to(device)
            optimizer.zero_grad()
            loss_fn(model(X[batch]).squeeze(1), target[batch]).backward()
            optimizer.step()
    return model.eval()
