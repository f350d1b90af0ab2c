"""The explain audit's run for a text model (token ids from ``--text``): occlusion per token
(:mod:`auditor_plugins.explain.tokens`), the tokens that move the output, the deletion check
and the individual explanations as highlighted text (:mod:`auditor_plugins.explain.token_views`);
the repeatability check and the sample as for other inputs (:class:`ExplainRun`)."""

from __future__ import annotations

import numpy as np

from auditor.contract.result import AuditResult, Finding, Metric, status_from_findings
from auditor.run.seeding import seeded
from auditor_plugins.explain import token_views
from auditor_plugins.explain.audit import ExplainAudit, ExplainRun
from auditor_plugins.explain.present import number_text
from auditor_plugins.explain.tokens import (
    DELETED,
    MIN_OCCURRENCES,
    TOKEN_SAMPLES,
    Deletion,
    TokenImportance,
    deletion_check,
    occlusion,
    token_importance,
)

#: Texts the deletion check needs before it can raise a finding.
MIN_JUDGED_TEXTS = 30


class TokenRun(ExplainRun):
    """A model that takes token ids from a text column: occlusion per token
    (:mod:`auditor_plugins.explain.tokens`), the tokens that move the output, a deletion check
    and the examples as highlighted text; the repeatability check as for other inputs."""

    def sample_size(self) -> int:
        return min(int(self.options["samples"]), TOKEN_SAMPLES)

    def result(self) -> AuditResult:
        from auditor_plugins.explain import attribution
        from auditor_plugins.explain.attribution import Explained

        ctx, options, text = self.ctx, self.options, self.ctx.text
        assert text is not None
        examples = self._examples()
        sampled = set(self.sample.tolist())
        extra = np.array([row for _, row in examples if row not in sampled], dtype=np.int64)
        rows = np.concatenate([self.sample, extra])
        ids = np.rint(self.X[rows]).astype(np.int64)
        batch = attribution.batch_rows(self.X.shape[1], self.device, int(options["batch_size"]))
        explained = Explained(ctx.model.module, self.task, None, summed=False, ids=True)
        self._check_repeatable(explained, self.sample, batch)
        with ctx.progress("Explaining: each token replaced by padding", rows.size) as advance, \
                seeded(ctx.seed, self.device):
            found = occlusion(ctx.model.module, self.task, ids, self.targets[rows], self.explained_one_pass[rows],
                              text.pad_id, self.device, batch, on_progress=advance)
        n = self.sample.size
        values = found.values[:n]
        self.notes.append(
            f"Occlusion (captum's Feature Ablation): a token's attribution is the change in {self.output_name} "
            f"when it is replaced by the padding id ({text.pad_id}), one token at a time; gradients do not flow "
            f"through token ids. Sample: {n:,} of {ctx.data.n_rows:,} texts of '{text.column}', stratified by "
            f"{'class' if self.task.is_classification else 'decile of the target'} (seed {ctx.seed}; at most "
            f"{TOKEN_SAMPLES:,}: each text costs a forward pass per token); {found.passes:,} rows were run "
            "through the model for it."
        )
        g = token_importance(ids[:n], values, text.pad_id, len(text.vocabulary))
        targets = self.targets[self.sample]

        def explained_of(rows_ids: np.ndarray, rows_targets: np.ndarray) -> np.ndarray:
            out = attribution.explained_outputs(explained, rows_ids.astype(np.float32), self.device, batch)
            return np.take_along_axis(out, rows_targets[:, None], 1)[:, 0]

        deletion = deletion_check(explained_of, ids[:n], values, found.outputs[:n], targets, text.pad_id, ctx.seed)
        top = int(options["top"])
        token_views.importance_views(self, g, text, top)
        position = {int(r): i for i, r in enumerate(rows)}
        token_views.examples_views(self, found, ids, position, examples, text)
        self._token_metrics(g, deletion)
        return AuditResult(
            audit="explain",
            title=ExplainAudit.title,
            status=status_from_findings(self.findings),
            summary=token_views.summary_sentence(self, g, text, deletion),
            metrics=self.metrics,
            findings=self.findings,
            tables=self.tables,
            charts=self.charts,
            notes=self.notes,
            options=dict(self.options),
        )

    def _token_metrics(self, g: TokenImportance, deletion: Deletion) -> None:
        units = "probability" if self.task.is_classification else "prediction units"
        first = g.order[0] if g.order.size else None
        self.metrics["top_token_share"] = Metric(
            None if first is None else float(g.share[first]), "Share of the top token", direction="none",
            headline=True,
            description=f"The most important token's share of the total |attribution| (tokens occurring at least "
            f"{MIN_OCCURRENCES} times): near 1, one token decides nearly everything.",
        )
        self.metrics["deletion_drop_top"] = Metric(
            deletion.top, f"Drop when the top {DELETED} tokens are padded", direction="none",
            description=f"Mean drop in the explained output ({units}) when each text's {DELETED} tokens of largest "
            f"attribution are replaced by padding together, over the {deletion.rows:,} sample texts of at least "
            f"{2 * DELETED} tokens.",
        )
        self.metrics["deletion_drop_random"] = Metric(
            deletion.random, f"Drop when {DELETED} random tokens are padded", direction="none",
            description=f"The same for {DELETED} tokens of each text chosen at random (seeded): what the top tokens' "
            "drop is compared with.",
        )
        if deletion.top is None or deletion.random is None:
            self.notes.append(f"The deletion check needs texts of at least {2 * DELETED} tokens; the sample has none.")
        elif deletion.rows < MIN_JUDGED_TEXTS:
            self.notes.append(f"The deletion check is shown but not judged on {deletion.rows} texts (fewer than "
                              f"{MIN_JUDGED_TEXTS}): one random draw of tokens per text is too noisy on so few.")
        elif deletion.top <= deletion.random:
            self.findings.append(Finding(
                "warning", "attributions-not-faithful",
                f"Padding each text's {DELETED} tokens of largest attribution lowers {self.output_name} by "
                f"{number_text(deletion.top)} on average, no more than padding {DELETED} random tokens "
                f"({number_text(deletion.random)}), over {deletion.rows:,} texts: one token at a time does not "
                "explain this model (tokens act together, or padding is not neutral to it). Read the token "
                "attributions with care.",
            ))
