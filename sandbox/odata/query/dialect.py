"""How one service reads query options: everything that differs from plain OData."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sandbox.odata.model import EntityType

if TYPE_CHECKING:
    from sandbox.odata.query.filtering import FilterCompiler, Operand
    from sandbox.odata.query.rewrite import QueryFunctionCall

#: translates one call of a namespace-qualified query function, given the property it names, to SQL
QueryFunctionHandler = Callable[["FilterCompiler", "QueryFunctionCall", "Operand"], sa.ColumnElement[bool]]


@dataclass(frozen=True)
class QueryFunctions:
    """Query functions a dialect adds to ``$filter``: ``<namespace>.<Name>(PropertyName='x',...)``.

    ``handlers`` are keyed by the lower-case name without the namespace.
    """

    namespace: str
    handlers: Mapping[str, QueryFunctionHandler]


@dataclass
class FilterDialect:
    """How one service reads query options; everything that differs from plain OData lives here."""

    case_insensitive: bool = False
    string_functions: bool = True
    wildcard_eq: bool = False
    enum_literals: bool = False
    #: the namespace-qualified query functions ``$filter`` takes (Dataverse's), or None
    query_functions: QueryFunctions | None = None
    lambdas: bool = True
    entity_label: Callable[[EntityType], str] = lambda e: e.name
    # OData 4.01 `x in (a,b)`; None follows ``string_functions`` (F&O refuses both, Dataverse takes both).
    in_operator: bool | None = None

    def label(self, entity: EntityType) -> str:
        """The type name used in messages, e.g. ``Microsoft.Dynamics.CRM.account``."""
        return self.entity_label(entity)

    @property
    def query_functions_namespace(self) -> str | None:
        """The namespace whose ``Name(...)`` calls are query functions (rewritten before lexing)."""
        return self.query_functions.namespace if self.query_functions is not None else None

    @property
    def allows_in(self) -> bool:
        """Whether OData 4.01 ``x in (a,b)`` is taken."""
        return self.string_functions if self.in_operator is None else self.in_operator
