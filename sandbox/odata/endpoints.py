"""What a dialect serves beside the model's entity sets and the service's registered actions.

A dialect declares these in :meth:`sandbox.odata.dialect.Dialect.register_endpoints`; the service routes
to them, so no dialect parses paths or methods itself:

- a :class:`Resource` answers a path whose first segment is its name (Dataverse ``EntityDefinitions``,
  ``WhoAmI``, ``BulkDelete``), before the entity sets are looked at;
- a :class:`CollectionAction` is an action bound to the collection of every entity set, called with the
  namespace-qualified name (Dataverse ``accounts/Microsoft.Dynamics.CRM.CreateMultiple``).

Actions that belong to one service's business (QualifyLead, confirming an order) are not endpoints: the
mock registers them in its :class:`sandbox.odata.actions.ActionRegistry`, which ``$metadata`` lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox.errors import SandboxError
from sandbox.odata.model import EntityType
from sandbox.odata.urls import Segment

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState

#: (service, the path's segments, request) -> response
ResourceHandler = Callable[["ODataService", list[Segment], "RequestState"], Response]
#: (service, the entity set's type, the JSON body, request) -> response
CollectionActionHandler = Callable[["ODataService", EntityType, dict[str, Any], "RequestState"], Response]


@dataclass(frozen=True)
class Resource:
    """A path the dialect serves beside the entity sets, answering one HTTP method."""

    name: str
    handler: ResourceHandler
    method: str
    #: the error for any other method (the real service's wording differs from one resource to another)
    refuse_method: Callable[[], SandboxError]
    #: also answer to ``<namespace>.<name>`` (functions and actions may be called qualified)
    namespace: str | None = None
    #: answer only a path of this one segment (otherwise the path is not this resource's)
    single_segment: bool = False

    def names(self) -> tuple[str, ...]:
        """The first segments this resource answers to."""
        return (self.name, f"{self.namespace}.{self.name}") if self.namespace else (self.name,)


@dataclass(frozen=True)
class CollectionAction:
    """An action bound to the collection of every entity set (POST only, called namespace-qualified)."""

    name: str
    handler: CollectionActionHandler


class Endpoints:
    """The resources and collection actions one service's dialect registered."""

    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}
        self._collection_actions: dict[str, CollectionAction] = {}

    def add_resource(self, resource: Resource) -> Resource:
        """Serve ``resource`` under each of its names."""
        for name in resource.names():
            self._resources[name] = resource
        return resource

    def add_collection_action(self, action: CollectionAction) -> CollectionAction:
        """Serve ``action`` on every entity set's collection."""
        self._collection_actions[action.name] = action
        return action

    def resource_for(self, segments: list[Segment]) -> Resource | None:
        """The resource a parsed path names, or None when the path is not one."""
        resource = self._resources.get(segments[0].name)
        if resource is None or (resource.single_segment and len(segments) != 1):
            return None
        return resource

    def collection_action(self, name: str) -> CollectionAction | None:
        """The collection-bound action called ``name`` (namespace removed), or None."""
        return self._collection_actions.get(name)
