"""The house's walls, checked on the source with the ``ast`` module (never by grepping text):

(a) no module under ``auditor/`` imports ``auditor_plugins``: the core never reaches into a
    built-in audit;
(b) no module under ``auditor/`` compares a built-in audit's name (``== "carbon"``,
    ``in ("metrics", ...)``) or looks an audit up by it (``audits["metrics"]``,
    ``options.get("carbon")``): built-ins get no private path;
(c) no built-in audit imports another one: what they share lives in the core
    (:mod:`auditor.contract.vocabulary`, :mod:`auditor.stats`);
(d) no module is over 600 lines unless its docstring has a line starting "One concept:"
    that says why it cannot be split.

The built-in audits' names are read from pyproject.toml's entry points, so a new built-in is
covered without editing this file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import tomllib

from auditor.contract.result import AuditResult

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "auditor"
PLUGINS = ROOT / "plugins"
MAX_LINES = 600

BUILTIN: frozenset[str] = frozenset(
    tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]["auditor.audits"]
)
#: Keys of a serialised audit result: "metrics" is both a built-in audit and a result's field,
#: so a lookup of such a key counts only on a mapping of audits (see _by_audit_name).
RESULT_FIELDS: frozenset[str] = frozenset(AuditResult(audit="a", title="t", status="pass", summary="").to_dict())
#: Names of mappings keyed by audit name: audits, all_audits(...), results, measurements,
#: installed, selected, options (per audit), overrides, broken, plugins.
AUDIT_MAPS = re.compile(r"(^|_)(audits|results|measurements|installed|selected|options|overrides|broken|plugins)$")
LOOKUPS = ("get", "pop", "setdefault", "__contains__", "__getitem__")


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}: {ast.unparse(node)[:120]}"


# --- the checks, as functions of a syntax tree ----------------------------------------------------

def imported_modules(tree: ast.AST, package: str | None = None) -> list[tuple[ast.AST, str]]:
    """Every module a tree imports, absolute: ``import x``, ``from x import y``, relative
    imports resolved against ``package``, and ``importlib.import_module("x")`` /
    ``__import__("x")`` with a literal name."""
    found: list[tuple[ast.AST, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and package is not None:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.append((node, name))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node, node.args[0].value))
    return found


def _identifier(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _identifier(node.func)
    return ""


def _is_audit_map(node: ast.AST) -> bool:
    """Whether an expression reads as a mapping keyed by audit name (``audits``,
    ``all_audits(report)``, ``report["measurements"]``, ``options``...)."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return node.slice.value in ("audits", "measurements")
    return bool(AUDIT_MAPS.search(_identifier(node)))


def _names_in(node: ast.AST) -> list[str]:
    """Built-in audit names written as literals in a comparison operand (a tuple or set of
    them counts too)."""
    parts = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [p.value for p in parts if isinstance(p, ast.Constant) and p.value in BUILTIN]


