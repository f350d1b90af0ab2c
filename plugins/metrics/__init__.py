"""The built-in metrics audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
