"""``$select``: property names in the order given, checked against the entity type."""

from __future__ import annotations

from sandbox.odata.model import EntityType
from sandbox.odata.query.dialect import FilterDialect
from sandbox.odata.query.errors import syntax, unknown_property
from sandbox.odata.query.paths import visible


def parse_select(text: str | None, entity: EntityType, dialect: FilterDialect) -> list[str] | None:
    """Parse `$select` into property names (in the order given, without duplicates).

    ``None`` (absent, empty or ``*``) means every property. Names are case-sensitive; an unknown or
    hidden name raises BadRequest ``0x0`` "Could not find a property named 'X' on type '<label>'.".
    """
    if text is None or not text.strip():
        return None
    names: list[str] = []
    seen: set[str] = set()
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            raise syntax(f"Term '{text}' is not valid in a $select or $expand expression.")
        if name == "*":
            return None
        if visible(entity, name) is None:
            if "/" in name or "(" in name:
                raise syntax(f"Term '{name}' is not valid in a $select or $expand expression.")
            raise unknown_property(name, entity, dialect)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names
