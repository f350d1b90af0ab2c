"""What a compiled model program calls, read from the file without running any of it.

Two formats carry a program that auditor runs, and both carry more code than their operators:

* A **TorchScript archive** (``torch.jit.save``) holds its compiled code as Python-syntax text
  under ``<root>/code/`` (``.py`` members), which torch compiles again at load. Here it is
  parsed with :mod:`ast`, never executed, and every name it uses is resolved the way torch's
  importer resolves it: ``torch.add`` (and ``torch.autograd.add``) is ``aten::add``,
  ``ops.ns.op`` is ``ns::op``, ``print`` is ``prim::Print``, ``id`` is ``prim::id``, and
  ``__torch__.torch.classes.ns.Class`` is a custom (torchbind) class. A ``__setstate__``
  method is refused wherever it is defined: torch runs it while loading the file, before
  anything could check what it computes. Code that does not parse is refused (torch would
  not load it either); so is the pre-1.4 format (a root ``model.json``), whose code this
  check cannot find. torch finds members without regard to case and a zip may hold one
  name twice, so every member whose name could be code is read.
* A **torch.export program** (``.pt2``) holds its graph as JSON (``<root>/models/*.json``):
  every node's ``target`` (``"torch.ops.aten.add.Tensor"``, ``"_operator.getitem"``) and every
  operator passed as an argument (``as_operator``), in nested graphs too (``torch.cond``
  branches). Besides its operators, torch runs parts of that JSON as Python: ``guards_code``
  is ``exec``'d when the program is first called, each ``expr_str`` goes to
  ``sympy.sympify`` (which ``eval``\\ s) at load, value and argument names become Python source
  (FX code generation, also at load), and the input/output tree specs can import modules.
  Each is held to the shape torch itself writes: names are identifiers, expressions are
  sympy constructors of symbols and numbers, guards compare input sizes.

**Allow-list, not deny-list.** A deny-list names what is known to be harmful and passes the
rest; torch 2.13 registers 4,374 operator schemas in 27 namespaces (among them
``debugprims::load_tensor``, ``mkldnn::data_ptr``, ``inductor::_reinterpret_tensor``), every
release adds more, and any library can register its own: a forgotten name is a hole. So an
operator passes only if

1. its namespace is one torch emits for ordinary models (:data:`NAMESPACES`: ``aten`` and
   ``prim``, and ``quantized``, torch's own quantized kernels), and
2. torch knows it (its registry, ``torch._C._jit_get_schemas_for_operator``): a name torch
   does not know could not load, and saying so is clearer than torch's error, and
3. it is not one of the operators in those namespaces that act outside tensors
   (:data:`REFUSED`: files, the terminal, the network, Python, raw memory, the process's random
   state), nor takes a ``str`` argument named like a file (``filename``, ``path``), a rule that
   catches such an operator if torch adds one.

A per-operator allow-list of the thousands of "pure" operators was the alternative: stronger
on paper, but it breaks ordinary models whenever torch adds or renames an overload, and
reviewing it is harder than reviewing the short list in 3. Custom operator namespaces
(``torch.library``) and custom classes are refused: their code is native code from outside
torch. The exceptions are torch's own packed parameters of quantized layers (:data:`CLASSES`),
which a quantized model needs.

``aten::warn`` passes (torch's own ``nn`` code calls it): a warning's text, like anything a
model prints, goes to the confined run's log, not to the terminal.

This is the second wall: a model's code also runs under operating-system confinement
(:mod:`auditor.contain`). ``--trust-model`` skips this check; it does not turn the confinement
off.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from auditor.loading.sniff import shown

#: Operator namespaces a program may call (see the module docstring).
NAMESPACES = frozenset({"aten", "prim", "quantized"})
#: Custom (torchbind) classes a program may use: torch's own packed parameters of quantized
#: layers (their native ``__setstate__`` is part of torch).
CLASSES = frozenset({
    "quantized.LinearPackedParamsBase", "quantized.Conv2dPackedParamsBase",
    "quantized.Conv3dPackedParamsBase", "quantized.EmbeddingPackedParamsBase", "rnn.CellParamsBase",
})
_CUSTOM_CLASS = "is a custom class: native code from outside torch"

_FILES = "reads or writes files"
_TERMINAL = "prints to the terminal"
_RPC = "calls other processes over the network (torch.distributed.rpc)"
_PYTHON = "calls Python code"
_UNCHECKED = "reads and writes memory without bounds checks"
_SPARSE = "builds a sparse tensor without checking its indices (out-of-bounds memory access)"
_NESTED = "views memory at offsets it does not check"
_SEED = "changes the process's random number state"

#: Operators in :data:`NAMESPACES` that act outside tensors, and what each does.
REFUSED: dict[str, str] = {
    "aten::save": "writes files",
    "aten::from_file": "reads files, and with shared=True writes them",
    "aten::_print": _TERMINAL,
    "prim::Print": _TERMINAL,
    "prim::rpc_async": _RPC,
    "prim::rpc_sync": _RPC,
    "prim::rpc_remote": _RPC,
    "prim::PythonOp": _PYTHON,
    "prim::IgnoredPythonOp": _PYTHON,
    "prim::id": "reads an object's memory address",
    "aten::manual_seed": _SEED,
    "aten::seed": _SEED,
    "aten::_unsafe_index": _UNCHECKED,
    "aten::_unsafe_index_put": _UNCHECKED,
    "aten::_unsafe_masked_index": _UNCHECKED,
    "aten::_unsafe_masked_index_put_accumulate": _UNCHECKED,
    "aten::_sparse_coo_tensor_unsafe": _SPARSE,
    "aten::_sparse_compressed_tensor_unsafe": _SPARSE,
    "aten::_sparse_csr_tensor_unsafe": _SPARSE,
    "aten::_sparse_csc_tensor_unsafe": _SPARSE,
    "aten::_sparse_bsr_tensor_unsafe": _SPARSE,
    "aten::_sparse_bsc_tensor_unsafe": _SPARSE,
    "aten::_nested_view_from_buffer": _NESTED,
    "aten::_nested_view_from_buffer_copy": _NESTED,
    "aten::_nested_view_from_jagged": _NESTED,
    "aten::_nested_view_from_jagged_copy": _NESTED,
}

# A str argument with one of these names is a file (aten::save's and aten::from_file's).
_FILE_ARGUMENTS = frozenset({"filename", "file", "path", "filepath", "url"})


@dataclass(frozen=True)
class Finding:
    """One thing a program does that the check refuses: ``what`` (an operator such as
    ``aten::save``, or a construct such as ``__setstate__``), ``why`` (what it does), and
    ``where`` (the archive member it is in)."""

    what: str
    why: str
    where: str


class UnreadableProgram(ValueError):
    """A program's code or graph cannot be parsed (the file is damaged, or not torch's)."""


@functools.lru_cache(maxsize=4096)
def operator_verdict(op: str) -> str | None:
    """Why the operator ``ns::name`` is refused, or None when a program may call it."""
    import torch

    if op in REFUSED:
        return REFUSED[op]
    namespace = op.partition("::")[0]
    if namespace not in NAMESPACES:
        return (f"is in the namespace {namespace!r}, not one auditor runs "
                f"({', '.join(sorted(NAMESPACES))}): a custom operator is native code from outside torch")
    schemas = torch._C._jit_get_schemas_for_operator(op)  # torch's registry of operators
    if not schemas:
        return "is not an operator this torch knows"
    for schema in schemas:
        if any(a.name in _FILE_ARGUMENTS and str(a.type).startswith("str") for a in schema.arguments):
            return _FILES
    return None


# --- TorchScript code -------------------------------------------------------------------------

# Names torch's TorchScript importer binds besides the builtins; a bare reference to one of
# the first three (``f = ops.aten``, ``getattr(torch, "save")``) is a way around naming an
# operator, and is refused.
_NAMESPACE_ROOTS = frozenset({"torch", "ops", "__torch__"})
_BUILTIN_OPERATORS = {"print": "prim::Print", "id": "prim::id"}


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None when the chain does not start at a name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


class _CodeReader(ast.NodeVisitor):
    """Collects what one TorchScript code member refers to (see the module docstring)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.findings: list[Finding] = []
        self.bound: list[set[str]] = [set()]  # names bound in each enclosing function

    def _refuse(self, what: str, why: str) -> None:
        self.findings.append(Finding(what, why, self.where))

    def _operator(self, op: str) -> None:
        why = operator_verdict(op)
        if why:
            self._refuse(op, why)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name == "__setstate__":
            self._refuse("__setstate__", "is a method torch runs while loading the file")
        args = node.args
        names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        self.bound.append(names)  # a typed parameter cannot hold a namespace or a builtin
        self.generic_visit(node)
        self.bound.pop()

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            if node.id in _NAMESPACE_ROOTS or node.id in _BUILTIN_OPERATORS:
                self._refuse(node.id, "is assigned to, which hides what the code calls")
            return
        if node.id in self.bound[-1]:
            return
        if node.id in _BUILTIN_OPERATORS:
            self._operator(_BUILTIN_OPERATORS[node.id])
        elif node.id in _NAMESPACE_ROOTS:
            self._refuse(node.id, "is used as a value, a way to call operators without naming them")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts = _dotted(node)
        if parts is None or parts[0] not in _NAMESPACE_ROOTS or parts[0] in self.bound[-1]:
            self.generic_visit(node)
            return
        root, rest = parts[0], parts[1:]
        dotted = ".".join(parts)
        if root == "torch":  # torch.X and torch.autograd.X are aten::X
            if rest[0] == "autograd" and len(rest) > 1:
                rest = rest[1:]
            if len(rest) == 1:
                self._operator(f"aten::{rest[0]}")
            else:
                self._refuse(dotted, "does not name an operator torch's importer resolves")
        elif root == "ops":  # ops.ns.op is ns::op
            if len(rest) == 2:
                self._operator(f"{rest[0]}::{rest[1]}")
            else:
                self._refuse(dotted, "does not name one operator")
        elif rest[:2] == ["torch", "classes"]:  # __torch__.torch.classes.ns.Class
            if ".".join(rest[2:]) not in CLASSES:
                self._refuse(".".join(rest), _CUSTOM_CLASS)


