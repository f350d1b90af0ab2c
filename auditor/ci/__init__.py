"""Gating a merge: policies (:mod:`.policy`), gates and regressions against a baseline
(:mod:`.gates`), report comparison (:mod:`.compare`) and GitHub's step summary and
annotations (:mod:`.github`)."""
