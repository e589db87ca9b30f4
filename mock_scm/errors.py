"""F&O's refusals as Infolog messages: a refused write (``AxODataWriteException``) and a refused business
operation (``ErrorException``), both answered as 400 with the empty F&O error code and the Infolog in ``detail``."""

from __future__ import annotations

from typing import Any

from mock_scm.schema import technical_name
from sandbox.errors import BadRequest

WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
PROCESS_EXCEPTION = "Microsoft.Dynamics.Ax.Xpp.ErrorException"


def not_in_related(value: Any, field_label: str, table_label: str) -> str:
    """The Infolog warning of a reference to a row that does not exist."""
    return f"The value '{value}' in field '{field_label}' is not found in the related table '{table_label}'."


def must_be_filled(field_label: str) -> str:
    """The Infolog warning of a mandatory field left empty."""
    return f"Field '{field_label}' must be filled in."


def write_error(entity_name: str, *warnings: str, field: str | None = None, verb: str = "Write") -> BadRequest:
    """A refused write: ``Write failed for table row of type 'X'. Infolog: Warning: ...``, answered as 400."""
    technical = technical_name(entity_name)
    parts = [f"Warning: {w}" for w in warnings]
    if field is not None:
        parts.append(f"Warning: validateField failed on field '{technical}.{field}'.")
    detail = f"{verb} failed for table row of type '{technical}'. Infolog: " + "; ".join(parts)
    return BadRequest("An error has occurred.", "", detail=detail, extra={"type": WRITE_EXCEPTION})


def process_error(*errors: str) -> BadRequest:
    """A refused business operation (posting, confirmation, ...): ``Infolog: Error: ...``, answered as 400."""
    detail = "Infolog: " + "; ".join(f"Error: {e}" for e in errors)
    return BadRequest("An error has occurred.", "", detail=detail, extra={"type": PROCESS_EXCEPTION})
