"""The contract between the generic OData service and the two services it emulates.

The generic service (:mod:`sandbox.odata.service`) asks its dialect how to convert values, render rows,
etags, keys, errors, pages and write responses, and which endpoints to serve beside the entity sets;
everything else is shared. :class:`Dialect` declares every hook the service calls: the abstract ones each
dialect must answer, the others with the behaviour both share. Implementations:
:class:`sandbox.odata.dataverse.DataverseDialect` and :class:`sandbox.odata.fno.FnoDialect`.
"""

from __future__ import annotations

import abc
import datetime as dt
import decimal
import json
from typing import TYPE_CHECKING, Any, ClassVar

from flask import Response

from sandbox.errors import BadRequest, SandboxError
from sandbox.odata import model as m
from sandbox.odata.batch import BatchDialect
from sandbox.odata.csdl import Dialect as CsdlFlavour
from sandbox.odata.dataverse import codes
from sandbox.odata.endpoints import Endpoints
from sandbox.odata.literals import format_literal
from sandbox.odata.model import ROWID, ROWVERSION, EntityType, Property
from sandbox.odata.query import ExpandItem, FilterDialect
from sandbox.odata.urls import is_guid
from sandbox.wellknown import INTEGRATION_IDENTITY, SYSTEM_IDENTITY

if TYPE_CHECKING:
    from sandbox.odata.query import QueryOptions
    from sandbox.odata.service import ODataService, RequestState

#: types whose stored Python value is already the JSON value (see Dialect.out_value)
_AS_STORED = frozenset({m.STRING, m.INT32, m.INT64, m.BOOLEAN, m.GUID})
#: the largest magnitude of .NET's System.Decimal, which both real services read Edm.Decimal values into
_EDM_DECIMAL_MAX = decimal.Decimal("79228162514264337593543950335")


