"""The built-in carbon audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
