"""The attribution methods the explain audit offers, by name, without importing torch.

:mod:`auditor_plugins.explain.attribution` computes them with captum (and re-exports these names); this
module only describes them, so that the explain audit can list its ``method`` choices when
plugins are discovered, before torch is imported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """A captum attribution method as the explain audit offers it."""

    name: str
    title: str
    gradient: bool  # needs the model's gradient
    complete: bool  # attributions sum to F(x) - F(baseline): checked per row
    baseline: str  # "one" (a baseline per row), "distribution" (random baselines) or "none"
    description: str
    summed: bool = True  # may differentiate the batch's summed output (see the module's notes)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "integrated_gradients", "Integrated Gradients", True, True, "one",
            "gradients integrated along the straight path from the baseline to the row "
            "(Sundararajan et al., 2017); attributions sum to the output minus the baseline's",
        ),
        Method(
            "deeplift", "DeepLift", True, True, "one",
            "DeepLift's rescale rule through the model's non-linearities (Shrikumar et al., "
            "2017); attributions sum to the output minus the baseline's",
            summed=False,  # captum's DeepLift splits the output into the rows' and the baselines'
        ),
        Method(
            "gradient_shap", "GradientShap", True, False, "distribution",
            "gradients at random points between the row and random baselines, times the "
            "difference (expected gradients; Lundberg and Lee, 2017); complete only on average",
        ),
        Method(
            "saliency", "Saliency", True, False, "none",
            "the gradient of the output at the row (Simonyan et al., 2014): local sensitivity, "
            "not a share of the output",
        ),
        Method(
            "input_x_gradient", "Input x Gradient", True, False, "none",
            "the row's values times the gradient at the row: a first-order share of the output "
            "relative to an all-zero input",
        ),
        Method(
            "feature_ablation", "Feature Ablation", False, False, "one",
            "the change in the output when each feature alone is set to the baseline's value: "
            "needs only forward passes, so works on any model",
            summed=False,
        ),
    )
}
