"""The built-in calibration audit: see :mod:`.audit` (registered in pyproject.toml like any plugin)."""
