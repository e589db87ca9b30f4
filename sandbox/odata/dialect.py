"""What differs between the Dataverse and F&O OData services, in one place.

The generic service (:mod:`sandbox.odata.service`) asks its dialect how to convert values, render rows,
etags, keys, errors and next links; everything else is shared.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import urllib.parse
from typing import Any

from flask import Response

from sandbox.errors import BadRequest, SandboxError
from sandbox.odata import model as m
from sandbox.odata.batch import BatchDialect
from sandbox.odata.model import ROWID, ROWVERSION, EntityType, Property
from sandbox.odata.options import FilterDialect
from sandbox.odata.urls import format_literal, is_guid

#: types whose stored Python value is already the JSON value (see Dialect.out_value)
_AS_STORED = frozenset({m.STRING, m.INT32, m.INT64, m.BOOLEAN, m.GUID})

JSON_CONTENT_TYPE = (
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
)


def query_string(args: dict[str, str]) -> str:
    """Encode query options the way OData services print them (``$skip=2``, not ``%24skip=2``)."""
    value_safe = "$'(),:*/@-"
    return "&".join(
        urllib.parse.quote(k, safe="$@-") + "=" + urllib.parse.quote(v, safe=value_safe) for k, v in args.items()
    )


class Dialect:
    """Base dialect. Subclasses: :class:`sandbox.odata.dataverse.DataverseDialect`, :class:`sandbox.odata.fno.FnoDialect`."""

    name = "odata"
    root = "/odata/"
    namespace = ""
    max_page_size = 5000
    allow_skip = True
    patch_upserts = False
    create_returns_body = False
    enums_as_names = False
    string_default = None
    filter_dialect = FilterDialect()
    batch_dialect: BatchDialect
    #: identities allowed to write read-only (system-owned) columns: the dual-write bridge and the seeder
    privileged_identities = frozenset({"dualwrite", "system"})

    # ---- naming -----------------------------------------------------------------------------------
    def type_label(self, entity: EntityType) -> str:
        return f"{self.namespace}.{entity.name}"

    def entity_url(self, base: str, entity: EntityType, row: dict[str, Any]) -> str:
        return f"{base}{entity.entity_set}({self.format_key(entity, row)})"

    def format_key(self, entity: EntityType, row: dict[str, Any]) -> str:
        return ",".join(f"{k}={format_literal(self.out_value(entity.properties[k], row.get(k)))}" for k in entity.key)

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

    def type_error(self, entity: EntityType, prop: Property, value: Any) -> SandboxError:
        return BadRequest(
            f"Cannot convert the literal '{value}' to the expected type '{prop.type}' "
            f"of property '{prop.name}' on type '{self.type_label(entity)}'.",
            "0x80048d19",
        )

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
                    "0x80044331",
                )
            return value
        if kind in (m.INT32, m.INT64):
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                raise TypeError
            number = int(value)
            if kind == m.INT32 and not -(2**31) <= number < 2**31:
                raise ValueError
            return number
        if kind == m.DECIMAL:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise TypeError
            number = decimal.Decimal(str(value))
            if not number.is_finite():
                raise ValueError
            return number
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
        assert prop.enum is not None
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            if value not in prop.enum.members.values():
                raise BadRequest(
                    f"A validation error occurred. The value {value} of '{prop.name}' is outside the valid range.",
                    "0x80044331",
                )
            return value
        if isinstance(value, str):
            number = prop.enum.value_of(value)
            if number is None:
                raise BadRequest(
                    f"The value '{value}' is not a valid member of enumeration "
                    f"'{prop.enum.qualified_name}' for property '{prop.name}'.",
                    "0x80048d19",
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
        return f'W/"{row[ROWVERSION]}"'

    def serialize(
        self,
        entity: EntityType,
        row: dict[str, Any],
        select: list[str] | None,
        annotations: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
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

    def created_response_renders_row(self, state: Any) -> bool:
        """Whether :meth:`created_response` shows the created row's values (then they are read back as
        stored); a dialect answering with the key and the etag alone says False."""
        return True

    # ---- collection reads in another query language -----------------------------------------------
    def collection_query(self, service: Any, entity: EntityType, state: Any, nested: bool) -> Response | None:
        """A response for a collection GET that is not plain OData (Dataverse ``?fetchXml=``), else None.

        ``nested`` is true for a collection reached through a navigation property.
        """
        return None

    # ---- errors -----------------------------------------------------------------------------------
    def error_body(self, error: SandboxError) -> dict[str, Any]:
        return {"error": {"code": error.code, "message": error.message}}

    def render_error(self, error: SandboxError) -> Response:
        response = Response(
            json.dumps(self.error_body(error)), status=error.status, content_type="application/json; charset=utf-8"
        )
        response.headers["OData-Version"] = "4.0"
        for name, value in error.headers.items():
            response.headers[name] = value
        return response

    # ---- messages that differ -----------------------------------------------------------------------
    def not_found(self, entity: EntityType, key_text: str) -> SandboxError:
        from sandbox.errors import NotFound

        return NotFound(f"Entity '{entity.name}' With Id = {key_text} Does Not Exist")

    def unknown_set(self, name: str) -> SandboxError:
        from sandbox.errors import NotFound

        return NotFound(f"Resource not found for the segment '{name}'.", "0x8006088a")

    def unknown_property(self, entity: EntityType, name: str) -> SandboxError:
        return BadRequest(
            f"An undeclared property '{name}' was found in the payload of type '{self.type_label(entity)}'.",
            "0x80048d19",
        )

    def row_id_text(self, entity: EntityType, row: dict[str, Any]) -> str:
        return self.format_key(entity, row)

    def rowid(self, row: dict[str, Any]) -> int:
        return int(row[ROWID])
