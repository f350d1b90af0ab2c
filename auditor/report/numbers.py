"""How values look when displayed: numbers, intervals, sizes, durations and safe text.

The report document keeps full precision; rounding happens only here, at display time,
so every renderer shows the same figure the same way.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

#: Shown wherever a value is undefined (None): an empty cell would look like a bug.
MISSING = "—"

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional overrides and
# isolates that can make text display in a different order from the one it is stored in.
_UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control picture" of the character, e.g. ␛
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def clean_text(text: str) -> str:
    """Replace control characters with visible stand-ins, so data cannot drive a terminal,
    corrupt a document or reorder what a reader sees. Tabs and newlines are kept."""
    return _UNSAFE_CHARS.sub(_visible, text)


_LINE_BREAKING = {"\n": "\u240a", "\t": " ", "\u2028": "\ufffd", "\u2029": "\ufffd"}
_LINE_BREAKING_CHARS = re.compile("[\n\t\u2028\u2029]")


def one_line(text: Any) -> str:
    """:func:`clean_text` for a terminal or a CI log: newlines too become a visible stand-in
    (``␊``), tabs a space, so one message is one line and a name cannot start a line of its
    own (where a CI runner would read ``::warning ...`` as a command)."""
    return _LINE_BREAKING_CHARS.sub(lambda m: _LINE_BREAKING[m.group()], clean_text(str(text)))


_COLONS = re.compile(":(?=:)")


def log_safe(text: Any) -> str:
    """:func:`one_line`, and ``::`` split by an invisible zero-width space: text that a table
    wraps onto a line of its own cannot begin that line with a GitHub Actions command."""
    return _COLONS.sub(":\u200b", one_line(text))


def folder_name(stem: str, default: str = "model") -> str:
    """A report folder's name from a file's stem: no control characters or separators, no
    leading dots (so never ``.``, ``..`` or hidden), never empty (``default`` instead)."""
    name = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069/\\]", "_", stem)
    name = name.strip().lstrip(".").strip()
    return name or default


def clean_strings(value: Any, clean: Callable[[str], str] = clean_text) -> Any:
    """A copy of a JSON-like value with ``clean`` (:func:`clean_text`) applied to every
    string, dictionary keys included."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean_strings(k, clean): clean_strings(v, clean) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_strings(v, clean) for v in value]
    return value


_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB")


def is_number(value: Any) -> bool:
    """True for an int or float (a bool is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_number(value: Any) -> str:
    """A metric value: 3 decimals below 1, 4 significant digits from 1 to 1000, then whole
    numbers with thousands separators; integers are shown as counts."""
    if not is_number(value):
        return MISSING
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return MISSING
    size = abs(value)
    if size == 0:
        return "0.000"
    if size < 0.1:
        return f"{value:.3g}"
    if size < 1:
        return f"{value:.3f}"
    if size < 1000:
        decimals = 3 - int(math.floor(math.log10(size)))
        return f"{value:.{decimals}f}"
    return f"{value:,.0f}"


def format_count(value: Any) -> str:
    """A whole number with thousands separators (``15,060``)."""
    if not is_number(value):
        return MISSING
    return f"{round(value):,}"


def format_share(value: Any) -> str:
    """A fraction shown as a percentage with one decimal (``0.754`` -> ``75.4%``)."""
    if not is_number(value) or not math.isfinite(value):
        return MISSING
    return f"{value * 100:.1f}%"


def format_ci(ci: Sequence[Any] | None) -> str:
    """A confidence interval as ``[low, high]``, or the missing mark when there is none."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or not all(map(is_number, ci)):
        return MISSING
    return f"[{format_number(ci[0])}, {format_number(ci[1])}]"


def format_metric(metric: dict[str, Any]) -> str:
    """A metric's value followed by its interval when it has one (``0.853 [0.841, 0.865]``)."""
    value = format_number(metric.get("value"))
    ci = format_ci(metric.get("ci"))
    return value if ci == MISSING else f"{value} {ci}"


def format_bytes(value: Any) -> str:
    """A file size: exact bytes below 1 KiB, then one decimal in binary units (``1.5 MiB``)."""
    if not is_number(value):
        return MISSING
    if abs(value) < 1024:
        return f"{round(value):,} bytes"
    exponent = min(int(math.log(abs(value), 1024)), len(_BYTE_UNITS))
    return f"{value / 1024**exponent:.1f} {_BYTE_UNITS[exponent - 1]}"


def format_seconds(value: Any) -> str:
    """A duration: milliseconds below a second, then seconds, then minutes and seconds."""
    if not is_number(value) or not math.isfinite(value):
        return MISSING
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s"
    minutes, seconds = divmod(value, 60)
    return f"{minutes:.0f} min {seconds:.0f} s"


def format_cell(value: Any) -> str:
    """Any value found in a table cell or free-form metadata, as display text."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_number(value):
        return format_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(format_cell(v) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def join_words(items: Sequence[str], limit: int | None = None) -> str:
    """Items as a sentence list: ``a``, ``a and b``, ``a, b and c``; with ``limit``, at most
    that many, then how many more (``a, b and 3 more``); empty for no items."""
    shown = list(items if limit is None else items[:limit])
    if limit is not None and len(items) > limit:
        return f"{', '.join(shown)} and {len(items) - limit} more"
    if len(shown) <= 1:
        return "".join(shown)
    return f"{', '.join(shown[:-1])} and {shown[-1]}"
