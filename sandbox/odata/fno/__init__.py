"""The Finance & Operations OData dialect (Supply Chain Management), one module per concern:

- :mod:`.codes`: what F&O writes where Dataverse writes an HRESULT (nothing) and its exception type names;
- :mod:`.wire`: wire conventions (namespace, the error shape with the Infolog text, opaque etags, errors);
- :mod:`.dialect`: :class:`FnoDialect`, the hooks of the generic service answered the F&O way;
- :mod:`.platform`: the version actions on ``DataManagementEntities`` / ``SystemNotifications``;
- :mod:`.metadata`, :mod:`.metadataservice`, :mod:`.dictquery`: the metadata service ``/Metadata/`` (documents
  derived from the model, its Flask blueprint, and OData query options over those documents).

Imported on first use, like :mod:`sandbox.odata.dataverse`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.odata.fno.dialect import FnoDialect
    from sandbox.odata.fno.wire import NAMESPACE

__all__ = ["FnoDialect", "NAMESPACE"]


def __getattr__(name: str) -> Any:
    if name == "FnoDialect":
        from sandbox.odata.fno.dialect import FnoDialect

        return FnoDialect
    if name == "NAMESPACE":
        from sandbox.odata.fno.wire import NAMESPACE

        return NAMESPACE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
