"""Attributions with captum: how much each input moved each explained prediction.

The model is wrapped (:class:`Explained`) as a function of flat rows, reshaped to
``--input-shape`` inside, that returns the *explained output* of each row: for
classification the probability of a target class, read from the raw outputs exactly as
:func:`auditor.run.task.read_outputs` reads them (logits through a softmax or sigmoid); for
regression the predicted value. Attributions are in the units of that output, so Integrated
Gradients' attributions of a row sum to its probability minus the baseline's.

Speed: captum differentiates a per-row output by unbinding it into one scalar per expanded
row (50,000 of them for 1,000 rows and 50 steps), which costs about 15 times the forward and
backward passes themselves. Rows do not interact in an eval-mode model, so the gradient of
the *sum* of the outputs over the batch is every row's own gradient: gradient methods get the
summed wrapper and run at the cost of their passes (the tests check the attributions equal
captum's per-row ones). Perturbation methods need per-row outputs and get those.

Not every model can be differentiated: a TorchScript model that casts its inputs to
integers for an embedding, a step function, a model whose gradient is zero or not finite.
:func:`gradient_problem` probes for that on a few rows, and the caller falls back to a
perturbation method (Feature Ablation) with a note. DeepLift needs module hooks on the
model's non-linearities, which compiled models (TorchScript, ``torch.export``) do not run:
there it would silently degrade to plain gradients, so it is refused for them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from auditor.contract.context import Task
from auditor.run.inference import first_tensor
from auditor_plugins.explain.methods import METHODS, Method  # described without torch; re-exported here

#: Input values per forward+backward pass when the batch is sized automatically. On a CPU,
#: passes of a few hundred thousand values run fastest (``benchmarks/bench_explain.py``:
#: a CNN's passes of 2^21 values ran 2.5 times slower than passes of 2^18).
BUDGET_CPU = 2**18
BUDGET_CUDA = 2**24


class Explained(nn.Module):
    """The model as a function of flat float rows and a target index per row, returning the
    explained output per row (``summed``: their sum, as one value, for gradient methods)."""

    def __init__(self, module: Any, task: Task, input_shape: Sequence[int] | None, *, summed: bool,
                 ids: bool = False) -> None:
        super().__init__()
        self.model = module
        self.ids = ids  # the model takes token ids: the float rows carry them exactly
        self.kind = task.kind
        self.output = task.output
        self.n_outputs = task.n_outputs
        self.shape = tuple(input_shape) if input_shape else None
        self.summed = summed
        # non-linearities as modules, so DeepLift applies its rules to them too
        if task.kind == "regression" or task.output in ("probabilities", "log_probabilities"):
            self.activation: nn.Module = nn.Identity()
        elif task.n_outputs == 1:
            self.activation = nn.Sigmoid()
        else:
            self.activation = nn.Softmax(dim=1)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (rows x K; K = 2 for binary) or values (rows x 1)."""
        n = x.shape[0]
        if self.ids:
            x = x.round().long()
        z = first_tensor(self.model(x.reshape(n, *self.shape) if self.shape else x))
        z = z.reshape(n, -1)
        if self.kind == "regression":
            return z[:, :1]
        if self.output == "log_probabilities":
            z = torch.exp(z)
        z = self.activation(z)
        if self.n_outputs == 1:
            return torch.cat([1.0 - z, z], dim=1)
        if self.output in ("probabilities", "log_probabilities"):
            z = z / z.sum(dim=1, keepdim=True)
        return z

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        chosen = self.outputs(x).gather(1, target.reshape(-1, 1))[:, 0]
        return chosen.sum().reshape(1) if self.summed else chosen


def is_compiled(module: Any) -> bool:
    """A TorchScript or ``torch.export`` model: module hooks do not run inside it."""
    if isinstance(module, torch.jit.ScriptModule):
        return True
    if isinstance(module, torch.fx.GraphModule):
        return True
    if isinstance(module, nn.Module):
        return any(isinstance(m, (torch.jit.ScriptModule, torch.fx.GraphModule)) for m in module.modules())
    return False


