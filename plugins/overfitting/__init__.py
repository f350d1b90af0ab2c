"""The built-in overfitting audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
