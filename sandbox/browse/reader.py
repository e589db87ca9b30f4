"""Reads for the data browser, through the service's own OData layer in this process.

Every read is an ordinary OData GET handed to :meth:`ODataService.handle` as the system identity (no HTTP
round trip, no journal entry, no fault), so the browser shows exactly what a client of the service would
read: the dialect's scope, serialization, annotations (Dataverse formatted values), paging and ``$filter``
syntax and errors. Nothing here queries the database itself.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.clients.keys import format_key
from sandbox.errors import SandboxError
from sandbox.odata.model import EntityType
from sandbox.odata.service import RequestState
from sandbox.wellknown import SYSTEM_IDENTITY

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService

#: an OData annotation on a property (``name@OData.Community.Display.V1.FormattedValue``)
ANNOTATION_MARK = "@"
FORMATTED_SUFFIX = "@OData.Community.Display.V1.FormattedValue"
#: every company's rows (F&O reads only the default company without it; other dialects ignore it)
READ_ALL_COMPANIES = {"cross-company": "true"}


class ReadError(Exception):
    """A read the service refused (a bad ``$filter``, an unknown key): ``message`` is the service's own text."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Page:
    """One page of an entity set as the service answered it."""

    rows: list[dict[str, Any]]
    #: the number of matching rows (the dialect may cap it, as Dataverse does at 5,000)
    total: int | None
    has_next: bool


@dataclass
class Lookup:
    """A single-valued navigation of a record and the row it points at (None when it points nowhere)."""

    name: str
    entity: EntityType
    row: dict[str, Any] | None
    key: str | None = None


@dataclass
class Record:
    """One row with its formatted values and lookups."""

    entity: EntityType
    row: dict[str, Any]
    formatted: dict[str, str] = field(default_factory=dict)
    lookups: list[Lookup] = field(default_factory=list)


