"""``$top`` and ``$skip``: non-negative integers (the pages themselves are the dialect's business)."""

from __future__ import annotations

import re

from sandbox.odata.query.errors import syntax

_DIGITS = re.compile(r"[0-9]{1,18}")


def parse_int_option(name: str, text: str | None) -> int | None:
    """Parse `$top`/`$skip`: ``None`` when absent, else a non-negative integer or BadRequest."""
    if text is None:
        return None
    value = text.strip()
    if not _DIGITS.fullmatch(value):
        raise syntax(
            f"Invalid value '{text}' for {name} query option found. "
            f"The {name} query option requires a non-negative integer value."
        )
    return int(value)