class Dialect(abc.ABC):
    """Every hook :class:`sandbox.odata.service.ODataService` calls. Abstract hooks are the ones where the
    two services differ; the rest hold the behaviour they share and may be overridden."""

    #: short name (``info`` of the control plane)
    name: ClassVar[str]
    #: the CSDL flavour ``$metadata`` is rendered in (:func:`sandbox.odata.csdl.render_csdl`)
    csdl_name: ClassVar[CsdlFlavour]
    #: the service root the dialect answers at (and prints in URLs)
    root: ClassVar[str]
    #: the namespace of the entity types (``Microsoft.Dynamics.CRM``)
    namespace: ClassVar[str]
    #: the largest page a collection read returns
    max_page_size: int = 5000
    #: whether ``$skip`` is accepted on a collection
    allow_skip: ClassVar[bool] = True
    #: whether PATCH/PUT to a missing key creates the row (Dataverse upsert)
    patch_upserts: ClassVar[bool] = False
    #: whether a body may name navigation properties (deep insert, or a lookup cleared by name)
    deep_insert: ClassVar[bool] = False
    #: whether enum values are read and written as member names (F&O) rather than numbers
    enums_as_names: ClassVar[bool] = False
    #: how query options are read (case, wildcards, functions)
    filter_dialect: ClassVar[FilterDialect]
    #: how ``$batch`` is parsed and answered
    batch_dialect: ClassVar[BatchDialect]
    #: identities allowed to write read-only (system-owned) columns: the dual-write bridge and the seeder
    privileged_identities: ClassVar[frozenset[str]] = frozenset({INTEGRATION_IDENTITY, SYSTEM_IDENTITY})

    # ---- wiring -----------------------------------------------------------------------------------
    def roots(self) -> list[str]:
        """Every service root the service is mounted at (the first is the one URLs are printed with)."""
        return [self.root]

    def root_for(self, path: str) -> str:
        """The service root a request path came in under."""
        for root in self.roots():
            if path.startswith(root) or path + "/" == root:
                return root
        return self.root

    def register_endpoints(self, endpoints: Endpoints) -> None:  # noqa: B027 (a hook; most dialects add none)
        """Declare what the dialect serves beside the entity sets and the registered actions (called
        once, when the service is built)."""

    # ---- naming -----------------------------------------------------------------------------------
    def type_label(self, entity: EntityType) -> str:
        """The qualified type name used in messages and ``@odata.type``."""
        return f"{self.namespace}.{entity.name}"

    def entity_url(self, base: str, entity: EntityType, row: dict[str, Any]) -> str:
        """The URL of one row (``@odata.id``, ``Location``)."""
        return f"{base}{entity.entity_set}({self.format_key(entity, row)})"

    def format_key(self, entity: EntityType, row: dict[str, Any]) -> str:
        """The key predicate of a row, without parentheses."""
        return ",".join(f"{k}={format_literal(self.out_value(entity.properties[k], row.get(k)))}" for k in entity.key)

    def row_id_text(self, entity: EntityType, row: dict[str, Any]) -> str:
        """How a row is named in messages."""
        return self.format_key(entity, row)

    def rowid(self, row: dict[str, Any]) -> int:
        """The row's internal id."""
        return int(row[ROWID])

    # ---- keys -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def key_value(self, entity: EntityType, prop: Property, value: Any) -> Any:
        """A literal of a URL key predicate converted to the stored value (raises the dialect's error)."""

    def key_condition(self, entity: EntityType, column: Any, value: Any) -> Any:
        """The SQL condition matching ``column`` to a key value."""
        return column == value

    @abc.abstractmethod
    def invalid_key(self, entity: EntityType) -> SandboxError:
        """The error for a key predicate that names neither the key nor an alternate key."""

    def scope(self, entity: EntityType, state: RequestState) -> list[Any]:
        """SQL conditions limiting every read and lookup by key of ``entity`` in this request (F&O: the
        caller's company)."""
        return []

    def entity_conditions(self, entity: EntityType) -> list[Any]:
        """SQL conditions every collection read of ``entity`` adds."""
        return []

    # ---- values -----------------------------------------------------------------------------------
    def in_value(self, entity: EntityType, prop: Property, value: Any) -> Any:
        """A JSON value from a request body converted to the stored Python value, or BadRequest."""
        if value is None:
            return None
        try:
            return self._convert_in(prop, value)
        except (ValueError, TypeError, decimal.InvalidOperation, ArithmeticError):
            raise self.type_error(entity, prop, value) from None

    def stores_text_as_given(self, entity: EntityType, prop: Property) -> bool:
        """Whether :meth:`in_value` returns any ``str`` within the property's maximum length unchanged (lets
        the request-body loop skip the call for the commonest value)."""
        return prop.type == m.STRING and prop.enum is None

    @abc.abstractmethod
    def type_error(self, entity: EntityType, prop: Property, value: Any) -> SandboxError:
        """The error for a value that cannot be converted to its property's type."""

    def _convert_in(self, prop: Property, value: Any) -> Any:
        kind = prop.type
        if prop.enum is not None:
            return self.enum_in(prop, value)
        if kind == m.STRING:
            if not isinstance(value, str):
                raise TypeError
            if prop.max_length and len(value) > prop.max_length:
                raise BadRequest(
                    f"The length of the '{prop.name}' attribute exceeded the maximum allowed "
                    f"length of '{prop.max_length}'.",
                    codes.VALUE_OUT_OF_RANGE,
                )
            return value
        if kind in (m.INT32, m.INT64):
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                raise TypeError
            number = int(value)
            bits = 31 if kind == m.INT32 else 63
            if not -(2**bits) <= number < 2**bits:
                raise ValueError
            return number
        if kind == m.DECIMAL:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise TypeError
            amount = decimal.Decimal(str(value))
            if not amount.is_finite() or abs(amount) > _EDM_DECIMAL_MAX:
                raise ValueError  # what the services' .NET Decimal cannot hold, they cannot read either
            if prop.precision is not None and abs(amount) >= decimal.Decimal(10) ** (
                prop.precision - (prop.scale or 0)
            ):
                raise BadRequest(
                    f"A validation error occurred. The value {value} of '{prop.name}' is outside the valid range.",
                    codes.VALUE_OUT_OF_RANGE,
                )
            return amount
        if kind == m.DOUBLE:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise TypeError
            return float(value)
        if kind == m.BOOLEAN:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind == m.DATETIME:
            if not isinstance(value, str):
                raise TypeError
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)
        if kind == m.DATE:
            if not isinstance(value, str):
                raise TypeError
            return dt.date.fromisoformat(value[:10])
        if kind == m.GUID:
            if not isinstance(value, str) or not is_guid(value):
                raise ValueError
            return value.lower()
        raise TypeError

    def enum_in(self, prop: Property, value: Any) -> int:
        """An enum value from a body (its number, or a member name) as the stored number."""
        assert prop.enum is not None
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            if value not in prop.enum.members.values():
                raise BadRequest(
                    f"A validation error occurred. The value {value} of '{prop.name}' is outside the valid range.",
                    codes.VALUE_OUT_OF_RANGE,
                )
            return value
        if isinstance(value, str):
            number = prop.enum.value_of(value)
            if number is None:
                raise BadRequest(
                    f"The value '{value}' is not a valid member of enumeration "
                    f"'{prop.enum.qualified_name}' for property '{prop.name}'.",
                    codes.PAYLOAD_INVALID,
                )
            return number
        raise TypeError

    def out_value(self, prop: Property, value: Any) -> Any:
        """A stored value rendered as JSON."""
        if value is None:
            return None
        if prop.enum is not None and self.enums_as_names:
            return prop.enum.name_of(value) or str(value)
        if isinstance(value, decimal.Decimal):
            quantum = decimal.Decimal(1).scaleb(-(prop.scale if prop.scale is not None else 10))
            return float(value.quantize(quantum, rounding=decimal.ROUND_HALF_UP))
        if isinstance(value, float) and prop.type == m.DECIMAL:
            return round(value, prop.scale if prop.scale is not None else 10)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    # ---- rows -------------------------------------------------------------------------------------
    def etag(self, row: dict[str, Any]) -> str:
        """The row's etag (``@odata.etag``, ``ETag``, ``If-Match``)."""
        return f'W/"{row[ROWVERSION]}"'

    def serialize(
        self,
        entity: EntityType,
        row: dict[str, Any],
        select: list[str] | None,
        annotations: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One row as JSON: its etag and the ``select``-ed (else every visible) column."""
        out: dict[str, Any] = {"@odata.etag": self.etag(row)}
        out_value = self.out_value
        for name, prop, as_stored in self._columns_out(entity, select):
            value = row.get(name)
            out[name] = value if as_stored or value is None else out_value(prop, value)
        return out

    def _columns_out(self, entity: EntityType, select: list[str] | None) -> list[tuple[str, Property, bool]]:
        """The columns a row renders (``select``, else every visible one), each with whether its stored value
        is already its JSON value (text, integers, booleans, GUIDs that are not shown as enum names): a page
        of 5,000 rows renders them without a call per value."""
        cache: dict[tuple[str, tuple[str, ...] | None], list[tuple[str, Property, bool]]] = self.__dict__.setdefault(
            "_columns_out_cache", {}
        )
        signature = (entity.name, tuple(select) if select is not None else None)
        columns = cache.get(signature)
        if columns is None:
            names = select if select is not None else [n for n, p in entity.properties.items() if not p.hidden]
            columns = []
            for name in names:
                prop = entity.properties[name]
                as_stored = prop.type in _AS_STORED and not (prop.enum is not None and self.enums_as_names)
                columns.append((name, prop, as_stored))
            if len(cache) > 512:  # arbitrary $select lists must not grow it without end
                cache.clear()
            cache[signature] = columns
        return columns

    def effective_select(self, entity: EntityType, select: list[str] | None) -> list[str] | None:
        """The columns a row renders for a ``$select`` (Dataverse adds the key and the currency)."""
        return select

    def annotate(  # noqa: B027 (a hook; only Dataverse annotates)
        self,
        service: ODataService,
        entity: EntityType,
        rows: list[dict[str, Any]],
        rendered: list[dict[str, Any]],
        select: list[str] | None,
        state: RequestState | None = None,
    ) -> None:
        """Add instance annotations to ``rendered`` rows when the request (``state``) asked for them."""

    def collection_annotations(self, state: RequestState, total: int | None) -> dict[str, Any]:
        """Annotations of a collection answer beside ``@odata.count`` (``total``: the matching rows when
        ``$count=true`` was asked, else None). Dataverse: ``totalrecordcount`` on ask."""
        return {}

    def honour_preferences(self, state: RequestState) -> None:  # noqa: B027 (a hook; only Dataverse has more)
        """Record in ``state.applied`` the ``Prefer`` values honoured for the whole request, before it is
        handled (each is echoed in ``Preference-Applied`` when the request succeeds)."""

    # ---- query options and paging -------------------------------------------------------------------
    @abc.abstractmethod
    def check_options(self, args: dict[str, str]) -> None:
        """Refuse the query options this service does not take (all known to OData)."""

    @abc.abstractmethod
    def check_expand(self, item: ExpandItem) -> None:
        """Refuse the ``$expand`` forms this service does not take."""

    @abc.abstractmethod
    def cap_count(self, total: int) -> int:
        """The ``@odata.count`` shown for ``total`` matching rows."""

    @abc.abstractmethod
    def page_size(self, state: RequestState) -> int:
        """The rows a page holds for this request (``Prefer: odata.maxpagesize``)."""

    @abc.abstractmethod
    def page_offset(self, state: RequestState, options: QueryOptions) -> int:
        """The offset of the page asked for (``$skip`` or a ``$skiptoken``)."""

    @abc.abstractmethod
    def top_ignored_with_paging(self, state: RequestState) -> bool:
        """Whether ``$top`` yields to the page size in this request."""

    def top_ends_paging(self, state: RequestState) -> bool:
        """Whether a request with ``$top`` gets one page and never an ``@odata.nextLink`` (Dataverse)."""
        return False

    @abc.abstractmethod
    def next_link(self, state: RequestState, offset: int, page_size: int) -> str:
        """The ``@odata.nextLink`` of the page ending at ``offset``."""

    def collection_query(
        self, service: ODataService, entity: EntityType, state: RequestState, nested: bool
    ) -> Response | None:
        """A response for a collection GET that is not plain OData (Dataverse ``?fetchXml=``, change
        tracking), else None. ``nested`` is true for a collection reached through a navigation property."""
        return None

    # ---- writes -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def check_odata_annotation(self, entity: EntityType, name: str, value: Any) -> None:
        """Check an ``@odata.*`` annotation of a request body (``@odata.type`` must match)."""

    def complete_values(  # noqa: B027 (a hook; only F&O fills values in)
        self, entity: EntityType, values: dict[str, Any], state: RequestState, *, creating: bool
    ) -> None:
        """Fill in or drop column values of a validated body before it is written."""

    @abc.abstractmethod
    def lookup_write(self, entity: EntityType, name: str) -> SandboxError:
        """The error for a body writing a lookup column directly."""

    @abc.abstractmethod
    def malformed_json(self, detail: str) -> SandboxError:
        """The error for a request body that is not the JSON expected."""

    @abc.abstractmethod
    def created_response(
        self, service: ODataService, entity: EntityType, row: dict[str, Any], state: RequestState
    ) -> Response:
        """The answer to a POST that created ``row``."""

    def created_response_renders_row(self, state: RequestState) -> bool:
        """Whether :meth:`created_response` shows the created row's values (then they are read back as
        stored); a dialect answering with the key and the etag alone says False."""
        return True

    @abc.abstractmethod
    def upserted_response(
        self, service: ODataService, entity: EntityType, row: dict[str, Any], state: RequestState, *, created: bool
    ) -> Response:
        """The answer to a PATCH/PUT that updated ``row`` (or created it, as an upsert)."""

    # ---- errors -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def error_body(self, error: SandboxError) -> dict[str, Any]:
        """The JSON body of an error response."""

    def render_error(self, error: SandboxError) -> Response:
        """An error as the service's error response."""
        response = Response(
            json.dumps(self.error_body(error)), status=error.status, content_type="application/json; charset=utf-8"
        )
        response.headers["OData-Version"] = "4.0"
        for name, value in error.headers.items():
            response.headers[name] = value
        return response

    @abc.abstractmethod
    def not_found(self, entity: EntityType, key_text: str) -> SandboxError:
        """The error for a key that names no row."""

    @abc.abstractmethod
    def unknown_set(self, name: str) -> SandboxError:
        """The error for a path segment that names no entity set, operation or navigation."""

    @abc.abstractmethod
    def unknown_property(self, entity: EntityType, name: str) -> SandboxError:
        """The error for a name that is no property of ``entity`` (in a path or a body)."""
