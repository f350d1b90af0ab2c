"""Imported by the forkserver only: preloads what every contained run needs."""

from .server import preload

preload()