def is_code_member(name: str) -> bool:
    """True for a member of a TorchScript archive that holds code. torch finds its records
    with miniz, which compares names without regard to case, so neither does this."""
    lowered = name.lower()
    return lowered.split("/", 1)[-1].startswith("code/") and lowered.endswith(".py")


def is_legacy_torchscript(names: Iterable[str]) -> bool:
    """True for the pre-1.4 TorchScript format (a root ``model.json`` naming its code files),
    which torch may still load and whose code this check does not locate."""
    return any(name.count("/") == 1 and name.lower().endswith("/model.json") for name in names)


def torchscript_findings(member: str, source: bytes) -> list[Finding]:
    """What the TorchScript code in ``source`` (the archive member ``member``) refers to that
    the policy refuses; :class:`UnreadableProgram` when it is not parseable code."""
    try:
        tree = ast.parse(source.decode("utf-8"), filename=member)
    except (UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise UnreadableProgram(f"{type(exc).__name__}") from None
    reader = _CodeReader(member.split("/", 1)[-1])
    try:
        reader.visit(tree)
    except RecursionError:
        raise UnreadableProgram("nested too deeply") from None
    return reader.findings


def pickled_classes(globals_: Iterable[str], where: str) -> list[Finding]:
    """Custom classes a TorchScript pickle (``data.pkl``, ``constants.pkl``) instantiates:
    torch runs their native ``__setstate__`` while loading."""
    prefix = "__torch__.torch.classes."
    return [
        Finding(name.removeprefix("__torch__."), _CUSTOM_CLASS, where)
        for name in dict.fromkeys(globals_)
        if name.startswith(prefix) and name.removeprefix(prefix) not in CLASSES
    ]


# --- torch.export graphs ----------------------------------------------------------------------

# Higher-order operators that only structure a graph (control flow, grad mode, subgraphs) or
# apply an operator passed to them, which is checked in turn.
_HIGHER_ORDER = frozenset({
    "cond", "while_loop", "while_loop_stack_output", "map_impl", "scan", "associative_scan",
    "wrap_with_set_grad_enabled", "wrap_with_autocast", "invoke_subgraph", "auto_functionalized",
    "auto_functionalized_v2", "with_effects", "flex_attention", "hints_wrapper",
})
# Python functions an exported graph calls on sizes (torch's serializer writes these).
_OPERATOR_MODULE = frozenset({
    "getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs",
    "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "invert", "lshift", "rshift",
})
_SYM_FUNCTIONS = frozenset({
    "sym_not", "sym_int", "sym_float", "sym_ite", "sym_max", "sym_min", "sym_sqrt", "sym_sum",
    "_sym_sqrt",
})
_MATH = frozenset(n for n in dir(math) if not n.startswith("_") and callable(getattr(math, n)))


def export_target_verdict(target: str) -> tuple[str, str | None]:
    """An exported graph's node target as an operator name, and why it is refused (None when
    allowed). Anything but torch's own operators, a few structural higher-order operators and
    arithmetic on sizes is refused: torch resolves any ``torch.<attribute>``, ``torch.os.system``
    included."""
    parts = target.split(".")
    if parts[:2] == ["torch", "ops"] and len(parts) == 4 and parts[2] == "higher_order":
        op = f"higher_order::{parts[3]}"
        return op, None if parts[3] in _HIGHER_ORDER else "is a higher-order operator auditor does not run"
    if parts[:2] == ["torch", "ops"] and len(parts) == 5:
        op = f"{parts[2]}::{parts[3]}"
        return op, operator_verdict(op)
    if len(parts) == 2 and (
        (parts[0] == "_operator" and parts[1] in _OPERATOR_MODULE)
        or (parts[0] == "math" and parts[1] in _MATH)
        or (parts[0] == "torch" and parts[1] in _SYM_FUNCTIONS)
    ):
        return target, None
    return target, "is not an operator: torch would call this Python object"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# One part of a module path ("net.0.weight", "blocks.my-layer"): no quotes, backslashes,
# spaces or control characters, the characters that could end a string in generated code.
_PATH_PART = re.compile(r"[^\s\"'\\\x00-\x1f\x7f]+\Z")
_SAFE_STRING = re.compile(r"[A-Za-z0-9_.+\-]*\Z")

# Keys whose string values torch writes into Python source it generates and runs.
_NAME_KEYS = frozenset({"name", "as_name", "user_input_name"})
_PATH_KEYS = frozenset({"parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "fqn"})
_VALUE_TABLES = ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values")

_SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan",
    "StrictGreaterThan", "LessThan", "GreaterThan", "And", "Or", "Not", "Piecewise",
    "ExprCondPair", "floor", "ceiling", "IntInfinity", "NegativeIntInfinity",
    # torch.utils._sympy.functions, as torch's deserializer names them
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt",
    "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
    "RoundDecimal", "ToFloat", "Identity",
})
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub,
               ast.UAdd, ast.Not, ast.Invert, ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift,
               ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_GUARD_FUNCTIONS = frozenset({"len", "abs", "min", "max", "int", "float", "bool",
                              "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless"})
_MAX_EXPRESSION = 10_000
_GENERATED = "is written into Python source that torch generates and runs"


def _constant_ok(node: ast.Constant) -> bool:
    value = node.value
    if isinstance(value, str):
        return bool(_SAFE_STRING.match(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) < 2**64
    return value is None or isinstance(value, (bool, float))


def _expression(text: str) -> ast.Expression | None:
    if len(text) > _MAX_EXPRESSION:
        return None
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _sympy_ok(text: str) -> bool:
    """True when ``text`` is what torch writes for a symbolic size (``sympy.srepr``): calls of
    sympy and torch expression classes on symbols, numbers and keyword flags."""
    tree = _expression(text)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS):
                return False
        elif isinstance(node, ast.Name):
            if node.id.startswith("_") or not isinstance(node.ctx, ast.Load):
                return False
        elif isinstance(node, ast.Constant):
            if not _constant_ok(node):
                return False
        elif isinstance(node, ast.keyword):
            if node.arg is None:
                return False
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Tuple,
                                   ast.List, ast.Load, *_ARITHMETIC)):
            return False
    return True


