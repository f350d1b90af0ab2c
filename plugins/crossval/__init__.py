"""The built-in crossval audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
