"""The built-in privacy audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
