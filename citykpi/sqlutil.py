"""The one place that quotes SQL identifiers and renders SQL literals.

Everything that builds SQL text goes through these helpers; user text (ids, names, paths,
expression constants) is never formatted into SQL any other way. Prefer bound parameters
(``?``) where DuckDB accepts them; use :func:`literal` only where it does not (DDL, views).
"""

from __future__ import annotations

import math
from datetime import date, datetime


def ident(name: str) -> str:
    """Quote an identifier: ``ident('a"b')`` -> ``"a""b"``."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """Render a Python value as a SQL literal (str, int, float, bool, None, date, datetime)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"cannot render non-finite number {value!r} as SQL")
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("string contains a NUL byte")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot render {type(value).__name__} as a SQL literal")
