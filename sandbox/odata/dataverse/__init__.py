"""The Dataverse Web API dialect (Dynamics 365 Sales), one module per concern:

- :mod:`.codes`: the HRESULTs Dataverse writes in ``error.code``, one name each;
- :mod:`.wire`: wire conventions (namespace, annotations, formatted values, keys, paging cookies, errors);
- :mod:`.dialect`: :class:`DataverseDialect`, the hooks of the generic service answered the Dataverse way;
- :mod:`.endpoints`: what Dataverse serves beside the entity sets, registered as resources and actions
  (``EntityDefinitions``, ``RelationshipDefinitions``, ``WhoAmI``, ``RetrieveMetadataChanges``,
  ``BulkDelete``, ``CreateMultiple``/``UpdateMultiple``/``UpsertMultiple``);
- :mod:`.bulk`: the bulk actions; :mod:`.metadata` and :mod:`.entitydefs`: EntityDefinitions;
- :mod:`.fetchxml`: ``?fetchXml=`` reads; :mod:`.changetracking`: ``Prefer: odata.track-changes``;
- :mod:`.querylanguages`: FetchXML and QueryExpression translated to OData text;
- :mod:`.queryfunctions`: the ``Microsoft.Dynamics.CRM.*`` query functions of ``$filter``.

The dialect is imported on first use: :mod:`.codes` is a leaf that the error hierarchy and the generic OData
modules import, and importing it must not pull in the service this package builds on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.odata.dataverse.dialect import DataverseDialect
    from sandbox.odata.dataverse.wire import NAMESPACE

__all__ = ["DataverseDialect", "NAMESPACE"]


def __getattr__(name: str) -> Any:
    if name == "DataverseDialect":
        from sandbox.odata.dataverse.dialect import DataverseDialect

        return DataverseDialect
    if name == "NAMESPACE":
        from sandbox.odata.dataverse.wire import NAMESPACE

        return NAMESPACE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