def _guard_ok(text: str) -> bool:
    """True when ``text`` is a guard as torch writes one: comparisons and arithmetic on the
    sizes of the inputs (``L['x'].size()[0] == L['y'].size()[0]``) and on numbers."""
    tree = _expression(text)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            method = isinstance(func, ast.Attribute) and func.attr in _GUARD_METHODS
            maths = isinstance(func, ast.Attribute) and _dotted(func) == ["math", func.attr] and func.attr in _MATH
            named = isinstance(func, ast.Name) and func.id in _GUARD_FUNCTIONS
            if not (method or maths or named) or node.keywords:
                return False
        elif isinstance(node, ast.Attribute):
            if not (node.attr in _GUARD_METHODS or _dotted(node) == ["math", node.attr]):
                return False
        elif isinstance(node, ast.Name):
            if node.id not in {"L", "math", "inf"} | _GUARD_FUNCTIONS:
                return False
        elif isinstance(node, ast.Constant):
            if not _constant_ok(node):
                return False
        elif not isinstance(node, (ast.Expression, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp,
                                   ast.Subscript, ast.Load, *_ARITHMETIC)):
            return False
    return True


# Tree-spec node types torch writes for a model's inputs and outputs; others import code
# (``collections.defaultdict`` imports its factory's module, enum contexts import theirs).
_TREE_TYPES = frozenset({
    None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict",
    "collections.namedtuple", "collections.deque", "torch.Size",
    "torch.fx.immutable_collections.immutable_list", "torch.fx.immutable_collections.immutable_dict",
})


