"""auditor: audit a trained PyTorch model for performance, fairness, explainability and cost."""

__version__ = "0.1.0"
