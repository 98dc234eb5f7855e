"""Field checks of the run config: types by default value (no strings for numbers), ranges.

Kept apart from :mod:`scoresde.cli.config` (the schema) so the schema reads as a list of fields.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

__all__ = ["check", "coerce"]


def _number(where: str, v: Any, kind: type) -> Any:
    """``v`` as ``kind`` (int or float); a string is refused, even ``'100'``.

    (The YAML reader reads an unquoted ``1e-3`` as a number: :mod:`scoresde._readers`.)
    """
    expected = "an integer" if kind is int else "a number"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        shown = "null" if v is None else repr(v)
        hint = " (a quoted string; write the number without quotes)" if isinstance(v, str) else ""
        raise ValueError(f"{where}: expected {expected}, received {shown}{hint}")
    x = float(v)
    if kind is int:
        if not (math.isfinite(x) and x == int(x)):
            raise ValueError(f"{where}: expected {expected}, received {v!r}")
        return int(x)
    return x


def coerce(section: str, klass: type, sub: dict[str, Any]) -> dict[str, Any]:
    """Check each field's type by its default; numbers may be numeric strings, never booleans."""
    out = dict(sub)
    for f in fields(klass):
        if f.name not in sub:
            continue
        v, where = sub[f.name], f"{section}.{f.name}"
        default = f.default_factory() if callable(f.default_factory) else f.default
        if v is None and "None" in str(f.type):
            continue
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise ValueError(f"{where}: expected true or false, received {v!r}")
        elif isinstance(default, (int, float)):
            out[f.name] = _number(where, v, type(default))
        elif isinstance(default, str) and "float" in str(f.type) and v != default:
            out[f.name] = _number(where, v, float)  # a number, or the default's keyword
        elif isinstance(default, str):
            if not isinstance(v, str):
                raise ValueError(f"{where}: expected a name (string), received {v!r}")
        elif isinstance(default, dict):
            if not isinstance(v, dict):
                raise ValueError(f"{where}: expected a mapping, received {v!r}")
        elif isinstance(default, tuple):
            if not isinstance(v, (list, tuple)) or len(v) != len(default):
                raise ValueError(f"{where}: expected {len(default)} numbers, received {v!r}")
            out[f.name] = tuple(_number(where, x, float) for x in v)
    return out


def check(ok: bool, name: str, expected: str, received: Any) -> None:
    """Raise ``ValueError("<name>: expected <expected>, received <received>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name}: expected {expected}, received {received!r}")
