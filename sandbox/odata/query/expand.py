"""``$expand``: terms with their nested options (kept as raw text for the target type to compile)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sandbox.odata.query.errors import syntax, syntax_at, unterminated
from sandbox.odata.query.paging import parse_int_option
from sandbox.odata.query.scanning import UnbalancedBrackets, UnterminatedLiteral, split_outside


@dataclass
class ExpandItem:
    """One `$expand` term. ``ref`` is True for ``nav/$ref``; nested options are kept as raw text."""

    nav: str
    select: list[str] | None = None
    filter: str | None = None
    orderby: str | None = None
    top: int | None = None
    skip: int | None = None
    expand: list[ExpandItem] = field(default_factory=list)
    ref: bool = False


_NAV_NAME = re.compile(r"[A-Za-z_][\w.]*|\*")
_EXPAND_OPTIONS = ("$select", "$filter", "$orderby", "$top", "$skip", "$expand")


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quotes, parentheses and brackets; BadRequest if unbalanced."""
    try:
        return split_outside(text, separator, "([", ")]", double_quotes=True)
    except UnterminatedLiteral:
        raise unterminated(text) from None
    except UnbalancedBrackets as exc:
        raise syntax_at(exc.position, text) from None


def parse_expand(text: str | None) -> list[ExpandItem]:
    """Parse `$expand` syntax: ``a($select=x,y;$filter=...;$top=5),b/$ref,c($expand=d($select=e))``.

    Commas, semicolons and parentheses inside quoted strings and nested options are respected. Nested
    `$select`/`$filter`/`$orderby` stay raw text (the caller compiles them against the target type);
    `$top`/`$skip` are validated integers; `$expand` recurses. Options other than those six raise
    BadRequest. Navigation names are not checked here.
    """
    if text is None or not text.strip():
        return []
    items: list[ExpandItem] = []
    for term in _split_top_level(text, ","):
        items.append(_expand_item(term.strip(), text))
    return items


def _expand_item(term: str, whole: str) -> ExpandItem:
    invalid = syntax(f"Term '{term}' is not valid in a $select or $expand expression.")
    if not term:
        raise syntax(f"Term '{whole}' is not valid in a $select or $expand expression.")
    paren = term.find("(")
    head = (term if paren < 0 else term[:paren]).strip()
    options_text: str | None = None
    if paren >= 0:
        if not term.endswith(")"):
            raise invalid
        options_text = term[paren + 1 : -1]
    ref = False
    if head.endswith("/$ref"):
        ref = True
        head = head[: -len("/$ref")].strip()
        if options_text is not None:
            raise invalid
    if not _NAV_NAME.fullmatch(head):
        raise invalid
    item = ExpandItem(nav=head, ref=ref)
    if options_text is None:
        return item
    if not options_text.strip():
        raise invalid
    seen: set[str] = set()
    for option in _split_top_level(options_text, ";"):
        key, equals, value = option.partition("=")
        key = key.strip()
        if not equals:
            raise invalid
        if key not in _EXPAND_OPTIONS:
            raise syntax(f"The query option '{key}' is not supported inside $expand.")
        if key in seen:
            raise syntax(f"Query option '{key}' was specified more than once inside $expand.")
        seen.add(key)
        value = value.strip()
        if key == "$select":
            item.select = [name.strip() for name in value.split(",")] if value and value != "*" else None
            if item.select is not None and not all(item.select):
                raise invalid
        elif key == "$filter":
            item.filter = value
        elif key == "$orderby":
            item.orderby = value
        elif key == "$top":
            item.top = parse_int_option("$top", value)
        elif key == "$skip":
            item.skip = parse_int_option("$skip", value)
        else:
            item.expand = parse_expand(value)
    return item
