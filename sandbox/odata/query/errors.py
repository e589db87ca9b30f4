"""The errors every query phase raises: 400 Bad Request with Dataverse's codes (F&O shows none)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.errors import BadRequest
from sandbox.odata.dataverse import codes
from sandbox.odata.model import EntityType

if TYPE_CHECKING:
    from sandbox.odata.query.dialect import FilterDialect


def syntax(message: str) -> BadRequest:
    """A query the grammar or the dialect refuses."""
    return BadRequest(message, codes.QUERY_SYNTAX)


def syntax_at(position: int, text: str) -> BadRequest:
    """A syntax error at ``position`` of ``text``."""
    return syntax(f"Syntax error at position {position} in '{text}'.")


def unterminated(text: str) -> BadRequest:
    """A string literal left open in ``text``."""
    return syntax(f"There is an unterminated literal at position {len(text)} in '{text}'.")


def unknown_property(name: str, entity: EntityType, dialect: FilterDialect) -> BadRequest:
    """A name that is no visible property (or navigation) of ``entity``."""
    return BadRequest(f"Could not find a property named '{name}' on type '{dialect.label(entity)}'.", codes.UNSPECIFIED)


def unknown_function(name: str) -> BadRequest:
    """A function call the grammar or the dialect does not know."""
    return syntax(
        f"An unknown function with name '{name}' was found. This may also be a function import or a key "
        "lookup on a navigation property, which is not allowed."
    )