def gradient_problem(explained: Explained, x: torch.Tensor, baseline: torch.Tensor) -> tuple[str | None, list[int]]:
    """Why gradient methods cannot explain this model (None when they can), from one
    forward and backward pass of its raw outputs over a few rows and the midpoints of their
    paths from ``baseline`` (a saturated probability would hide the gradient at the rows);
    with the inputs whose gradient is zero at every probed point although changing them
    changes the output (cast to integers for an embedding, or rounded). Inputs the model
    ignores are no problem: their attribution of zero is right."""
    points = torch.cat([x, 0.5 * (x + baseline.reshape(1, -1))]).detach()
    probe = points.clone().requires_grad_(True)
    n = probe.shape[0]
    try:
        with torch.inference_mode(False), torch.enable_grad():
            model_input = probe.reshape(n, *explained.shape) if explained.shape else probe
            out = first_tensor(explained.model(model_input))
            (grad,) = torch.autograd.grad(out.sum(), probe, allow_unused=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: use a perturbation method
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"its gradient cannot be computed ({type(exc).__name__}: {first[:160]})", []
    if grad is None:
        return "its output does not depend differentiably on its inputs (integer or embedding inputs?)", []
    if not bool(torch.isfinite(grad).all()):
        return "its gradient is not finite", []
    dead = ~(grad.reshape(n, -1) != 0).any(dim=0)
    if not bool(dead.any()):
        return None, []
    if not _moves_output(explained, points, dead):  # inputs the model ignores: a zero is right
        return None, []
    if bool(dead.all()):
        return "its gradient is zero at every probed row (a step function, rounding, or integer inputs)", []
    columns = torch.nonzero(dead).flatten().tolist()
    return (
        f"its gradient is zero for {len(columns)} of {dead.numel()} inputs at every probed row, yet "
        "changing them changes the output (inputs cast to integers for an embedding, or rounded), so "
        "gradients would credit them with nothing",
        columns,
    )


def _moves_output(explained: Explained, points: torch.Tensor, columns: torch.Tensor) -> bool:
    """Whether the model's output changes when ``columns`` of the probed points take other
    points' values (each point gets the next one's): one forward pass each way."""
    varied = points.clone()
    varied[:, columns] = torch.roll(points[:, columns], 1, dims=0)
    with torch.inference_mode():
        n = points.shape[0]
        shape = (n, *explained.shape) if explained.shape else (n, -1)
        before = first_tensor(explained.model(points.reshape(shape))).reshape(n, -1)
        after = first_tensor(explained.model(varied.reshape(shape))).reshape(n, -1)
    scale = float(before.abs().max()) or 1.0
    return bool((after - before).abs().max() > 1e-6 * scale)


@dataclass
class Attributions:
    """Attributions of ``rows`` (rows x features, float64, in the explained output's units),
    with what was needed to get them."""

    values: np.ndarray
    method: str
    outputs: np.ndarray  # the explained output of each row
    baseline_outputs: np.ndarray | None = None  # the baseline's output per row (averaged)
    delta: np.ndarray | None = None  # sum of attributions - (output - baseline output)
    steps: np.ndarray | None = None  # integration steps used per row
    passes: int = 0  # rows run forward (and backward, for gradient methods)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Settings:
    method: str = "integrated_gradients"
    n_steps: int = 50
    max_steps: int = 400
    tolerance: float = 0.01  # completeness tolerance, in the explained output's units
    batch_size: int = 0  # points (rows x steps) per forward+backward pass; 0: sized from the input width


def batch_rows(n_features: int, device: torch.device, requested: int = 0) -> int:
    """Points (rows, or rows x integration steps) per forward+backward pass: ``requested``, or
    an input-size budget for the device."""
    if requested > 0:
        return requested
    budget = BUDGET_CUDA if device.type == "cuda" else BUDGET_CPU
    return max(64, budget // max(n_features, 1))


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.require(array, np.float32, ["C", "W"])).to(device)


def explained_outputs(
    explained: Explained, X: np.ndarray, device: torch.device, batch: int
) -> np.ndarray:
    """Every output the explained output chooses from (rows x K probabilities, or rows x 1
    values), forward only, in batches."""
    parts = []
    with torch.inference_mode():
        for start in range(0, X.shape[0], batch):
            parts.append(explained.outputs(_tensor(X[start : start + batch], device)).double().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 1))