def by_audit_name(tree: ast.AST) -> list[ast.AST]:
    """Nodes that compare a built-in audit's name or look an audit up by it."""
    hits: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(_names_in(part) for part in [node.left, *node.comparators]):
                hits.append(node)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
            if key in BUILTIN and (key not in RESULT_FIELDS or _is_audit_map(node.value)):
                hits.append(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOOKUPS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and first.value in BUILTIN:
                if first.value not in RESULT_FIELDS or _is_audit_map(node.func.value):
                    hits.append(node)
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            if _names_in(node.pattern.value):
                hits.append(node.pattern)
    return hits


def one_concept(tree: ast.Module) -> bool:
    doc = ast.get_docstring(tree) or ""
    return any(line.strip().startswith("One concept:") for line in doc.splitlines())


# --- the checks on this repository ---------------------------------------------------------------

def test_the_built_in_audits_are_known():
    assert {"metrics", "fairness", "carbon"} <= BUILTIN and "metrics" in RESULT_FIELDS


def test_a_no_core_module_imports_a_built_in_audit():
    found = [where(path, node) for path in modules(CORE) for node, name in imported_modules(parse(path))
             if name == "auditor_plugins" or name.startswith("auditor_plugins.")]
    assert found == [], "core modules import auditor_plugins:\n" + "\n".join(found)


def test_b_no_core_module_compares_or_looks_up_a_built_in_audit_name():
    found = [where(path, node) for path in modules(CORE) for node in by_audit_name(parse(path))]
    assert found == [], "core modules name built-in audits:\n" + "\n".join(found)


def test_c_no_built_in_audit_imports_another():
    found = []
    for folder in sorted(p for p in PLUGINS.iterdir() if (p / "__init__.py").is_file()):
        own = f"auditor_plugins.{folder.name}"
        for path in modules(folder):
            package = ".".join([own, *path.relative_to(folder).parent.parts])
            for node, name in imported_modules(parse(path), package):
                if name.startswith("auditor_plugins") and name != own and not name.startswith(own + "."):
                    found.append(where(path, node))
    assert found == [], "built-in audits import each other:\n" + "\n".join(found)


def test_d_no_module_is_over_600_lines_unless_it_says_why_it_is_one_concept():
    found = []
    for path in [*modules(CORE), *modules(PLUGINS)]:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and not one_concept(parse(path)):
            found.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert found == [], (f"modules over {MAX_LINES} lines whose docstring has no 'One concept:' line:\n"
                         + "\n".join(found))


# --- the checkers themselves: they catch what they must, and only that ----------------------------

@pytest.mark.parametrize("source", [
    'if audit == "carbon": pass',
    'if "carbon" != name: pass',
    'if name in ("metrics", "fairness"): pass',
    'if name not in {"crossval"}: pass',
    'x = audits["metrics"]',
    'x = report["audits"]["metrics"]["metrics"]',
    'x = report["measurements"]["carbon"]',
    'x = all_audits(report)["metrics"]',
    'x = options.get("carbon", {})',
    'x = results["fairness"].status',
    'x = anything["explain"]',
    'x = found.pop("privacy")',
    'match name:\n    case "overfitting": pass',
])
def test_the_audit_name_checker_catches(source):
    assert by_audit_name(ast.parse(source)), source


@pytest.mark.parametrize("source", [
    'x = result["metrics"]',  # a result's metrics field, not the metrics audit
    'x = found.get("metrics") or {}',
    'x = audit.get("metrics")',
    'x = all_audits(report)[audit]["metrics"]',
    'if key == "roc_auc": pass',
    'x = {"metrics": 1}',
])
def test_the_audit_name_checker_lets_pass(source):
    assert not by_audit_name(ast.parse(source)), source


def test_the_import_checker_resolves_relative_and_dynamic_imports():
    tree = ast.parse("from ..metrics.audit import HEADLINES\nfrom . import stats\n"
                     "import importlib\nimportlib.import_module('auditor_plugins.carbon.grid')\n")
    names = [name for _, name in imported_modules(tree, "auditor_plugins.crossval")]
    assert names == ["auditor_plugins.metrics.audit", "auditor_plugins.crossval", "importlib",
                     "auditor_plugins.carbon.grid"]


def test_one_concept_is_read_from_the_docstring():
    assert one_concept(ast.parse('"""Title.\n\nOne concept: the report\'s tables, split apart they lose sense."""'))
    assert not one_concept(ast.parse('"""Title. One concept: not at the start of a line."""\n# One concept: a comment'))


def test_every_package_of_the_source_tree_is_in_the_wheel():
    """pyproject.toml lists the packages by name: a new sub-package missing from the list
    would work in an editable install and be absent from the wheel users install."""
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "auditor").rglob("__init__.py")}
    found |= {"auditor_plugins" + "".join("." + part for part in p.parent.relative_to(root / "plugins").parts)
              for p in (root / "plugins").rglob("__init__.py")}
    assert found - listed == set(), "add them to [tool.setuptools] packages"
