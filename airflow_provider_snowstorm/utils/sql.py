"""SQL identifiers that come from parameters are validated, never pasted raw into a statement.

Snowflake folds unquoted identifiers to upper case; a name that is not a plain identifier must be double-quoted, and
a quoted name may not contain a double quote (we refuse those rather than escape them).
"""

from __future__ import annotations

import re

__all__ = ["IdentifierError", "validate_identifier", "validate_table_name"]

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
_QUOTED = re.compile(r'^"[^"]{1,255}"$')


class IdentifierError(ValueError):
    """A table or column name that is not a safe SQL identifier."""


def validate_identifier(name: str, *, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain identifier or a double-quoted one without quotes inside; else raise."""
    if not isinstance(name, str) or not (_PLAIN.match(name) or _QUOTED.match(name)):
        raise IdentifierError(
            f"{what} {name!r} is not a valid SQL identifier: use letters, digits, '_' and '$' "
            "(not starting with a digit), or a double-quoted name without quotes inside"
        )
    return name


def validate_table_name(name: str, *, what: str = "table") -> str:
    """Validate ``table``, ``schema.table`` or ``database.schema.table``, each part an identifier."""
    if not isinstance(name, str) or not name:
        raise IdentifierError(f"{what} name must be a non-empty string, got {name!r}")
    parts = re.findall(r'"[^"]*"|[^.]+', name)
    if not 1 <= len(parts) <= 3 or ".".join(parts) != name:
        raise IdentifierError(f"{what} {name!r} must be table, schema.table or database.schema.table")
    for part in parts:
        validate_identifier(part, what=f"{what} {name!r} part")
    return name