def _captum(name: str, forward: nn.Module) -> Any:
    from auditor_plugins.explain.captum_attr import attr

    classes: dict[str, Callable[[nn.Module], Any]] = {
        "integrated_gradients": attr.IntegratedGradients,
        "deeplift": attr.DeepLift,
        "gradient_shap": attr.GradientShap,
        "saliency": attr.Saliency,
        "input_x_gradient": attr.InputXGradient,
        "feature_ablation": attr.FeatureAblation,
    }
    return classes[name](forward)


def _call(
    method: str,
    explainer: Any,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor | None,
    *,
    n_steps: int,
    feature_mask: torch.Tensor | None,
    per_eval: int,
    per_pass: int,
) -> torch.Tensor:
    extra = (target,)
    if method == "integrated_gradients":  # captum splits the steps into passes of per_pass points
        return explainer.attribute(
            x, baselines=baseline, additional_forward_args=extra, n_steps=n_steps,
            internal_batch_size=max(per_pass, x.shape[0]),
        )
    if method == "deeplift":
        return explainer.attribute(x, baselines=baseline, additional_forward_args=extra)
    if method == "gradient_shap":
        return explainer.attribute(x, baselines=baseline, additional_forward_args=extra, n_samples=n_steps)
    if method == "saliency":
        return explainer.attribute(x, additional_forward_args=extra, abs=False)
    if method == "input_x_gradient":
        return explainer.attribute(x, additional_forward_args=extra)
    return explainer.attribute(
        x, baselines=baseline, additional_forward_args=extra, feature_mask=feature_mask,
        perturbations_per_eval=per_eval,
    )


