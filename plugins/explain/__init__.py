"""The built-in explain audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
