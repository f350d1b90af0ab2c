"""Statistics two or more audits share: metric kernels with confidence intervals
(:mod:`.metrics`), vectorised bootstrap (:mod:`.bootstrap`) and per-fold metrics computed in
one pass (:mod:`.fold_metrics`). NumPy only: no torch, no scikit-learn."""