def patch_mask(input_shape: Sequence[int] | None, n_features: int, max_groups: int = 256) -> np.ndarray | None:
    """For image inputs (C,H,W) wider than ``max_groups``: square patches across channels,
    so perturbation methods run one pass per patch, not per pixel. None otherwise."""
    if input_shape is None or len(input_shape) != 3 or n_features <= max_groups:
        return None
    _, height, width = input_shape
    side = 1
    while -(-height // side) * -(-width // side) > max_groups:
        side += 1
    rows = np.arange(height) // side
    cols = np.arange(width) // side
    per_channel = rows[:, None] * (-(-width // side)) + cols[None, :]
    return np.broadcast_to(per_channel, tuple(input_shape)).reshape(-1).astype(np.int64)


def attribute(
    module: Any,
    X: np.ndarray,
    target: np.ndarray,
    baselines: np.ndarray,
    *,
    task: Task,
    input_shape: Sequence[int] | None,
    device: torch.device,
    settings: Settings,
    on_progress: Callable[[int], None] | None = None,
) -> Attributions:
    """Attributions of each row of ``X`` (rows x features, float32) toward ``target`` (an
    output index per row) with ``settings.method``.

    ``baselines`` holds one row (compared with every row) or k rows: methods with a baseline
    per row then average over the k (Integrated Gradients, DeepLift, Feature Ablation), and
    GradientShap draws from them. Methods that check completeness are re-run on the rows
    whose error exceeds the tolerance with twice the steps, up to ``max_steps``.
    """
    method: Method = METHODS[settings.method]
    n, n_features = X.shape
    target = np.asarray(target, dtype=np.int64)
    explained = Explained(module, task, input_shape, summed=method.summed)
    forward_batch = batch_rows(n_features, device, settings.batch_size)
    outputs = np.take_along_axis(explained_outputs(explained, X, device, forward_batch), target[:, None], 1)[:, 0]
    mask_np = patch_mask(input_shape, n_features) if not method.gradient else None
    mask = None if mask_np is None else torch.from_numpy(mask_np).to(device).reshape(1, -1)
    explainer = _captum(method.name, explained)
    k = baselines.shape[0] if method.baseline == "one" else 1
    steps = settings.n_steps if method.name in ("integrated_gradients", "gradient_shap") else 1
    cost = steps * k * (2 if method.name == "deeplift" else 1)
    groups = int(mask_np.max()) + 1 if mask_np is not None else n_features

    def run(rows: np.ndarray, n_steps: int, advance: Callable[[int], None] | None = None) -> np.ndarray:
        """Attributions of ``rows`` (averaged over the k baselines)."""
        result = np.empty((rows.size, n_features), dtype=np.float64)
        per_pass = max(1, forward_batch // max(n_steps * k * (2 if method.name == "deeplift" else 1), 1))
        points = forward_batch  # points per forward+backward pass
        if method.name == "integrated_gradients":  # rows per captum call; its steps are batched inside
            per_pass = max(1, forward_batch // k)
        if not method.gradient:
            per_pass = max(1, min(rows.size, forward_batch // max(k, 1)))
        start = 0
        while start < rows.size:
            chunk = rows[start : start + per_pass]
            x = X[chunk]
            t = target[chunk]
            b: np.ndarray | None = None
            if method.baseline == "one":
                x = np.repeat(x, k, axis=0)
                t = np.repeat(t, k)
                b = np.tile(baselines, (chunk.size, 1))
            elif method.baseline == "distribution":
                b = baselines
            per_eval = max(1, min(groups, forward_batch // max(x.shape[0], 1)))
            try:
                with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
                    # captum's notes to its own users (inputs set to require gradients, hooks
                    # set on non-linearities) say nothing an auditor's user can act on
                    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
                    got = _call(
                        method.name, explainer, _tensor(x, device), torch.from_numpy(t).to(device),
                        None if b is None else _tensor(b, device), n_steps=n_steps, feature_mask=mask,
                        per_eval=per_eval, per_pass=points,
                    )
            except torch.cuda.OutOfMemoryError:
                if per_pass == 1 and points == 1:
                    raise
                torch.cuda.empty_cache()
                per_pass, points = max(1, per_pass // 2), max(1, points // 2)
                continue
            values = got.detach().double().cpu().numpy().reshape(chunk.size, k, n_features)
            result[start : start + chunk.size] = values.mean(axis=1)
            start += chunk.size
            if advance is not None:
                advance(chunk.size)
        return result

    values = run(np.arange(n), steps, on_progress)
    passes = n * cost if method.gradient else n * k * (groups + 1)
    found = Attributions(values=values, method=method.name, outputs=outputs, passes=passes)
    if method.baseline == "one":  # the baselines' mean output for each row's target
        mean = explained_outputs(explained, baselines, device, forward_batch).mean(axis=0)
        found.baseline_outputs = mean[target]
    if method.complete:
        assert found.baseline_outputs is not None
        found.delta = values.sum(axis=1) - (outputs - found.baseline_outputs)
        found.steps = np.full(n, steps, dtype=np.int64)
        if method.name == "integrated_gradients":
            while steps < settings.max_steps:
                bad = np.nonzero(np.abs(found.delta) > settings.tolerance)[0]
                if bad.size == 0:
                    break
                steps = min(steps * 2, settings.max_steps)
                redo = run(bad, steps)
                found.passes += bad.size * steps * k
                found.values[bad] = redo
                found.delta[bad] = redo.sum(axis=1) - (outputs[bad] - found.baseline_outputs[bad])
                found.steps[bad] = steps
    return found
