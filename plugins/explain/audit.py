"""The built-in "explain" audit: what drives the model's predictions, and can the
explanation be trusted.

- **Attributions** (captum, :mod:`auditor_plugins.explain.attribution`) on a seeded sample of rows
  stratified by class (by target decile for regression), toward the *explained output*: the
  positive class's probability (binary), the predicted class's probability (multiclass) or
  the predicted value (regression). Integrated Gradients by default, against a stated
  baseline; Saliency, Input x Gradient, DeepLift, GradientShap and Feature Ablation on
  request. A model that cannot be differentiated is explained by Feature Ablation, with a
  note; DeepLift on a compiled model falls back to Integrated Gradients.
- **Sanity checks**: completeness of Integrated Gradients and DeepLift (attributions of a
  row sum to its output minus the baseline's; rows off by more than ``tolerance`` are re-run
  with twice the steps, up to ``max_steps``); two forward passes over the sample agree with
  each other and with the one inference pass (a model that is random or batch-dependent at
  inference cannot be explained reliably); permutation importance of ``metric``
  (:mod:`auditor_plugins.explain.permutation`, scikit-learn's permutations) and its rank agreement with the
  attributions.
- **Global importance**: mean |attribution| per feature, its share, and its sign tendency
  (the correlation of a feature's value with its attribution: do higher values raise or
  lower the output); per class for multiclass; a few individual explanations (the most
  confident right and wrong predictions). With ``--input-shape C,H,W``: attribution maps
  over the image; with ``T,F``: importance per time step and per feature.

This module runs the steps (the sample, the method, the attributions, the checks, the
permutation importance) and gives the verdict (metrics, findings, status); the tables, charts
and sentences built from their numbers are in :mod:`auditor_plugins.explain.present`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from auditor.contract.plugin import Audit, Option
from auditor.contract.result import AuditResult, Chart, Finding, Metric, Table, status_from_findings
from auditor.contract.vocabulary import (
    HEADLINE_TOLERANCE,
    HEADLINES,
    METRIC_DEFINITIONS,
    in_sentence,
)
from auditor.run.seeding import seeded
from auditor.run.task import read_outputs
from auditor_plugins.explain.importance import Importance, importance, sequence_features, spearman
from auditor_plugins.explain.methods import METHODS
from auditor_plugins.explain.permutation import PermutationImportance, permutation_importance
from auditor_plugins.explain.present import (
    agreement_table,
    completeness_table,
    examples_table,
    image_maps,
    importance_views,
    number_text,
    per_class,
    permutation_chart,
    sequence_maps,
    summary_sentence,
)
from auditor_plugins.explain.sample import deciles, stratified_sample

if TYPE_CHECKING:
    from auditor.contract.context import AuditContext
    from auditor_plugins.explain import attribution
    from auditor_plugins.explain.attribution import Attributions, Explained
#: Two forward passes over the same rows may differ by float noise up to this (output units).
REPEAT_TOLERANCE = 1e-4


#: Permutation importance is skipped above this many feature groups (it costs a pass each).
MAX_PERMUTED = 500


@dataclass
class _Layout:
    """How flat feature columns map onto what the report shows."""

    kind: str  # "tabular", "image" or "sequence"
    shape: tuple[int, ...] | None
    names: list[str]  # one per reported feature (tabular: columns; sequence: the F features)
    groups: list[list[int]]  # flat columns of each reported feature
    naming: str | None = None  # sequence: how the features' names were found
    misordered: str | None = None  # sequence: columns whose steps the reshape reads in another order

    def column(self, j: int, columns: Sequence[str]) -> str:
        """Flat column ``j`` as the report names it (sequence: its feature and step)."""
        if self.kind == "sequence" and self.shape is not None:
            step, feature = divmod(j, self.shape[1])
            return f"{self.names[feature]} at step {step}"
        return columns[j]


def _layout(ctx: AuditContext) -> _Layout:
    names = list(ctx.data.feature_names)
    shape = ctx.input_shape
    if shape is not None and len(shape) == 3:
        return _Layout("image", shape, names, [[j] for j in range(len(names))])
    if shape is not None and len(shape) == 2:
        steps, width = shape
        found = sequence_features(names, steps, width)  # never step 0's column names: a feature spans every step
        return _Layout("sequence", shape, found.names, found.groups, found.how, found.misordered)
    return _Layout("tabular", None, names, [[j] for j in range(len(names))])


class ExplainAudit(Audit):
    name = "explain"
    title = "Explainability"
    description = (
        "What drives the predictions: captum attributions on a stratified sample, checked for "
        "completeness and against permutation importance."
    )
    needs = ("model", "features")
    options = (
        Option("method", "str", "integrated_gradients", "Attribution method (captum).", choices=tuple(METHODS)),
        Option(
            "baseline", "str", "auto",
            "What attributions are measured against: zeros, the feature means of the data, or a "
            "sample of data rows (averaged over); auto is zeros for images, means otherwise.",
            choices=("auto", "zeros", "mean", "sample"),
        ),
        Option("baseline_rows", "int", 10, "Data rows drawn as baselines for baseline=sample (and GradientShap).", min=1, max=1000),
        Option("samples", "int", 1000, "Rows explained: a seeded sample stratified by class (regression: target decile).", min=10),
        Option("n_steps", "int", 50, "Integration steps (Integrated Gradients) or random points (GradientShap).", min=2, max=100_000),
        Option("max_steps", "int", 400, "Most steps Integrated Gradients may rise to for rows that miss the tolerance.", min=2, max=100_000),
        Option(
            "tolerance", "float", 0.01,
            "Completeness tolerance per row: |sum of attributions − (output − baseline output)|, in "
            "probability units (regression: standard deviations of the predictions).",
            min=0.0,
        ),
        Option(
            "batch_size", "int", 0,
            "Points (rows x integration steps) per forward+backward pass (0: sized from the input width and the device).",
            min=0,
        ),
        Option("permutation", "bool", True, "Cross-check with permutation importance (needs a target)."),
        Option("repeats", "int", 5, "Shuffles per feature for permutation importance.", min=1, max=100),
        Option(
            "metric", "str", "",
            "Metric whose drop permutation importance measures (default: the task's first headline metric).",
            choices=("", *(k for k in METRIC_DEFINITIONS if k != "baseline_accuracy")),
        ),
        Option(
            "min_agreement", "float", 0.5,
            "Warn when the rank correlation of attributions and permutation importance over their "
            "top features is below this.",
            min=-1.0, max=1.0,
        ),
        Option("top", "int", 10, "Features shown in the charts and compared for agreement.", min=2, max=200),
        Option("examples", "int", 3, "Individual explanations of each kind (most confident right and wrong).", min=0, max=20),
    )

    def run(self, ctx: AuditContext, options: Mapping[str, Any]) -> AuditResult:
        if getattr(ctx, "input_dtype", "float32") == "int64":
            if getattr(ctx, "text", None) is None:
                return AuditResult.skipped(
                    self.name, self.title,
                    "Skipped: the model takes integer ids that come from no tokenizer (--text), so there is no "
                    "padding id to occlude them with and no token to show; gradients do not flow through ids.")
            from auditor_plugins.explain.text_run import TokenRun

            return TokenRun(ctx, options).result()
        return ExplainRun(ctx, options).result()


class ExplainRun:
    """One run of the audit: the steps share the sample, the attributions and the options."""

    def __init__(self, ctx: AuditContext, options: Mapping[str, Any]) -> None:
        import torch

        self.ctx = ctx
        self.options = options
        self.task = ctx.task
        self.device = torch.device(ctx.device)
        self.layout = _layout(ctx)
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.metrics: dict[str, Metric] = {}
        self.tables: list[Table] = []
        self.charts: list[Chart] = []
        self.X = ctx.data.X  # column-major: only the rows used are copied, row-major, where needed
        y = ctx.data.y
        pred = ctx.predictions
        if self.task.is_classification:
            assert pred.label is not None and pred.proba is not None
            strata = y if y is not None else pred.label
            self.targets = np.ones(ctx.data.n_rows, dtype=np.int64) if self.task.kind == "binary" else pred.label
            self.explained_one_pass = np.take_along_axis(pred.proba, self.targets[:, None], 1)[:, 0]
        else:
            assert pred.value is not None
            strata = deciles(y if y is not None else pred.value)
            self.targets = np.zeros(ctx.data.n_rows, dtype=np.int64)
            self.explained_one_pass = pred.value
        self.sample = stratified_sample(strata, self.sample_size(), ctx.seed)
        self.scale = 1.0
        self.busiest_step: tuple[int, float] | None = None  # sequence: the step moving the output most, its share
        if not self.task.is_classification:
            assert pred.value is not None  # a regression's predictions are values
            spread = float(np.std(pred.value[self.sample]))
            self.scale = spread if spread > 0 else 1.0

    def sample_size(self) -> int:
        return int(self.options["samples"])

    # -- what is explained ------------------------------------------------------------

    @property
    def output_name(self) -> str:
        if self.task.kind == "binary":
            return f"P({self.task.class_names[1]})"
        if self.task.kind == "multiclass":
            return "the predicted class's probability"
        return "the prediction"

    def _examples(self) -> list[tuple[str, int]]:
        """(kind, row) of the individual explanations: the most confident right and wrong
        predictions (regression: the smallest and largest errors)."""
        k = int(self.options["examples"])
        if k == 0:
            return []
        pred, y = self.ctx.predictions, self.ctx.data.y
        if self.task.is_classification:
            assert pred.proba is not None and pred.label is not None
            confidence = pred.proba.max(axis=1)
            if y is None:
                picked = [("most confident", r) for r in _top(confidence, k)]
                picked += [("least confident", r) for r in _top(-confidence, k)]
            else:
                right = pred.label == y
                picked = [("confident and right", r) for r in _top(confidence, k, right)]
                picked += [("confident and wrong", r) for r in _top(confidence, k, ~right)]
        else:
            assert pred.value is not None
            if y is None:
                picked = [("highest prediction", r) for r in _top(pred.value, k)]
                picked += [("lowest prediction", r) for r in _top(-pred.value, k)]
            else:
                error = np.abs(pred.value - y)
                picked = [("smallest error", r) for r in _top(-error, k)]
                picked += [("largest error", r) for r in _top(error, k)]
        seen: set[int] = set()
        unique = []
        for kind, row in picked:
            if row not in seen:
                seen.add(row)
                unique.append((kind, row))
        return unique

    def _baselines(self) -> tuple[np.ndarray, str]:
        choice = str(self.options["baseline"])
        if choice == "auto":
            choice = "zeros" if self.layout.kind == "image" else "mean"
        n_features = self.X.shape[1]
        if choice == "zeros":
            return np.zeros((1, n_features), dtype=np.float32), "an all-zero input"
        if choice == "mean":
            means = self.X.mean(axis=0, dtype=np.float64).astype(np.float32)
            return means[None, :], "the mean of every feature over the audit data"
        count = min(int(self.options["baseline_rows"]), self.ctx.data.n_rows)
        rows = np.sort(np.random.default_rng(self.ctx.seed + 1).choice(self.ctx.data.n_rows, count, replace=False))
        return self.X[rows], f"{count} data rows chosen at random (seeded)"

    # -- checks -------------------------------------------------------------------------

    def _check_repeatable(self, explained: Explained, rows: np.ndarray, batch: int) -> None:
        """Two forward passes over the sample must agree with each other and with the one
        inference pass; otherwise the model is random or batch-dependent at inference."""
        import torch

        from auditor_plugins.explain import attribution

        X = self.X[rows]
        t = self.targets[rows][:, None]
        with seeded(self.ctx.seed, self.device):
            first = np.take_along_axis(attribution.explained_outputs(explained, X, self.device, batch), t, 1)[:, 0]
            torch.manual_seed(self.ctx.seed + 1)
            second = np.take_along_axis(attribution.explained_outputs(explained, X, self.device, batch), t, 1)[:, 0]
        between = float(np.max(np.abs(first - second))) / self.scale if rows.size else 0.0
        against = float(np.max(np.abs(first - self.explained_one_pass[rows]))) / self.scale if rows.size else 0.0
        units = "" if self.task.is_classification else " prediction SDs"
        self.metrics["repeat_difference"] = Metric(
            between, "Difference between two forward passes", direction="lower",
            description="Largest difference in the explained output between two forward passes over the "
            f"sample ({'probability' if self.task.is_classification else 'in SDs of the predictions'}): "
            "0 for a deterministic model.",
        )
        if between > REPEAT_TOLERANCE:
            self.findings.append(Finding(
                "warning", "random-at-inference",
                f"Two forward passes over the same {rows.size:,} rows give outputs up to {number_text(between)}{units} "
                "apart: the model behaves randomly at inference (dropout or batch normalisation left in "
                "training mode when it was saved, traced or exported?). Attributions were computed under "
                "a fixed seed but change with it, and every other audit's figures are one random draw. "
                "Save the model after model.eval().",
            ))
        elif against > max(REPEAT_TOLERANCE, 1e-3):
            self.findings.append(Finding(
                "warning", "batch-dependent",
                f"The model's outputs on the sample differ by up to {number_text(against)}{units} from its outputs "
                "on the same rows in the audit's inference pass, which used other batches: its output "
                "for a row depends on the other rows of the batch (batch normalisation in training "
                "mode?). Attributions assume rows are independent.",
            ))

    # -- steps --------------------------------------------------------------------------

    def _choose_method(self, explained_rows: np.ndarray, baselines: np.ndarray) -> attribution.Method:
        import torch

        from auditor_plugins.explain import attribution
        from auditor_plugins.explain.attribution import Explained

        method = METHODS[str(self.options["method"])]
        module = self.ctx.model.module
        if method.name == "deeplift" and attribution.is_compiled(module):
            self.findings.append(Finding(
                "info", "method-fallback",
                "DeepLift needs hooks on the model's layers, which a compiled model (TorchScript or "
                "torch.export) does not run: inside it DeepLift would silently fall back to plain "
                "gradients. Integrated Gradients was used instead.",
            ))
            method = METHODS["integrated_gradients"]
        if method.gradient:
            probe = explained_rows[:: max(1, explained_rows.size // 64)][:64]
            explained = Explained(module, self.task, self.layout.shape, summed=True)
            problem, dead = attribution.gradient_problem(
                explained,
                torch.from_numpy(self.X[probe]).to(self.device),
                torch.from_numpy(baselines.mean(axis=0)).to(self.device),
            )
            if problem is not None:
                if dead:
                    names = ", ".join(repr(self.layout.column(j, self.ctx.data.feature_names)) for j in dead[:5])
                    problem += f" ({names}{', ...' if len(dead) > 5 else ''})"
                self.findings.append(Finding(
                    "info", "perturbation-fallback",
                    f"{METHODS[method.name].title} needs the model's gradient, but {problem}. The model "
                    "was explained by Feature Ablation instead, which needs only forward passes.",
                ))
                method = METHODS["feature_ablation"]
        return method

    def result(self) -> AuditResult:
        from auditor_plugins.explain import attribution
        from auditor_plugins.explain.attribution import Explained, Settings

        ctx, options = self.ctx, self.options
        examples = self._examples()
        sampled = set(self.sample.tolist())
        extra = np.array([row for _, row in examples if row not in sampled], dtype=np.int64)
        rows = np.concatenate([self.sample, extra])
        batch = attribution.batch_rows(self.X.shape[1], self.device, int(options["batch_size"]))
        explained = Explained(ctx.model.module, self.task, self.layout.shape, summed=False)
        self._check_repeatable(explained, self.sample, batch)
        baselines, baseline_text = self._baselines()
        method = self._choose_method(rows, baselines)
        if baselines.shape[0] > 1:
            what = "averaged over" if method.baseline == "one" else "drawn from"
            baseline_text += f", attributions {what} them"
        settings = Settings(
            method=method.name,
            n_steps=int(options["n_steps"]),
            max_steps=max(int(options["max_steps"]), int(options["n_steps"])),
            tolerance=float(options["tolerance"]) * self.scale,
            batch_size=int(options["batch_size"]),
        )
        with ctx.progress(f"Explaining: {method.title}", rows.size) as advance, seeded(ctx.seed, self.device):
            found = attribution.attribute(
                ctx.model.module, self.X[rows], self.targets[rows], baselines,
                task=self.task, input_shape=self.layout.shape, device=self.device,
                settings=settings, on_progress=advance,
            )
        n_sample = self.sample.size
        values = found.values[:n_sample]
        position = {int(r): i for i, r in enumerate(rows)}
        self.notes.append(
            f"{method.title}: {method.description}. Explained output: {self.output_name}. Baseline: "
            f"{baseline_text}. Sample: {n_sample:,} of {ctx.data.n_rows:,} rows, stratified by "
            f"{'class' if self.task.is_classification else 'decile of the target'} (seed {ctx.seed}); "
            f"{found.passes:,} rows were run through the model for it."
        )
        if self.layout.naming is not None:
            self.notes.append(self.layout.naming)
        if self.layout.misordered is not None:
            self.findings.append(Finding("warning", "sequence-columns-misordered", self.layout.misordered))
        self._completeness(found, method, n_sample)
        grouped = importance(values, self.X[self.sample], self.layout.groups)
        permuted = self._permutation()
        if self.layout.kind == "image":  # a ranked table of single pixels would say little
            self._concentration(grouped)
            image_maps(self, values, found, position, examples)
        else:
            self._importance(grouped, permuted, values)
            if self.layout.kind == "sequence":
                sequence_maps(self, values)
            examples_table(self, found, position, examples)
        self._sensitive(grouped)
        status = status_from_findings(self.findings)
        return AuditResult(
            audit="explain",
            title=ExplainAudit.title,
            status=status,
            summary=summary_sentence(self, method, grouped, permuted),
            metrics=self.metrics,
            findings=self.findings,
            tables=self.tables,
            charts=self.charts,
            notes=self.notes,
            options=dict(options),
        )

    def _completeness(self, found: Attributions, method: attribution.Method, n_sample: int) -> None:
        if found.delta is None or found.steps is None:
            return
        delta = np.abs(found.delta[:n_sample]) / self.scale
        p50, p95, worst = (float(v) for v in np.quantile(delta, [0.5, 0.95, 1.0]))
        tolerance = float(self.options["tolerance"])
        units = "probability" if self.task.is_classification else "SDs of the predictions"
        self.metrics["completeness_error_p95"] = Metric(
            p95, "Completeness error, 95th percentile", direction="lower", headline=True,
            tolerance=HEADLINE_TOLERANCE,
            description=f"95th percentile over the sample of |sum of a row's attributions − (its output − the "
            f"baseline's output)|, in {units}: 0 for exact attributions.",
        )
        self.metrics["completeness_error_max"] = Metric(
            worst, "Completeness error, largest", direction="lower",
            description=f"The largest completeness error over the sample, in {units}.",
        )
        steps = found.steps[:n_sample]
        counts = {int(s): int(c) for s, c in zip(*np.unique(steps, return_counts=True))}
        self.tables.append(completeness_table(method, delta, p50, p95, worst, tolerance, counts, units,
                                              int(self.options["max_steps"])))
        if p95 > tolerance:
            raised = (
                f" even with up to {max(counts)} integration steps" if method.name == "integrated_gradients"
                else ""
            )
            fix = (
                "Raise explain.max_steps, or look for a non-smooth model (steps, saturation)."
                if method.name == "integrated_gradients"
                else "DeepLift's rules hold only for non-linearities used as modules (nn.ReLU, not "
                "F.relu): use Integrated Gradients."
            )
            self.findings.append(Finding(
                "warning", "incomplete-attributions",
                f"{method.title}'s attributions miss completeness on {int(np.sum(delta > tolerance)):,} of "
                f"{n_sample:,} rows{raised} (95th percentile error {number_text(p95)} against a tolerance of "
                f"{tolerance:g}): they do not fully account for the outputs. {fix}",
            ))

    def _permutation(self) -> PermutationImportance | None:
        ctx, options = self.ctx, self.options
        if not options["permutation"]:
            return None
        if ctx.data.y is None:
            self.notes.append("Permutation importance needs a target (--target): not computed.")
            return None
        if self.layout.kind == "image":
            self.notes.append(
                "Permutation importance is not computed for image inputs: shuffling single pixels says "
                "little; the attribution maps show where the model looks."
            )
            return None
        if len(self.layout.groups) > MAX_PERMUTED:
            self.notes.append(
                f"Permutation importance is not computed for {len(self.layout.groups):,} features (more "
                f"than {MAX_PERMUTED}): it costs one pass over the sample per feature and repeat."
            )
            return None
        assert ctx.infer is not None
        metric = str(options["metric"]) or HEADLINES[self.task.kind][0]
        X = self.X[self.sample]
        y = ctx.data.y[self.sample]
        one_pass = ctx.predictions.take(self.sample)
        task = self.task

        def predict(rows: np.ndarray) -> Any:
            return read_outputs(ctx.infer(rows), task)  # type: ignore[misc]

        jobs = len(self.layout.groups) * int(options["repeats"])
        with ctx.progress("Explaining: permutation importance", jobs) as advance:
            try:
                found = permutation_importance(
                    predict, X, y, one_pass, task=task, metric=metric,
                    higher_is_better=METRIC_DEFINITIONS[metric][1] == "higher",
                    groups=self.layout.groups, n_repeats=int(options["repeats"]), seed=ctx.seed,
                    on_progress=advance,
                )
            except KeyError:  # raised by the baseline score, before any permutation
                self.findings.append(Finding(
                    "warning", "metric-not-applicable",
                    f"explain.metric {metric!r} is not a {task.kind} metric, so permutation importance was not "
                    f"computed; leave it empty for {in_sentence(METRIC_DEFINITIONS[HEADLINES[task.kind][0]][0])}.",
                ))
                return None
        what = "each feature across all its time steps" if self.layout.kind == "sequence" else "each feature"
        self.notes.append(
            f"Permutation importance: the drop in {in_sentence(METRIC_DEFINITIONS[metric][0])} on the sample "
            f"when {what} is shuffled, {int(options['repeats'])} times (scikit-learn's permutations for seed "
            f"{ctx.seed}); {found.rows_predicted:,} rows were run through the model for it."
        )
        return found

    def _importance(self, g: Importance, permuted: PermutationImportance | None, values: np.ndarray) -> None:
        names = self.layout.names
        top = min(int(self.options["top"]), len(names))
        order = g.order
        importance_views(self, g, permuted, top)
        if self.task.kind == "multiclass":
            per_class(self, values)
        share_top = float(g.share[order[0]]) if len(order) else None
        self.metrics["top_feature_share"] = Metric(
            share_top, "Share of the top feature", direction="none", headline=True,
            description="The most important feature's share of the total mean |attribution|: near 1, one "
            "feature decides nearly everything.",
        )
        if permuted is None:
            return
        p_order = np.argsort(-permuted.mean, kind="stable")
        self.charts.append(permutation_chart(names, permuted, p_order, top))
        union = np.union1d(order[:top], p_order[:top])
        rho_top = spearman(g.mean_abs[union], permuted.mean[union])
        rho_all = spearman(g.mean_abs, permuted.mean)
        overlap = len(set(order[:top].tolist()) & set(p_order[:top].tolist())) / top
        self.metrics["agreement"] = Metric(
            rho_top, "Agreement with permutation importance", direction="higher", headline=True,
            tolerance=HEADLINE_TOLERANCE,
            description=f"Spearman rank correlation between mean |attribution| and permutation importance over "
            f"the union of each one's top {top} features.",
        )
        self.metrics["agreement_all"] = Metric(
            rho_all, "Agreement over all features", direction="higher",
            description="Spearman rank correlation between the two importances over every feature.",
        )
        self.metrics["top_overlap"] = Metric(
            overlap, f"Top-{top} overlap", direction="higher",
            description=f"Share of the attributions' top {top} features that are also in permutation importance's.",
        )
        self.tables.append(agreement_table(top, rho_top, rho_all, overlap))
        minimum = float(self.options["min_agreement"])
        if rho_top is not None and rho_top < minimum:
            self.findings.append(Finding(
                "warning", "explanations-disagree",
                "Attributions and permutation importance rank the features differently (Spearman "
                f"{number_text(rho_top)} "
                f"over the top features, below {minimum:g}; top-{top} overlap {overlap:.0%}): explanations of "
                "this model are not consistent, so read either with care. Correlated features, a baseline far "
                "from the data, or interactions can cause this.",
            ))

    def _concentration(self, g: Importance) -> None:
        """Images: how much of the attribution the busiest tenth of the pixels holds."""
        ranked = np.sort(g.share)[::-1]
        tenth = max(1, ranked.size // 10)
        self.metrics["top_tenth_share"] = Metric(
            float(ranked[:tenth].sum()), "Share of the top 10% of inputs", direction="none",
            description=f"Share of the total mean |attribution| held by the {tenth:,} most important of the "
            f"{ranked.size:,} inputs (pixels x channels): 0.1 if the model looks everywhere alike, near 1 if "
            "it looks at a small region.",
        )


    def _sensitive(self, g: Importance) -> None:
        """A sensitive column fed to the model among its top features is worth a reviewer's look."""
        if self.layout.kind != "tabular":
            return
        top = min(int(self.options["top"]), len(self.layout.names))
        rank = {int(j): r for r, j in enumerate(g.order, start=1)}
        for column, groups in self.ctx.sensitive.items():
            if not groups.fed_to_model or column not in self.layout.names:
                continue
            j = self.layout.names.index(column)
            if rank[j] <= top:
                self.findings.append(Finding(
                    "warning", "sensitive-feature-drives",
                    f"The sensitive column '{column}' is fed to the model and ranks #{rank[j]} of "
                    f"{len(self.layout.names)} features by attribution ({g.share[j]:.1%} of the total): the "
                    "predictions depend directly on it. See the fairness audit, and whether its use is lawful "
                    "and intended.",
                ))


def _top(values: np.ndarray, k: int, among: np.ndarray | None = None) -> list[int]:
    """The rows of the ``k`` largest ``values`` (only rows where ``among`` is true), largest
    first, ties by row number; a partial sort, not a sort of every row."""
    rows = np.flatnonzero(among) if among is not None else np.arange(values.size)
    chosen = values[rows]
    if rows.size > k:
        kth = np.partition(chosen, rows.size - k)[rows.size - k]
        keep = chosen >= kth
        rows, chosen = rows[keep], chosen[keep]
    return [int(r) for r in rows[np.lexsort((rows, -chosen))][:k]]
