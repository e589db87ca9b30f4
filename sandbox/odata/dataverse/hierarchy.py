"""Hierarchical data: the ``Under``, ``UnderOrEqual``, ``Above``, ``AboveOrEqual`` and ``NotUnder`` query functions
(FetchXML ``under``, ``eq-or-under``, ``above``, ``eq-or-above``, ``not-under``).

They work only on a table with a hierarchical relationship: the self-referencing many-to-one lookup that is
marked hierarchical out of the box, such as account's ``parentaccountid`` (:data:`HIERARCHICAL_LOOKUPS`; a table
has at most one, and ``EntityDefinitions`` reports ``IsHierarchical`` for it). The condition names the table's primary key, or a
lookup to such a table, and a record id; the records above or below it are found with a recursive SQL query that
stops after 100 levels, Dataverse's default recursion limit for these operators
(``docs/reference/dataverse-web-api.md``, "FetchXML"; PA ``query-hierarchical-data``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sandbox.odata.model import EntityType, Model, Property
from sandbox.odata.query.errors import syntax
from sandbox.odata.query.filtering import FilterCompiler, Operand, guid_literal
from sandbox.odata.query.rewrite import QueryFunctionCall

#: how many levels a hierarchical condition follows (Dataverse's default limit)
MAX_DEPTH = 100

#: query function (lower case) -> (direction, includes the record itself, negated)
HIERARCHY_FUNCTIONS: dict[str, tuple[str, bool, bool]] = {
    "under": ("down", False, False),
    "underorequal": ("down", True, False),
    "notunder": ("down", False, True),
    "above": ("up", False, False),
    "aboveorequal": ("up", True, False),
}


#: the tables whose self-referencing lookup is a hierarchical relationship out of the box, and that lookup's
#: navigation property (a table has at most one; other self-references, such as account's billing account or
#: contact's parent customer, are not hierarchical)
HIERARCHICAL_LOOKUPS = {
    "account": "parentaccountid",
    "businessunit": "parentbusinessunitid",
    "systemuser": "parentsystemuserid",
    "position": "parentpositionid",
    "product": "parentproductid",
}


def parent_column(entity: EntityType) -> str | None:
    """The column of ``entity``'s hierarchical relationship (its self-referencing lookup), None without one."""
    nav = entity.navigations.get(HIERARCHICAL_LOOKUPS.get(entity.name, ""))
    if nav is None or nav.many or not nav.owns_fk or nav.target != entity.name or len(nav.pairs) != 1:
        return None
    return nav.pairs[0][0]


def _owner(model: Model, prop: Property) -> EntityType | None:
    for entity in model.entities.values():
        if entity.properties.get(prop.name) is prop:
            return entity
    return None


def _hierarchical_target(model: Model, operand: Operand, function: str) -> EntityType:
    """The hierarchical table the condition's column identifies records of: its own (primary key) or a lookup's."""
    prop = operand.prop
    owner = _owner(model, prop) if prop is not None else None
    if prop is None or owner is None:
        raise syntax(f"The query function '{function}' needs a column, not '{operand.name}'.")
    target: EntityType | None = None
    if prop.name in owner.key:
        target = owner
    else:
        # a lookup (a polymorphic one has a navigation per target table): the hierarchical table it points at
        targets = [
            model.entities[nav.target]
            for nav in owner.navigations.values()
            if nav.owns_fk and not nav.many and nav.pairs[0][0] == prop.name and nav.target in model.entities
        ]
        target = next((t for t in targets if parent_column(t) is not None), None)
    if target is None or parent_column(target) is None:
        raise syntax(
            f"The condition operator '{function}' is valid only for the primary key of a table with a "
            f"hierarchical relationship, or a lookup to one; '{prop.name}' of '{owner.name}' is not."
        )
    return target


def hierarchy_condition(
    compiler: FilterCompiler, function: QueryFunctionCall, operand: Operand
) -> sa.ColumnElement[bool]:
    """``operand`` (a record id column) is above or below the record ``PropertyValue`` names."""
    key = function.name.rsplit(".", 1)[-1].lower()
    direction, itself, negated = HIERARCHY_FUNCTIONS[key]
    target = _hierarchical_target(compiler.model, operand, function.name)
    raw = function.param("PropertyValue")
    if not isinstance(raw, str):
        raise syntax(f"The query function '{function.name}' needs a PropertyValue record id.")
    try:
        record = guid_literal(raw.strip().strip("{}"))
    except ValueError:
        raise syntax(f"The value '{raw}' of query function '{function.name}' is not a valid record id.") from None
    ids = _related_ids(target, record, direction, itself)
    inside: sa.ColumnElement[bool] = operand.expr.in_(ids)
    if negated:
        return sa.or_(operand.expr.is_(None), sa.not_(inside))
    return inside


def _related_ids(target: EntityType, record: str, direction: str, itself: bool) -> Any:
    """A SELECT of the ids above (``up``) or below (``down``) ``record`` in ``target``'s hierarchy, at most
    :data:`MAX_DEPTH` levels away, with ``record`` itself when ``itself``. Aliased tables, so the query stays
    correct when the condition is adapted to another alias of the same table (a FetchXML link-entity)."""
    table = target.table
    assert table is not None
    key_name, parent_name = target.key[0], parent_column(target)
    assert parent_name is not None
    seed_rows = table.alias("hierarchy_seed")
    step_rows = table.alias("hierarchy_step")
    if direction == "down":
        seed = sa.select(seed_rows.c[key_name].label("id"), sa.literal(1).label("depth")).where(
            seed_rows.c[parent_name] == record
        )
        tree = seed.cte("hierarchy_tree", recursive=True)
        step = sa.select(step_rows.c[key_name], tree.c.depth + 1).where(
            step_rows.c[parent_name] == tree.c.id, tree.c.depth < MAX_DEPTH
        )
    else:
        seed = sa.select(seed_rows.c[parent_name].label("id"), sa.literal(1).label("depth")).where(
            seed_rows.c[key_name] == record, seed_rows.c[parent_name].is_not(None)
        )
        tree = seed.cte("hierarchy_tree", recursive=True)
        step = sa.select(step_rows.c[parent_name], tree.c.depth + 1).where(
            step_rows.c[key_name] == tree.c.id, step_rows.c[parent_name].is_not(None), tree.c.depth < MAX_DEPTH
        )
    # UNION (not UNION ALL) ends a cycle in the data (a record that is its own ancestor) instead of looping
    tree = tree.union(step)
    ids: Any = sa.select(tree.c.id)
    if itself:
        ids = sa.union(ids, sa.select(sa.literal(record).label("id")))
    return ids
