"""The exceptions auditor raises, and the exit code each one means.

::

    AuditorError                  base; never raised directly
    ├── UsageError                a bad option, config value or command line    exit 2
    ├── DataError                 the data file cannot be audited as given      exit 2
    ├── ModelLoadError            the model file cannot be loaded               exit 2
    │   └── UntrustedModelError   the file is a pickle and --trust-model is off exit 2
    └── PluginError               an installed audit breaks the plugin contract exit 3

Every message says what was expected, what was received, and how to fix it, on one line.
The command line is the one place that turns these into exit codes (see ``auditor.cli``).
"""

from __future__ import annotations


class AuditorError(Exception):
    """Base of every error auditor reports to a user."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class UsageError(AuditorError):
    """An option, config value or argument is wrong."""


class DataError(AuditorError):
    """The data cannot be audited as given (missing column, text, NaN, empty...)."""


class ModelLoadError(AuditorError):
    """The model file cannot be loaded (corrupt, unknown format, wrong class...)."""


class UntrustedModelError(ModelLoadError):
    """The model file would execute code when loaded and the user did not trust it."""


class PluginError(AuditorError):
    """An installed audit does not follow the plugin contract."""

    exit_code = 3
