"""The entity data model (EDM) both mock services declare their tables with.

A service describes its tables as data (:class:`EntityType` with :class:`Property` and
:class:`NavigationProperty`); the shared OData layer derives from that one description the SQL table,
`$metadata`, query translation, serialization and validation. Nothing here knows about a dialect.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

# EDM primitive type names used across the project.
STRING = "Edm.String"
INT32 = "Edm.Int32"
INT64 = "Edm.Int64"
DECIMAL = "Edm.Decimal"
DOUBLE = "Edm.Double"
BOOLEAN = "Edm.Boolean"
DATETIME = "Edm.DateTimeOffset"
DATE = "Edm.Date"
GUID = "Edm.Guid"

PRIMITIVES = {STRING, INT32, INT64, DECIMAL, DOUBLE, BOOLEAN, DATETIME, DATE, GUID}

# Hidden bookkeeping columns every table carries (never serialized as properties).
ROWID = "_rowid"  # surrogate integer primary key; F&O shows it as RecId in etags
ROWVERSION = "_rowversion"  # increases on every write; Dataverse versionnumber / F&O RecVersion


@dataclass(frozen=True)
class EnumType:
    """An enumeration: F&O enums (serialized as member names) or Dataverse choices (serialized as ints).

    ``members`` maps the symbol (F&O) or label (Dataverse) to its integer value. ``labels`` gives a member's
    display text where it is not the symbol made readable (F&O's SalesStatus ``Backorder`` shows "Open order").
    """

    name: str
    members: dict[str, int]
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict, compare=False)

    def name_of(self, value: int | None) -> str | None:
        if value is None:
            return None
        try:
            return self._names_by_number.get(value)
        except TypeError:  # unhashable: equal to no member
            return None

    @functools.cached_property
    def _names_by_number(self) -> dict[int, str]:
        """The first member of each number (every F&O enum value of every page read was a scan of these)."""
        names: dict[int, str] = {}
        for member, number in self.members.items():
            names.setdefault(number, member)
        return names

    def value_of(self, name: str) -> int | None:
        lowered = name.lower()
        for member, number in self.members.items():
            if member.lower() == lowered:
                return number
        return None

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


@dataclass
class Property:
    """A structural property (a column).

    ``type`` is an EDM primitive name; choices/enums keep ``Edm.Int32`` storage and set ``enum``.
    ``read_only`` properties are computed or system-managed: writes to them are refused by the dialect.
    ``default`` is a constant or a zero-argument callable applied on create when the body omits the value.
    ``lookup`` names the navigation property that writes this column (Dataverse ``_x_value``).
    ``hidden`` properties are stored but never serialized (e.g. the target type of a polymorphic lookup).
    """

    name: str
    type: str = STRING
    nullable: bool = True
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    default: Any = None
    read_only: bool = False
    required: bool = False
    enum: EnumType | None = None
    label: str | None = None
    lookup: str | None = None
    description: str | None = None
    hidden: bool = False

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


@dataclass
class NavigationProperty:
    """A relationship. ``pairs`` joins local property names to target property names.

    Single-valued navigations that own the foreign key set ``owns_fk=True``: a write binding
    (``nav@odata.bind``) fills the local side of ``pairs``. ``condition`` adds constant equalities
    on the target (polymorphic lookups: ``{"_parentcustomerid_type": "account"}`` style checks live
    on the local side via ``local_condition``).
    """

    name: str
    target: str
    many: bool
    pairs: list[tuple[str, str]]
    owns_fk: bool = False
    local_condition: dict[str, Any] = field(default_factory=dict)
    target_condition: dict[str, Any] = field(default_factory=dict)
    partner: str | None = None


@dataclass
class EntityType:
    """One table/entity as served over OData.

    ``name`` is the type name (Dataverse logical name ``account``; F&O singular ``CustomerV3``).
    ``key`` lists the property names of the primary key (one GUID in Dataverse; a compound natural key
    including ``dataAreaId`` in F&O). ``alternate_keys`` lists further unique keys addressable by URL.
    ``alias_of`` names another entity whose table this one shares (F&O CDS entities are views over the
    same tables as their V2/V3 siblings); its properties must be a subset of the base entity's.
    ``company_property`` names the company column of company-specific entities (F&O ``dataAreaId``).
    """

    name: str
    entity_set: str
    key: tuple[str, ...]
    properties: dict[str, Property]
    navigations: dict[str, NavigationProperty] = field(default_factory=dict)
    alternate_keys: list[tuple[str, ...]] = field(default_factory=list)
    primary_name: str | None = None
    tracked: bool = True
    company_property: str | None = None
    read_only: bool = False
    description: str | None = None
    alias_of: str | None = None
    table: sa.Table | None = field(default=None, repr=False)

    def prop(self, name: str) -> Property | None:
        return self.properties.get(name)

    def column(self, name: str) -> sa.Column[Any]:
        assert self.table is not None, "model not bound to a MetaData"
        return self.table.c[name]


class Model:
    """All entity types of one service, bound to their own SQLAlchemy MetaData."""

    def __init__(
        self,
        namespace: str,
        entities: Iterable[EntityType],
        enums: Iterable[EnumType] = (),
        created_on: str | None = None,
        modified_on: str | None = None,
    ):
        self.namespace = namespace
        #: names of the properties the store stamps on create / on every write, when an entity has them
        self.created_on = created_on
        self.modified_on = modified_on
        self.metadata = sa.MetaData()
        self.entities: dict[str, EntityType] = {}
        self.by_set: dict[str, EntityType] = {}
        self.enums: dict[str, EnumType] = {e.name: e for e in enums}
        for entity in entities:
            self.add(entity)

    def add(self, entity: EntityType) -> None:
        if entity.name in self.entities or entity.entity_set in self.by_set:
            raise ValueError(f"duplicate entity {entity.name}/{entity.entity_set}")
        if entity.alias_of is not None:
            base = self.entities[entity.alias_of]
            unknown = set(entity.properties) - set(base.properties)
            if unknown:
                raise ValueError(f"{entity.name}: properties {sorted(unknown)} are not in {base.name}")
            entity.table = base.table
        else:
            entity.table = _build_table(self.metadata, entity)
        self.entities[entity.name] = entity
        self.by_set[entity.entity_set] = entity
        for prop in entity.properties.values():
            if prop.enum is not None:
                self.enums.setdefault(prop.enum.name, prop.enum)

    def entity(self, name: str) -> EntityType:
        return self.entities[name]

    def storage_name(self, name: str) -> str:
        """The entity whose table ``name`` is stored in (itself unless it is an alias)."""
        entity = self.entities[name]
        return entity.alias_of or entity.name

    def check(self) -> None:
        """Fail fast on a navigation or key that names something undeclared."""
        for entity in self.entities.values():
            for key_name in entity.key:
                if key_name not in entity.properties:
                    raise ValueError(f"{entity.name}: key {key_name} is not a property")
            for nav in entity.navigations.values():
                target = self.entities.get(nav.target)
                if target is None:
                    raise ValueError(f"{entity.name}.{nav.name}: unknown target {nav.target}")
                for local, remote in nav.pairs:
                    if local not in entity.properties or remote not in target.properties:
                        raise ValueError(f"{entity.name}.{nav.name}: bad pair {local}->{remote}")


def _sql_type(prop: Property) -> sa.types.TypeEngine[Any]:
    match prop.type:
        case "Edm.String":
            return sa.String(prop.max_length) if prop.max_length else sa.Text()
        case "Edm.Int32":
            return sa.Integer()
        case "Edm.Int64":
            return sa.BigInteger()
        case "Edm.Decimal":
            # Numeric loses nothing; SQLite stores it as REAL underneath, so amounts are rounded on output.
            return sa.Numeric(prop.precision or 23, prop.scale if prop.scale is not None else 10, asdecimal=True)
        case "Edm.Double":
            return sa.Float()
        case "Edm.Boolean":
            return sa.Boolean()
        case "Edm.DateTimeOffset":
            return sa.DateTime(timezone=True)
        case "Edm.Date":
            return sa.Date()
        case "Edm.Guid":
            return sa.String(36)
    raise ValueError(f"unsupported EDM type {prop.type}")


def _build_table(metadata: sa.MetaData, entity: EntityType) -> sa.Table:
    columns: list[sa.Column[Any]] = [
        sa.Column(ROWID, sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(ROWVERSION, sa.BigInteger, nullable=False, default=1),
    ]
    for prop in entity.properties.values():
        columns.append(sa.Column(prop.name, _sql_type(prop), nullable=True))
    table = sa.Table(entity.entity_set, metadata, *columns)
    sa.Index(f"ux_{entity.entity_set}_key", *[table.c[k] for k in entity.key], unique=True)
    for index, alt in enumerate(entity.alternate_keys):
        # Alternate keys are unique only when every part is set (NULLs never collide in SQL).
        sa.Index(f"ux_{entity.entity_set}_alt{index}", *[table.c[k] for k in alt], unique=True)
    for index, key in enumerate([entity.key, *entity.alternate_keys]):
        # $filter compares strings case-insensitively (lower(column) = 'value'), which no plain index
        # serves: without these, every lookup by key in a $filter (the bridge's "does it exist?") scans
        # the whole table. SQLite and PostgreSQL both index expressions.
        folded = [entity.properties[k].type == STRING and entity.properties[k].enum is None for k in key]
        if any(folded):
            sa.Index(
                f"ix_{entity.entity_set}_ci{index}",
                *[sa.func.lower(table.c[k]) if fold else table.c[k] for k, fold in zip(key, folded, strict=True)],
            )
    for nav in entity.navigations.values():
        if nav.owns_fk:
            for local, _ in nav.pairs:
                if local not in entity.key:
                    sa.Index(f"ix_{entity.entity_set}_{nav.name}", table.c[local])
                break
    return table


# ---- value conversion shared by readers and writers -------------------------------------------------

PythonValue = str | int | float | bool | decimal.Decimal | dt.datetime | dt.date | None


#: GUIDs come from a generator of their own, seeded from the OS (and again in a forked child): taking 16
#: bytes from the OS per GUID (``uuid.uuid4()``) was a few microseconds of every row an initial sync creates.
_guid_random = random.Random()
os.register_at_fork(after_in_child=_guid_random.seed)
_GUID_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)  # all but the version and variant bits
_GUID_V4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def new_guid() -> str:
    """A random (version 4) GUID in its lower-case text form, as ``str(uuid.uuid4())`` writes it."""
    digits = "%032x" % ((_guid_random.getrandbits(128) & _GUID_KEEP) | _GUID_V4)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


KeyValues = dict[str, Any]
Converter = Callable[[Any], Any]
Direction = Literal["in", "out"]
