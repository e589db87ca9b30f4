"""Query options of both OData dialects, one phase per module (in the order a request meets them):

1. :mod:`.scanning`: the one quote-aware scanner every phase below (and URL parsing) reads text with;
2. :mod:`.options`: the option parser, a query string into :class:`QueryOptions`;
3. :mod:`.select`, :mod:`.expand`, :mod:`.paging`: ``$select``, ``$expand`` (nested options kept as text),
   ``$top``/``$skip``;
4. :mod:`.rewrite`: ``$filter``/``$orderby`` pre-processing: parameter aliases, and the dialect syntax the
   grammar cannot lex (F&O enum literals and ``divby``, query functions) turned into placeholders;
5. :mod:`.parsing`: lexing and parsing with the ``odata-query`` grammar, cached per text;
6. :mod:`.filtering`: the parsed ``$filter`` translated to a SQLAlchemy condition;
7. :mod:`.orderby`: ``$orderby`` into order-by clauses;

with :mod:`.paths` (navigation paths as correlated subqueries, shared by 6 and 7), :mod:`.dialect` (what a
service's :class:`FilterDialect` changes, including the query functions it adds) and :mod:`.errors`.
Paging itself (page sizes, next links, skip tokens) is the service dialect's business.
"""

from __future__ import annotations

from sandbox.odata.query.dialect import FilterDialect, QueryFunctionHandler, QueryFunctions
from sandbox.odata.query.expand import ExpandItem, parse_expand
from sandbox.odata.query.filtering import compile_filter
from sandbox.odata.query.options import QueryOptions, check_known_options, parse_query_options
from sandbox.odata.query.orderby import parse_orderby
from sandbox.odata.query.paging import parse_int_option
from sandbox.odata.query.rewrite import substitute_aliases
from sandbox.odata.query.select import parse_select

__all__ = [
    "ExpandItem",
    "FilterDialect",
    "QueryFunctionHandler",
    "QueryFunctions",
    "QueryOptions",
    "check_known_options",
    "compile_filter",
    "parse_expand",
    "parse_int_option",
    "parse_orderby",
    "parse_query_options",
    "parse_select",
    "substitute_aliases",
]
