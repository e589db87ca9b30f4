"""OData actions and functions: how a service declares its business operations.

A handler takes ``(ctx, target, params)``: ``target`` is the bound row (or None for unbound and
collection-bound operations) and ``params`` the JSON body (actions) or the parsed call arguments
(functions). It returns None (204), an :class:`EntityResult` (200 with one typed row), a
:class:`CollectionResult` (200 with typed rows) or a plain dict (200, rendered as given, with
``@odata.context`` added when missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.odata.store import Row, Store

if TYPE_CHECKING:
    from sandbox.odata.model import EntityType


@dataclass
class ActionContext:
    """What an action handler can use. ``resolve_reference`` turns ``/accounts(<id>)`` (or an absolute
    URL, or an entity-typed parameter dict with ``@odata.type`` and the key) into ``(entity, row)``."""

    store: Store
    identity: str
    resolve_reference: Callable[[Any], tuple[EntityType, Row]]
    service: Any = None


@dataclass
class EntityResult:
    entity: str
    row: Row
    columns: list[str] | None = None


@dataclass
class CollectionResult:
    items: list[tuple[str, Row]]
    #: ``@odata.context`` suffix, e.g. ``Collection(Microsoft.Dynamics.CRM.crmbaseentity)``
    context: str = ""


ActionHandler = Callable[[ActionContext, "Row | None", dict[str, Any]], Any]


@dataclass
class ActionSpec:
    """One action or function. ``bound_to`` is an entity name; ``collection_bound`` binds to its set."""

    name: str
    handler: ActionHandler
    bound_to: str | None = None
    collection_bound: bool = False
    is_function: bool = False
    parameters: dict[str, str] = field(default_factory=dict)
    returns: str | None = None
    description: str = ""


class ActionRegistry:
    def __init__(self) -> None:
        self._specs: dict[tuple[str, str | None, bool], ActionSpec] = {}

    def add(self, spec: ActionSpec) -> ActionSpec:
        self._specs[(spec.name, spec.bound_to, spec.collection_bound)] = spec
        return spec

    def action(
        self,
        name: str,
        *,
        bound_to: str | None = None,
        collection_bound: bool = False,
        parameters: dict[str, str] | None = None,
        returns: str | None = None,
        function: bool = False,
    ) -> Callable[[ActionHandler], ActionHandler]:
        """Decorator registering ``handler`` under ``name``."""

        def register(handler: ActionHandler) -> ActionHandler:
            self.add(
                ActionSpec(
                    name,
                    handler,
                    bound_to,
                    collection_bound,
                    function,
                    parameters or {},
                    returns,
                    (handler.__doc__ or "").strip().split("\n")[0],
                )
            )
            return handler

        return register

    def find(self, name: str, bound_to: str | None, collection_bound: bool = False) -> ActionSpec | None:
        return self._specs.get((name, bound_to, collection_bound))

    def all(self) -> list[ActionSpec]:
        return list(self._specs.values())

    def names(self) -> set[str]:
        return {spec.name for spec in self._specs.values()}
