"""The built-in fairness audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
