"""captum's attribution methods, imported without its plotting helpers: ``from
auditor_plugins.explain.captum_attr import attr`` is ``from captum import attr``.

Importing ``captum.attr`` imports its ``visualization`` module, which imports
``matplotlib.pyplot`` and ``IPython.display``: about 0.6 s of the package's 0.85 s on a
2-core machine, on every run that explains, for helpers the audit never calls (it draws its
own charts). Here that one module is imported when something first uses it instead: while
captum imports, a stand-in takes its place in ``sys.modules`` and hands the two functions other
captum modules import from it at import time (``draw_mask_border``, ``draw_mask_legend``) as
wrappers that import the real module when called; afterwards any attribute of the stand-in
imports the real module and is the real attribute, so ``captum.attr.visualization`` works in
full for whoever uses it in this process. Every attribution class is captum's own.

If captum's layout ever differs (no such module, or the import needs more than functions
from it at import time), the stand-in is removed with every captum module the attempt left
and captum is imported the usual way: slower, never different.

Importing this module does the import, so a thread that imports it ahead of use
(:func:`auditor.contain.server.import_later`) and the audit that needs it share one import
under Python's import lock.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from contextlib import contextmanager
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, Callable, Iterator

VISUALIZATION = "captum.attr._utils.visualization"


class _Deferred(types.ModuleType):
    """Stands in for captum's visualization module until something uses it."""

    def __init__(self, spec: ModuleSpec, loader: Loader) -> None:
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__dict__["_auditor_importing"] = True
        self.__dict__["_auditor_loader"] = loader

    def _auditor_real(self) -> types.ModuleType:
        module = sys.modules.get(self.__name__)
        if module is None or module is self:
            spec: ModuleSpec = self.__dict__["__spec__"]
            module = importlib.util.module_from_spec(spec)
            sys.modules[self.__name__] = module
            try:
                self.__dict__["_auditor_loader"].exec_module(module)
            except BaseException:
                sys.modules[self.__name__] = self
                raise
        return module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self.__dict__["_auditor_importing"]:
            return _on_first_call(self, name)
        return getattr(self._auditor_real(), name)


def _on_first_call(stand_in: _Deferred, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(stand_in._auditor_real(), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def _spec() -> ModuleSpec | None:
    """The visualization module's spec, found without importing its packages (finding a
    submodule the usual way imports ``captum.attr``, which imports it)."""
    if "captum" in sys.modules:
        return None
    package = importlib.util.find_spec("captum")
    for folder in (package.submodule_search_locations or []) if package else []:
        path = Path(folder, *VISUALIZATION.split(".")[1:]).with_suffix(".py")
        if path.is_file():
            return importlib.util.spec_from_file_location(VISUALIZATION, path)
    return None


@contextmanager
def _visualization_deferred() -> Iterator[None]:
    spec = _spec()
    if spec is None or spec.loader is None:
        yield
        return
    stand_in = _Deferred(spec, spec.loader)
    sys.modules[VISUALIZATION] = stand_in
    try:
        yield
    finally:
        stand_in.__dict__["_auditor_importing"] = False


def _import() -> types.ModuleType:
    before = {name for name in sys.modules if name == "captum" or name.startswith("captum.")}
    try:
        with _visualization_deferred():
            return importlib.import_module("captum.attr")
    except Exception:  # noqa: BLE001 - a layout this does not know: the usual import below
        for name in [n for n in sys.modules if (n == "captum" or n.startswith("captum.")) and n not in before]:
            del sys.modules[name]
        return importlib.import_module("captum.attr")


attr = _import()