class Reader:
    """The data browser's reads of one service (``service``: its :class:`ODataService`)."""

    def __init__(self, service: ODataService, base_url: str) -> None:
        self.service = service
        self.model = service.model
        self.dialect = service.dialect
        self.base_url = base_url

    # ---- the model ------------------------------------------------------------------------------------
    def entity_sets(self) -> list[EntityType]:
        """The entity sets with a table of their own (aliases read the same rows under another name)."""
        return sorted(
            (e for e in self.model.entities.values() if e.alias_of is None and e.table is not None),
            key=lambda e: e.entity_set.lower(),
        )

    def entity(self, entity_set: str) -> EntityType:
        entity = self.model.by_set.get(entity_set)
        if entity is None:
            raise ReadError(f"There is no entity set '{entity_set}'.", 404)
        return entity

    def columns(self, entity: EntityType) -> list[str]:
        """The properties a client can read, in the model's order."""
        return [name for name, prop in entity.properties.items() if not prop.hidden]

    def default_columns(self, entity: EntityType, limit: int = 8) -> list[str]:
        """The key, the primary name and the next few readable properties."""
        chosen = [k for k in entity.key]
        if entity.primary_name and entity.primary_name not in chosen:
            chosen.append(entity.primary_name)
        for name in self.columns(entity):
            if len(chosen) >= limit:
                break
            if name not in chosen:
                chosen.append(name)
        return chosen

    # ---- reads ----------------------------------------------------------------------------------------
    def get(self, path: str, args: dict[str, str] | None = None, page_size: int | None = None) -> Any:
        """The JSON (or text) of ``GET <root><path>?args``, as the system identity with every annotation
        (``Prefer: odata.maxpagesize=page_size`` when given)."""
        state = self._state(path, args or {}, page_size)
        try:
            response = self.service.handle("GET", path, state)
        except SandboxError as error:
            raise ReadError(error.message, error.status) from None
        if response.status_code == 204:
            return None
        text = response.get_data(as_text=True)
        if not (response.content_type or "").startswith("application/json"):
            return text
        return json.loads(text)

    def count(self, entity: EntityType) -> int | None:
        """The number of rows the service counts in ``entity``'s set (None when it refuses to count)."""
        try:
            text = self.get(f"{entity.entity_set}/$count")
        except ReadError:
            return None
        try:
            return int(str(text).strip())
        except ValueError:
            return None

    def page(self, entity: EntityType, *, columns: list[str], filter_text: str, number: int, size: int) -> Page:
        """Page ``number`` (from 0) of ``size`` rows, ``$filter``-ed and ``$select``-ed by the service."""
        # the key too, chosen or not: each row links to its record
        select = [*columns, *(k for k in entity.key if k not in columns)]
        args: dict[str, str] = {"$count": "true", "$select": ",".join(select)}
        if filter_text:
            args["$filter"] = filter_text
        if number > 0:
            args = self._page_args(entity, args, number * size, size)
        body = self.get(entity.entity_set, args, page_size=size)
        rows = body.get("value", []) if isinstance(body, dict) else []
        total = body.get("@odata.count") if isinstance(body, dict) else None
        return Page(rows, int(total) if total is not None else None, bool(body.get("@odata.nextLink")))

    def record(self, entity: EntityType, key: str) -> Record:
        """The row at ``key`` (a key predicate without its parentheses), its formatted values and lookups."""
        path = f"{entity.entity_set}({key})"
        row = self.get(path)
        if not isinstance(row, dict):
            raise ReadError(f"No {entity.entity_set} record has the key {key}.", 404)
        formatted = {
            name[: -len(FORMATTED_SUFFIX)]: str(value) for name, value in row.items() if name.endswith(FORMATTED_SUFFIX)
        }
        plain = {name: value for name, value in row.items() if ANNOTATION_MARK not in name}
        record = Record(entity, plain, formatted)
        for nav in entity.navigations.values():
            if nav.many:
                continue
            target = self.model.entities[nav.target]
            if any(local in plain and plain[local] in (None, "") for local, _ in nav.pairs):
                record.lookups.append(Lookup(nav.name, target, None))
                continue
            try:
                related = self.get(f"{path}/{nav.name}")
            except ReadError:
                related = None
            if isinstance(related, dict) and related:
                related = {k: v for k, v in related.items() if ANNOTATION_MARK not in k}
                record.lookups.append(Lookup(nav.name, target, related, self.key_of(target, related)))
            else:
                record.lookups.append(Lookup(nav.name, target, None))
        return record

    def key_of(self, entity: EntityType, row: dict[str, Any]) -> str | None:
        """The key predicate of ``row`` without parentheses (``<guid>``, ``dataAreaId='usmf',CustomerAccount='US-001'``)."""
        if any(row.get(k) is None for k in entity.key):
            return None
        if len(entity.key) == 1:
            value = row[entity.key[0]]
            try:
                return format_key(uuid.UUID(str(value)))[1:-1]
            except ValueError:
                return format_key(value)[1:-1]
        return format_key({k: row[k] for k in entity.key})[1:-1]

    # ---- helpers --------------------------------------------------------------------------------------
    def _state(self, path: str, args: dict[str, str], page_size: int | None = None) -> RequestState:
        args = {**READ_ALL_COMPANIES, **args}
        prefer = {"odata.include-annotations": "*"}
        if page_size is not None:
            prefer["odata.maxpagesize"] = str(page_size)
        return RequestState(
            identity=SYSTEM_IDENTITY, prefer=prefer, args=args, base_url=self.base_url + self.dialect.root, path=path
        )

    def _page_args(self, entity: EntityType, args: dict[str, str], offset: int, size: int) -> dict[str, str]:
        """The query of the page starting at ``offset``, as the dialect writes it in its next links
        (``$skip`` for F&O, a ``$skiptoken`` paging cookie for Dataverse)."""
        state = self._state(entity.entity_set, args, size)
        link = self.dialect.next_link(state, offset, size)
        return {k: v for k, v in parse_qsl(urlsplit(link).query, keep_blank_values=True) if k not in READ_ALL_COMPANIES}
