"""Imported by the forkserver only: preloads what every contained run needs."""

from auditor.contain.server import preload

preload()