def _treespec_ok(text: str) -> bool:
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError):
        return False
    pending = [spec]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if "type" in item and item["type"] not in _TREE_TYPES:
                return False
            if "__enum__" in item:
                return False
            context = item.get("context")
            if isinstance(context, str) and "__enum__" in context:
                return False
            pending.extend(item.values())
    return True


def export_findings(program: Any, where: str) -> list[Finding]:
    """What the torch.export program JSON ``program`` (member ``where``) calls or carries that
    the policy refuses, nested graphs included."""
    found: list[Finding] = []

    def refuse(what: str, why: str) -> None:
        found.append(Finding(what, why, where))

    def operator(target: Any) -> None:
        if not isinstance(target, str):
            refuse("a node target", "is not an operator name")
            return
        op, why = export_target_verdict(target)
        if why:
            refuse(op, why)

    def name(key: str, value: Any) -> None:
        if not isinstance(value, str):
            return
        if key in _NAME_KEYS and value and not _IDENTIFIER.match(value):
            refuse(f"{'an' if key[0] in 'aeiou' else 'a'} {key} that is not an identifier", _GENERATED)
        elif key in _PATH_KEYS and value and not all(_PATH_PART.match(p) for p in value.split(".")):
            refuse(f"{'an' if key[0] in 'aeiou' else 'a'} {key} with quotes, spaces or control characters", _GENERATED)

    if isinstance(program, dict):
        for guard in program.get("guards_code") or []:
            if not isinstance(guard, str) or not _guard_ok(guard):
                refuse("guards_code", "holds Python that is not a check of input sizes, and torch runs it")
                break
    pending: list[Any] = [program]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        if "target" in item and "inputs" in item and "outputs" in item:
            operator(item["target"])
        for key, value in item.items():
            if key == "as_operator":
                operator(value)
            elif key == "expr_str" and not (isinstance(value, str) and _sympy_ok(value)):
                refuse("expr_str", "is not a symbolic size expression, and torch evaluates it as Python")
            elif key in ("in_spec", "out_spec") and not (isinstance(value, str) and _treespec_ok(value)):
                refuse(key, "describes inputs or outputs with types torch would import")
            elif key in ("as_custom_obj", "custom_obj"):
                refuse("a custom class object", "is native code from outside torch")
            elif key == "forward_arg_names" and isinstance(value, list):
                for arg in value:
                    name("name", arg)
            elif key in _VALUE_TABLES and isinstance(value, dict):
                for value_name in value:
                    name("name", value_name)
            elif key == "inputs" and isinstance(value, list) and "nodes" in item:
                for graph_input in value:  # string inputs become Python source in the guards
                    text = graph_input.get("as_string") if isinstance(graph_input, dict) else None
                    if isinstance(text, str) and not _SAFE_STRING.match(text):
                        refuse("a string input with quotes or control characters", _GENERATED)
            else:
                name(key, value)
            if isinstance(value, (dict, list)):
                pending.append(value)
    return found


def describe(findings: list[Finding], limit: int = 3) -> str:
    """The findings as one clause, names cleaned for a terminal:
    ``aten::save, which writes files (code/__torch__.py); ...``."""
    unique = list(dict.fromkeys((f.what, f.why) for f in findings))
    where = {f.what: f.where for f in reversed(findings)}
    parts = [f"{shown(what, 80)}, which {shown(why, 160)} ({shown(where[what], 80)})" for what, why in unique[:limit]]
    more = f"; and {len(unique) - limit} more" if len(unique) > limit else ""
    return "; ".join(parts) + more
