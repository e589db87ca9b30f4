"""The Finance & Operations OData dialect (Supply Chain Management): ``/data/``.

Compound keys with ``dataAreaId``, the default company unless ``cross-company=true``, enums read and
written as member names, ``*`` wildcards in ``eq``, no string functions, ``$skip`` paging with up to 10,000
rows a page, POST 201 with the row, PATCH/PUT/DELETE 204, opaque base64 etags and the F&O error shape with
the Infolog text in ``innererror``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox.errors import BadRequest, NotFound, SandboxError
from sandbox.odata import model as m
from sandbox.odata.actions import ActionSpec
from sandbox.odata.batch import BatchDialect
from sandbox.odata.dialect import Dialect
from sandbox.odata.endpoints import Endpoints
from sandbox.odata.fno import platform, wire
from sandbox.odata.fno.codes import NO_CODE, ODATA_EXCEPTION
from sandbox.odata.fno.metadata import CatalogFacts, MetadataCatalog
from sandbox.odata.fno.wire import NAMESPACE, ROOT
from sandbox.odata.model import EntityType, Property
from sandbox.odata.query import ExpandItem, FilterDialect, QueryOptions
from sandbox.odata.responses import json_response, no_content, query_string
from sandbox.wellknown import DEFAULT_COMPANY

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState


class FnoDialect(Dialect):
    """The hooks of the generic service, answered as F&O's OData endpoint answers."""

    name = "fno"
    csdl_name = "fno"
    root = ROOT
    namespace = NAMESPACE
    allow_skip = True
    patch_upserts = False
    deep_insert = False
    enums_as_names = True
    filter_dialect = FilterDialect(
        case_insensitive=True,
        string_functions=False,
        wildcard_eq=True,
        enum_literals=True,
        lambdas=False,
        entity_label=lambda e: f"{NAMESPACE}.{e.name}",
    )
    batch_dialect = BatchDialect(
        fail_outer_status=False,
        stop_on_error=False,
        changeset_failure_status=500,
        require_crlf=False,
        max_requests=5000,
        service_root=ROOT,
    )

    def __init__(
        self,
        *,
        default_company: str = DEFAULT_COMPANY,
        max_page_size: int = 10000,
        catalog_facts: CatalogFacts | None = None,
    ) -> None:
        self.default_company = default_company.lower()
        self.max_page_size = max_page_size
        #: what the metadata catalog needs beyond the model (entity categories); the platform entities are added
        self.catalog_facts = dataclasses.replace(
            catalog_facts or CatalogFacts(), system_entities=platform.SYSTEM_ENTITIES
        )
        self._catalog: MetadataCatalog | None = None
        self._catalog_lock = threading.Lock()

    def catalog(self, model: m.Model, actions: Iterable[ActionSpec]) -> MetadataCatalog:
        """The metadata service's documents for ``model`` (the service's one model), built on first use."""
        with self._catalog_lock:
            if self._catalog is None:
                self._catalog = MetadataCatalog(model, actions, self.catalog_facts)
            return self._catalog

    def register_endpoints(self, endpoints: Endpoints) -> None:
        """The platform's version actions (``DataManagementEntities``, ``SystemNotifications``)."""
        platform.register(endpoints)

    # ---- errors -----------------------------------------------------------------------------------
    def error_body(self, error: SandboxError) -> dict[str, Any]:
        return wire.error_body(error)

    def not_found(self, entity: EntityType, key_text: str) -> SandboxError:
        return NotFound(
            f"Resource not found for the segment '{entity.entity_set}'.",
            NO_CODE,
            detail=f"No {entity.name} record with {key_text} exists in this company.",
        )

    def unknown_set(self, name: str) -> SandboxError:
        return NotFound("Entity set not found.", NO_CODE, detail=f"No entity set or operation named '{name}'.")

    def unknown_property(self, entity: EntityType, name: str) -> SandboxError:
        return BadRequest(
            "An error has occurred.",
            NO_CODE,
            detail=f"The property '{name}' does not exist on type '{self.type_label(entity)}'. "
            "Make sure to only use property names that are defined by the type.",
            extra={"type": ODATA_EXCEPTION},
        )

    def invalid_key(self, entity: EntityType) -> SandboxError:
        keys = ",".join(entity.key)
        return BadRequest(
            f"The key in the request URI is not valid for resource '{self.type_label(entity)}'. "
            f"Give every key property: ({keys}).",
            NO_CODE,
            extra={"type": ODATA_EXCEPTION},
        )

    def type_error(self, entity: EntityType, prop: Property, value: Any) -> SandboxError:
        expected = prop.enum.qualified_name if prop.enum else prop.type
        return BadRequest(
            "An error has occurred.",
            NO_CODE,
            detail=f"Cannot convert the literal '{value}' to the expected type '{expected}' of property '{prop.name}'.",
            extra={"type": ODATA_EXCEPTION},
        )

    def malformed_json(self, detail: str) -> SandboxError:
        return BadRequest(
            "An error has occurred.",
            NO_CODE,
            detail=f"The request payload is not valid JSON: {detail}",
            extra={"type": ODATA_EXCEPTION},
        )

    def lookup_write(self, entity: EntityType, name: str) -> SandboxError:
        return self.unknown_property(entity, name)

    # ---- keys and company ---------------------------------------------------------------------------
    def key_value(self, entity: EntityType, prop: Property, value: Any) -> Any:
        converted = self.in_value(entity, prop, value)
        if prop.name == entity.company_property and isinstance(converted, str):
            return converted.lower()
        return converted

    def scope(self, entity: EntityType, state: RequestState) -> list[Any]:
        if entity.company_property is None:
            return []
        if state.args.get("cross-company", "").lower() == "true":
            return []
        return [entity.column(entity.company_property) == self.default_company]

    def in_value(self, entity: EntityType, prop: Property, value: Any) -> Any:
        if value is None and prop.type == m.STRING and prop.enum is None:
            return ""  # F&O has no null strings: unset is ""
        converted = super().in_value(entity, prop, value)
        if prop.name == entity.company_property and isinstance(converted, str):
            return converted.lower()
        return converted

    def stores_text_as_given(self, entity: EntityType, prop: Property) -> bool:
        return super().stores_text_as_given(entity, prop) and prop.name != entity.company_property

    def complete_values(
        self, entity: EntityType, values: dict[str, Any], state: RequestState, *, creating: bool
    ) -> None:
        company = entity.company_property
        if company is None:
            return
        if creating and not values.get(company):
            values[company] = self.default_company
        if not creating and company in values:
            values.pop(company)  # the company of a row never changes

    def check_odata_annotation(self, entity: EntityType, name: str, value: Any) -> None:
        if name == "@odata.type" and isinstance(value, str) and value.lstrip("#") != self.type_label(entity):
            raise BadRequest(
                "An error has occurred.",
                NO_CODE,
                detail=f"The type '{value}' does not match the entity set's type '{self.type_label(entity)}'.",
            )

    # ---- options and paging -----------------------------------------------------------------------
    def check_options(self, args: dict[str, str]) -> None:
        for unsupported in ("$search", "$apply", "$skiptoken", "$deltatoken"):
            if unsupported in args:
                raise BadRequest(
                    "An error has occurred.", NO_CODE, detail=f"The query parameter '{unsupported}' is not supported."
                )

    def check_expand(self, item: ExpandItem) -> None:
        if item.expand:
            raise BadRequest("An error has occurred.", NO_CODE, detail="Only the first level of $expand is supported.")

    def cap_count(self, total: int) -> int:
        return total

    def page_size(self, state: RequestState) -> int:
        requested = state.prefer.get("odata.maxpagesize")
        if requested is None:
            return self.max_page_size
        try:
            size = max(1, min(int(requested), self.max_page_size))
        except ValueError:
            raise BadRequest(
                "An error has occurred.", NO_CODE, detail=f"odata.maxpagesize '{requested}' is not a number."
            ) from None
        state.applied.append(f"odata.maxpagesize={size}")
        return size

    def top_ignored_with_paging(self, state: RequestState) -> bool:
        return False

    def page_offset(self, state: RequestState, options: QueryOptions) -> int:
        return options.skip or 0

    def next_link(self, state: RequestState, offset: int, page_size: int) -> str:
        args = dict(state.args)
        args["$skip"] = str(offset)
        return f"{state.base_url}{state.path}?{query_string(args)}"

    def effective_select(self, entity: EntityType, select: list[str] | None) -> list[str] | None:
        return select

    # ---- rows -------------------------------------------------------------------------------------
    def etag(self, row: dict[str, Any]) -> str:
        return wire.etag(row)

    def created_response(
        self, service: ODataService, entity: EntityType, row: dict[str, Any], state: RequestState
    ) -> Response:
        body = {"@odata.context": f"{state.base_url}$metadata#{entity.entity_set}/$entity"}
        body.update(self.serialize(entity, row, None))
        response = json_response(body, status=201)
        response.headers["Location"] = self.entity_url(state.base_url, entity, row)
        response.headers["ETag"] = self.etag(row)
        return response

    def upserted_response(
        self, service: ODataService, entity: EntityType, row: dict[str, Any], state: RequestState, *, created: bool
    ) -> Response:
        response = no_content()
        response.headers["ETag"] = self.etag(row)
        return response
