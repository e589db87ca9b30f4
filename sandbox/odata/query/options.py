"""The option parser: a request's query string into :class:`QueryOptions` (each option by its phase)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.errors import BadRequest
from sandbox.odata.dataverse import codes
from sandbox.odata.model import EntityType
from sandbox.odata.query.dialect import FilterDialect
from sandbox.odata.query.expand import ExpandItem, parse_expand
from sandbox.odata.query.paging import parse_int_option
from sandbox.odata.query.rewrite import substitute_aliases
from sandbox.odata.query.select import parse_select

#: the ``$`` options (and the two plain ones) OData clients send to either service; a dialect refuses
#: those it does not take (:meth:`sandbox.odata.dialect.Dialect.check_options`)
KNOWN_OPTIONS = frozenset(
    {
        "$select",
        "$filter",
        "$orderby",
        "$top",
        "$skip",
        "$expand",
        "$count",
        "$skiptoken",
        "$deltatoken",
        "$format",
        "cross-company",
        "annotations",
        "$apply",
        "$search",
    }
)


@dataclass
class QueryOptions:
    """The query options of one read: ``$select`` checked, ``$filter``/``$orderby`` as text with parameter
    aliases substituted (compiled against the entity when the query is built), integers, ``$expand`` terms."""

    select: list[str] | None = None
    filter: str | None = None
    orderby: str | None = None
    top: int | None = None
    skip: int | None = None
    expand: list[ExpandItem] = field(default_factory=list)
    count: bool = False


def check_known_options(args: dict[str, str]) -> None:
    """Refuse a ``$`` option OData does not define."""
    for name in args:
        if name.startswith("$") and name not in KNOWN_OPTIONS:
            raise BadRequest(f"The query parameter '{name}' is not supported.", codes.QUERY_SYNTAX)


def parse_query_options(args: dict[str, str], entity: EntityType, dialect: FilterDialect) -> QueryOptions:
    """The options of ``args`` for a read of ``entity`` (parameter aliases are the ``@`` arguments)."""
    aliases = {name: value for name, value in args.items() if name.startswith("@")}
    return QueryOptions(
        select=parse_select(args.get("$select"), entity, dialect),
        filter=substitute_aliases(args["$filter"], aliases) if args.get("$filter") else None,
        orderby=substitute_aliases(args["$orderby"], aliases) if args.get("$orderby") else None,
        top=parse_int_option("$top", args.get("$top")),
        skip=parse_int_option("$skip", args.get("$skip")),
        expand=parse_expand(args.get("$expand")),
        count=args.get("$count", "").lower() == "true",
    )
