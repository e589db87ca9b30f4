"""Dataverse metadata (``EntityDefinitions``) derived from the declared model.

Metadata clients (Microsoft's ``PowerPlatform-DataverseClient-Python``, XrmToolBox-style tools, code
generators) do not read ``$metadata``; they ask the metadata entity sets::

    GET EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$filter=LogicalName eq 'account'
    GET EntityDefinitions(LogicalName='account')/Attributes
        ?$filter=LogicalName eq 'name'&$select=LogicalName,AttributeType
    GET EntityDefinitions(LogicalName='account')/Attributes(LogicalName='x')
        /Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)
    GET EntityDefinitions(<MetadataId>)/Keys

This module builds those documents as plain dicts and offers the small query helpers the HTTP layer needs:
:func:`filter_definitions` (``$filter`` / ``$select``), :func:`project` (``$select`` / ``$expand``),
:func:`attributes_of_type` (type-cast segments), :func:`find_by_key` (``(LogicalName='x')`` / ``(<guid>)``),
:func:`parse_select` and :func:`parse_expand`.

As in Dataverse, ``Attributes`` and ``Keys`` of an entity and the ``OptionSet`` of an attribute are
navigation properties: the dicts carry them (``Attributes`` only on request), and :func:`project` drops them
unless they are expanded. MetadataIds are uuid5 values derived from names, so they are stable across runs.
"""

from __future__ import annotations

import re
import uuid
import zlib
from collections.abc import Iterable
from typing import Any

from sandbox.errors import BadRequest, NotFound
from sandbox.odata.dataverse.hierarchy import HIERARCHICAL_LOOKUPS
from sandbox.odata.dataverse.wire import NAMESPACE
from sandbox.odata.model import (
    BOOLEAN,
    DATE,
    DATETIME,
    DECIMAL,
    DOUBLE,
    GUID,
    INT32,
    INT64,
    STRING,
    EntityType,
    Model,
    Property,
)
from sandbox.odata.query.scanning import UnbalancedBrackets, UnterminatedLiteral, split_outside

LANGUAGE_CODE = 1033
DEFAULT_NAMESPACE = NAMESPACE
_METADATA_NAMESPACE = uuid.UUID("6d0f3c3e-2b7a-4f0e-9a53-0c1e5d6b8a10")

#: Navigation properties of the metadata types: carried in the dicts, emitted only when expanded.
NAVIGATION_PROPERTIES = frozenset(
    {
        "Attributes",
        "Keys",
        "OptionSet",
        "GlobalOptionSet",
        "ManyToOneRelationships",
        "OneToManyRelationships",
        "ManyToManyRelationships",
    }
)
#: Properties every projection keeps (Dataverse always returns them).
ALWAYS_KEPT = ("@odata.type", "MetadataId")

#: Real object type codes of the standard tables; other tables get a stable code from 10000 up.
KNOWN_OBJECT_TYPE_CODES: dict[str, int] = {
    "account": 1,
    "contact": 2,
    "opportunity": 3,
    "lead": 4,
    "annotation": 5,
    "systemuser": 8,
    "team": 9,
    "businessunit": 10,
    "organization": 1019,
    "pricelevel": 1022,
    "product": 1024,
    "productpricelevel": 1026,
    "uom": 1055,
    "uomschedule": 1056,
    "opportunityproduct": 1083,
    "quote": 1084,
    "quotedetail": 1085,
    "salesorder": 1088,
    "salesorderdetail": 1089,
    "invoice": 1090,
    "invoicedetail": 1091,
    "appointment": 4201,
    "email": 4202,
    "opportunityclose": 4208,
    "orderclose": 4209,
    "phonecall": 4210,
    "quoteclose": 4211,
    "task": 4212,
    "transactioncurrency": 9105,
}
_CUSTOM_CODE_BASE = 10000
_CUSTOM_CODE_SPAN = 40000

# (AttributeType, metadata type name without namespace/suffix)
_SIMPLE_TYPES: dict[str, tuple[str, str]] = {
    STRING: ("String", "String"),
    INT32: ("Integer", "Integer"),
    INT64: ("BigInt", "BigInt"),
    DOUBLE: ("Double", "Double"),
    BOOLEAN: ("Boolean", "Boolean"),
    DATETIME: ("DateTime", "DateTime"),
    DATE: ("DateTime", "DateTime"),
    GUID: ("Uniqueidentifier", "UniqueIdentifier"),
}
_MEMO_THRESHOLD = 4000


def _is_memo_column(name: str) -> bool:
    """Columns Dataverse declares as Multiple Lines of Text although within a String's 4,000 characters: the
    ``description`` of every table and the composite addresses (ENT ``account``: Description, Address1_Composite)."""
    return name == "description" or name.endswith("_composite")


# ---- labels and names ---------------------------------------------------------------------------------


#: key of ``EntityType.table.info`` where a service declares the RequiredLevel of columns beyond what the model's
#: ``Property.required`` and nullability say (``{"name": "ApplicationRequired"}``): Dataverse's Business Required
#: is metadata only, enforced by forms and not by the Web API
REQUIRED_LEVELS = "dataverse.required_levels"


def metadata_id(*parts: str) -> str:
    """A stable GUID for a metadata item named by ``parts`` (uuid5, so equal names give equal ids)."""
    return str(uuid.uuid5(_METADATA_NAMESPACE, "/".join(parts)))


def label(text: str | None, *, owner: str = "") -> dict[str, Any]:
    """A Dataverse ``Label``: ``UserLocalizedLabel`` plus ``LocalizedLabels`` in language 1033.

    An empty text gives the shape Dataverse uses for unset labels (no localized labels, null user label).
    """
    if not text:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    localized = {
        "Label": text,
        "LanguageCode": LANGUAGE_CODE,
        "IsManaged": True,
        "MetadataId": metadata_id("label", owner, text),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [dict(localized)], "UserLocalizedLabel": dict(localized)}


def _humanize(name: str) -> str:
    """``cdm_companycode`` -> ``Cdm Companycode``; ``accountnumber`` -> ``Accountnumber``."""
    words = [word for word in re.split(r"[_\s]+", name) if word]
    return " ".join(word[:1].upper() + word[1:] for word in words) or name


def schema_name(logical_name: str) -> str:
    """A SchemaName for a logical name: publisher prefixes stay lower case (``cdm_Company``), standard
    names get an upper-case first letter (``Account``)."""
    prefix, sep, rest = logical_name.partition("_")
    if sep and prefix and rest:
        return f"{prefix}_{rest[:1].upper()}{rest[1:]}"
    return logical_name[:1].upper() + logical_name[1:]


def lookup_logical_name(property_name: str) -> str | None:
    """``_primarycontactid_value`` -> ``primarycontactid``; None when the name is not a lookup column."""
    match = re.fullmatch(r"_(.+)_value", property_name)
    return match.group(1) if match else None


def object_type_codes(model: Model) -> dict[str, int]:
    """Object type codes for every entity: the real code for standard tables, else a stable code derived
    from the name (CRC32 into 10000-49999, probing past collisions in name order)."""
    codes: dict[str, int] = {}
    used: set[int] = set()
    for name in model.entities:
        if name in KNOWN_OBJECT_TYPE_CODES:
            codes[name] = KNOWN_OBJECT_TYPE_CODES[name]
            used.add(codes[name])
    for name in sorted(model.entities):
        if name in codes:
            continue
        offset = zlib.crc32(name.encode("utf-8")) % _CUSTOM_CODE_SPAN
        while _CUSTOM_CODE_BASE + offset in used:
            offset = (offset + 1) % _CUSTOM_CODE_SPAN
        codes[name] = _CUSTOM_CODE_BASE + offset
        used.add(codes[name])
    return codes


# ---- entity definitions ---------------------------------------------------------------------------------

RELATIONSHIP_NAVIGATIONS = ("OneToManyRelationships", "ManyToOneRelationships", "ManyToManyRelationships")


def entity_definitions(
    model: Model,
    dialect_label: str = DEFAULT_NAMESPACE,
    *,
    include_attributes: bool = False,
    include_relationships: bool = False,
) -> list[dict[str, Any]]:
    """One ``EntityMetadata`` dict per entity of ``model``, in declaration order.

    ``dialect_label`` is the namespace used in ``@odata.type`` values and seeds the MetadataIds.
    ``Keys`` (alternate keys) is always present; ``Attributes`` only with ``include_attributes=True``
    (what ``$expand=Attributes`` needs) and the three relationship collections only with
    ``include_relationships=True``. All are navigation properties: :func:`project` emits them only
    when expanded.
    """
    codes = object_type_codes(model)
    definitions = []
    for entity in model.entities.values():
        definition = _entity_definition(entity, dialect_label, codes[entity.name])
        if include_attributes:
            definition["Attributes"] = attributes(model, entity.name, namespace=dialect_label)
        if include_relationships:
            for kind in RELATIONSHIP_NAVIGATIONS:
                definition[kind] = entity_relationships(model, entity.name, kind, dialect_label)
        definitions.append(definition)
    return definitions


def _entity_definition(entity: EntityType, namespace: str, object_type_code: int) -> dict[str, Any]:
    name = entity.name
    return {
        "MetadataId": metadata_id(namespace, "entity", name),
        "LogicalName": name,
        "SchemaName": schema_name(name),
        "EntitySetName": entity.entity_set,
        "LogicalCollectionName": entity.entity_set,
        "CollectionSchemaName": schema_name(entity.entity_set),
        "PrimaryIdAttribute": entity.key[0] if entity.key else None,
        "PrimaryNameAttribute": entity.primary_name,
        "ObjectTypeCode": object_type_code,
        "DisplayName": label(_humanize(name), owner=f"{name}.DisplayName"),
        "DisplayCollectionName": label(_humanize(entity.entity_set), owner=f"{name}.DisplayCollectionName"),
        "Description": label(entity.description, owner=f"{name}.Description"),
        "IsCustomEntity": False,
        "IsManaged": True,
        "IsPrivate": False,
        "IsActivity": False,
        "IsIntersect": False,
        "IsLogicalEntity": False,
        "IsValidForAdvancedFind": True,
        "ChangeTrackingEnabled": bool(entity.tracked),
        "OwnershipType": "UserOwned",
        "TableType": "Standard",
        "Keys": [
            _key_definition(entity, namespace, index, key) for index, key in enumerate(entity.alternate_keys, start=1)
        ],
    }


def _key_definition(entity: EntityType, namespace: str, index: int, key: tuple[str, ...]) -> dict[str, Any]:
    logical_name = f"{entity.name}_key{index}"
    return {
        "MetadataId": metadata_id(namespace, "key", entity.name, logical_name),
        "LogicalName": logical_name,
        "SchemaName": schema_name(logical_name),
        "EntityLogicalName": entity.name,
        "KeyAttributes": [lookup_logical_name(part) or part for part in key],
        "DisplayName": label(f"{_humanize(entity.name)} key {index}", owner=f"{entity.name}.{logical_name}"),
        "EntityKeyIndexStatus": "Active",
        "IsManaged": True,
    }


# ---- relationships --------------------------------------------------------------------------------------

_CASCADE = {
    "Assign": "NoCascade",
    "Delete": "RemoveLink",
    "Merge": "NoCascade",
    "Reparent": "NoCascade",
    "Share": "NoCascade",
    "Unshare": "NoCascade",
    "RollupView": "NoCascade",
    "Archive": "NoCascade",
}


def relationships(model: Model, namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """One ``OneToManyRelationshipMetadata`` per lookup (FK-owning single-valued navigation) of the model.

    Each relationship shows up as ``OneToManyRelationships`` of the referenced table and
    ``ManyToOneRelationships`` of the referencing one (Dataverse serves the same type for both). The
    schema name is the collection navigation on the referenced table when the model declares one (as in
    Dataverse, where that navigation is named after the relationship), else ``<table>_<lookup>``.
    Clients such as the Python client's ``query.odata_expands`` read the navigation property names here.
    """
    result: list[dict[str, Any]] = []
    used: set[str] = set()
    for entity in model.entities.values():
        if entity.alias_of is not None:
            continue
        for nav in entity.navigations.values():
            if nav.many or not nav.owns_fk or nav.target not in model.entities:
                continue
            target = model.entities[nav.target]
            local = nav.pairs[0][0]
            referencing_attribute = lookup_logical_name(local) or local
            partner = nav.partner if nav.partner in target.navigations else None
            schema = partner or f"{entity.name}_{nav.name}"
            while schema in used:
                schema += "_"
            used.add(schema)
            result.append(
                {
                    "@odata.type": f"#{namespace}.OneToManyRelationshipMetadata",
                    "MetadataId": metadata_id(namespace, "relationship", schema),
                    "SchemaName": schema,
                    "RelationshipType": "OneToManyRelationship",
                    "IsCustomRelationship": False,
                    "IsManaged": True,
                    "IsValidForAdvancedFind": True,
                    "IsHierarchical": HIERARCHICAL_LOOKUPS.get(entity.name) == nav.name and entity.name == target.name,
                    "SecurityTypes": "Append" if entity.name != target.name else "None",
                    "ReferencedEntity": target.name,
                    "ReferencedAttribute": nav.pairs[0][1],
                    "ReferencingEntity": entity.name,
                    "ReferencingAttribute": referencing_attribute,
                    "ReferencedEntityNavigationPropertyName": partner,
                    "ReferencingEntityNavigationPropertyName": nav.name,
                    "RelationshipBehavior": 0,
                    "CascadeConfiguration": dict(_CASCADE),
                }
            )
    return result


def entity_relationships(
    model: Model, entity_name: str, kind: str, namespace: str = DEFAULT_NAMESPACE
) -> list[dict[str, Any]]:
    """The relationships navigation ``kind`` of ``entity_name`` addresses: ``OneToManyRelationships``
    (the table is referenced), ``ManyToOneRelationships`` (it references) or ``ManyToManyRelationships``
    (always empty: the sandbox tables have no N:N relationships)."""
    if entity_name not in model.entities:
        raise NotFound(f"Could not find entity with LogicalName = '{entity_name}'.")
    if kind == "ManyToManyRelationships":
        return []
    side = "ReferencedEntity" if kind == "OneToManyRelationships" else "ReferencingEntity"
    return [item for item in relationships(model, namespace) if item[side] == entity_name]


# ---- attributes -----------------------------------------------------------------------------------------


def attributes(model: Model, entity_name: str, *, namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """One ``AttributeMetadata`` dict per visible property of ``entity_name`` (hidden ones are left out).

    Lookup columns ``_x_value`` appear under their attribute name ``x`` with ``Targets``; choices are
    ``Picklist`` (``State`` for ``statecode``, ``Status`` for ``statuscode``) with their ``OptionSet``;
    booleans carry a ``BooleanOptionSetMetadata``. Raises NotFound for an unknown entity.
    """
    entity = model.entities.get(entity_name)
    if entity is None:
        raise NotFound(f"Could not find entity with LogicalName = '{entity_name}'.")
    result = []
    for column_number, prop in enumerate(entity.properties.values(), start=1):
        if prop.hidden:
            continue
        result.append(_attribute(model, entity, prop, namespace, column_number))
    return result


def _lookup_targets(model: Model, entity: EntityType, prop: Property) -> list[str]:
    targets: list[str] = []
    for nav in entity.navigations.values():
        owns = nav.owns_fk and not nav.many and any(local == prop.name for local, _ in nav.pairs)
        if (owns or nav.name == prop.lookup) and nav.target in model.entities and nav.target not in targets:
            targets.append(nav.target)
    return targets


def _attribute(model: Model, entity: EntityType, prop: Property, namespace: str, column_number: int) -> dict[str, Any]:
    is_primary_id = prop.name in entity.key
    lookup_name = lookup_logical_name(prop.name)
    is_lookup = prop.lookup is not None or (lookup_name is not None and prop.type == GUID)
    logical_name = (lookup_name or prop.name) if is_lookup else prop.name
    owner = f"{entity.name}.{logical_name}"
    extra: dict[str, Any] = {}

    if is_lookup:
        targets = _lookup_targets(model, entity, prop)
        if logical_name == "ownerid":
            attribute_type = "Owner"
        elif len(targets) > 1 and set(targets) <= {"account", "contact"}:
            attribute_type = "Customer"
        else:
            attribute_type = "Lookup"
        metadata_type = "Lookup"
        extra["Targets"] = targets
    elif prop.enum is not None:
        attribute_type = {"statecode": "State", "statuscode": "Status"}.get(prop.name, "Picklist")
        metadata_type = attribute_type
        extra["OptionSet"] = {
            "MetadataId": metadata_id(namespace, "optionset", entity.name, logical_name),
            "Name": f"{entity.name}_{logical_name}",
            "IsGlobal": False,
            "IsCustomOptionSet": False,
            "OptionSetType": attribute_type,
            "DisplayName": label(prop.label or _humanize(logical_name), owner=f"{owner}.OptionSet"),
            "Options": [
                {
                    "Value": value,
                    "Label": label(member, owner=f"{owner}.{value}"),
                    "Description": label(None),
                    "Color": None,
                    "IsManaged": True,
                    "ExternalValue": None,
                }
                for member, value in prop.enum.members.items()
            ],
        }
    elif prop.type == DECIMAL:
        attribute_type = "Money" if prop.scale == 4 else "Decimal"
        metadata_type = attribute_type
        extra["Precision"] = prop.scale if prop.scale is not None else 2
    elif prop.type == STRING and (
        (prop.max_length is not None and prop.max_length > _MEMO_THRESHOLD) or _is_memo_column(prop.name)
    ):
        attribute_type = metadata_type = "Memo"
        extra["MaxLength"] = prop.max_length
    elif prop.type in _SIMPLE_TYPES:
        attribute_type, metadata_type = _SIMPLE_TYPES[prop.type]
        if prop.type == STRING:
            extra["MaxLength"] = prop.max_length if prop.max_length is not None else _MEMO_THRESHOLD
            extra["FormatName"] = {"Value": "Text"}
        elif prop.type in (DATETIME, DATE):
            extra["Format"] = "DateOnly" if prop.type == DATE else "DateAndTime"
        elif prop.type == BOOLEAN:
            extra["OptionSet"] = {
                "MetadataId": metadata_id(namespace, "optionset", entity.name, logical_name),
                "Name": f"{entity.name}_{logical_name}",
                "IsGlobal": False,
                "OptionSetType": "Boolean",
                "TrueOption": {"Value": 1, "Label": label("Yes", owner=f"{owner}.1")},
                "FalseOption": {"Value": 0, "Label": label("No", owner=f"{owner}.0")},
            }
    else:
        attribute_type, metadata_type = "String", "String"

    declared: dict[str, str] = entity.table.info.get(REQUIRED_LEVELS, {}) if entity.table is not None else {}
    if is_primary_id:
        required_level = "SystemRequired"
    elif prop.name in declared:
        required_level = declared[prop.name]
    elif prop.required:
        required_level = "ApplicationRequired"
    elif not prop.nullable:
        required_level = "SystemRequired"
    else:
        required_level = "None"
    writable = not prop.read_only and not entity.read_only

    attribute: dict[str, Any] = {
        "@odata.type": f"#{namespace}.{metadata_type}AttributeMetadata",
        "MetadataId": metadata_id(namespace, "attribute", entity.name, logical_name),
        "LogicalName": logical_name,
        "SchemaName": schema_name(logical_name),
        "EntityLogicalName": entity.name,
        "AttributeType": attribute_type,
        "AttributeTypeName": {"Value": f"{attribute_type}Type"},
        "AttributeOf": None,
        "ColumnNumber": column_number,
        "DisplayName": label(prop.label or _humanize(logical_name), owner=f"{owner}.DisplayName"),
        "Description": label(prop.description, owner=f"{owner}.Description"),
        "IsPrimaryId": is_primary_id,
        "IsPrimaryName": prop.name == entity.primary_name,
        "IsCustomAttribute": False,
        "IsLogical": False,
        "IsManaged": True,
        "RequiredLevel": {
            "Value": required_level,
            "CanBeChanged": not is_primary_id,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "IsValidForCreate": writable,
        "IsValidForUpdate": writable and not is_primary_id,
        "IsValidForRead": True,
        "IsValidForAdvancedFind": {
            "Value": True,
            "CanBeChanged": False,
            "ManagedPropertyLogicalName": "canmodifysearchsettings",
        },
    }
    attribute.update(extra)
    return attribute


def attributes_of_type(attrs: list[dict[str, Any]], type_cast: str | None) -> list[dict[str, Any]]:
    """The attributes a type-cast segment selects (``Microsoft.Dynamics.CRM.PicklistAttributeMetadata``).

    ``None`` or the base ``AttributeMetadata`` keep everything. Like OData casts, the match is on
    ``@odata.type``, so ``PicklistAttributeMetadata`` does not include State/Status attributes.
    """
    if not type_cast:
        return list(attrs)
    wanted = type_cast.lstrip("#")
    if wanted.rsplit(".", 1)[-1] == "AttributeMetadata":
        return list(attrs)
    return [item for item in attrs if str(item.get("@odata.type", "")).lstrip("#") == wanted]


# ---- projection -----------------------------------------------------------------------------------------


def project(
    item: dict[str, Any], select: list[str] | None, expand: dict[str, list[str] | None] | None
) -> dict[str, Any]:
    """Apply ``$select`` and ``$expand`` to one metadata dict.

    Without ``select`` every structural property is kept; with it only the selected ones plus
    ``@odata.type`` and ``MetadataId``. Navigation properties (:data:`NAVIGATION_PROPERTIES`) appear only
    when named in ``expand``, projected with the nested ``$select`` given as the dict value; a navigation
    the item does not carry (e.g. ``OptionSet`` of a string attribute) is skipped. Expanding something that
    is not a navigation property raises BadRequest.
    """
    expand = expand or {}
    for name in expand:
        if name not in NAVIGATION_PROPERTIES:
            raise BadRequest(
                f"Property '{name}' on type 'Microsoft.Dynamics.CRM.MetadataBase' is not a "
                "navigation property or complex property. Only navigation properties can be "
                "expanded."
            )
    result: dict[str, Any] = {}
    wanted = None if select is None else set(select) | set(ALWAYS_KEPT)
    for key, value in item.items():
        if key in NAVIGATION_PROPERTIES:
            continue
        if wanted is None or key in wanted:
            result[key] = value
    for name, nested_select in expand.items():
        if name not in item:
            continue
        value = item[name]
        if isinstance(value, list):
            result[name] = [
                project(child, nested_select, None) if isinstance(child, dict) else child for child in value
            ]
        elif isinstance(value, dict):
            result[name] = project(value, nested_select, None)
        else:
            result[name] = value
    return result


def parse_select(text: str | None) -> list[str] | None:
    """``"LogicalName, EntitySetName"`` -> ``["LogicalName", "EntitySetName"]``; empty/None -> None."""
    if not text or not text.strip():
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_expand(text: str | None) -> dict[str, list[str] | None] | None:
    """``"OptionSet($select=Options),Keys"`` -> ``{"OptionSet": ["Options"], "Keys": None}``.

    Only a nested ``$select`` is understood; other nested options raise BadRequest.
    """
    if not text or not text.strip():
        return None
    result: dict[str, list[str] | None] = {}
    for part in _split_top_level(text, ","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"([A-Za-z_][\w.]*)\s*(?:\((.*)\))?", part, re.S)
        if match is None:
            raise BadRequest(f"Invalid $expand clause '{part}'.")
        name, options = match.group(1), match.group(2)
        nested: list[str] | None = None
        if options is not None and options.strip():
            for option in _split_top_level(options, ";"):
                key, sep, value = option.strip().partition("=")
                if not sep or key.strip() != "$select":
                    raise BadRequest(f"Unsupported $expand option '{option.strip()}' in metadata query.")
                nested = parse_select(value)
        result[name] = nested
    return result


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quotes and parentheses; text that does not pair up stays one term
    (which :func:`parse_expand` then refuses as an invalid clause)."""
    try:
        return split_outside(text, separator, "(", ")", stray_closer_fails=False)
    except (UnterminatedLiteral, UnbalancedBrackets):
        return [text]


# ---- addressing -----------------------------------------------------------------------------------------

_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def find_by_key(items: Iterable[dict[str, Any]], key: str, *, kind: str = "EntityMetadata") -> dict[str, Any]:
    """The item a key segment addresses: ``<guid>``, ``MetadataId=<guid>`` or ``LogicalName='x'``.

    ``kind`` only words the errors. Raises BadRequest for another key form, NotFound when nothing matches.
    """
    text = key.strip()
    match = re.fullmatch(r"(?:MetadataId\s*=\s*)?(" + _GUID_RE.pattern + r")", text)
    if match:
        prop, value = "MetadataId", match.group(1).lower()
    else:
        match = re.fullmatch(r"LogicalName\s*=\s*'((?:[^']|'')*)'", text)
        if match is None:
            raise BadRequest(f"Invalid key '{key}' for {kind}: use a MetadataId or LogicalName='<name>'.")
        prop, value = "LogicalName", match.group(1).replace("''", "'")
    for item in items:
        found = item.get(prop)
        if isinstance(found, str) and (found.lower() == value if prop == "MetadataId" else found == value):
            return item
    raise NotFound(f"Could not find {kind} with {prop} = '{value}'.")


# ---- $filter ----------------------------------------------------------------------------------------------


def filter_definitions(
    defs: list[dict[str, Any]],
    filter_text: str | None,
    select: list[str] | None,
    expand: dict[str, list[str] | None] | None = None,
) -> list[dict[str, Any]]:
    """Filter metadata dicts (entity definitions, attributes, keys) with ``$filter`` and project them.

    The filter language is a small subset of OData: ``<Path> <op> <literal>`` with ``eq ne gt ge lt le``,
    joined by ``and`` / ``or``, negated by ``not``, grouped by parentheses. Paths may step into nested dicts
    (``AttributeTypeName/Value``). Literals: ``'text'`` (``''`` escapes a quote), numbers, ``true``,
    ``false``, ``null``, GUIDs and enum literals (``Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'``).
    Anything else raises BadRequest. Every result goes through :func:`project` (navigation properties only
    when expanded).
    """
    predicate = _FilterParser(filter_text).parse() if filter_text and filter_text.strip() else None
    return [project(item, select, expand) for item in defs if predicate is None or predicate(item)]


_TOKEN_RE = re.compile(
    r"""
    \s*(?:
      (?P<enum>[A-Za-z_][\w.]*'(?:[^']|'')*')
    | (?P<string>'(?:[^']|'')*')
    | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![\w-])
    | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<name>[A-Za-z_@][\w./@]*)
    )""",
    re.X,
)

_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_MISSING = object()
Predicate = Any  # Callable[[dict[str, Any]], bool]


class _FilterParser:
    """Recursive descent over ``or`` > ``and`` > ``not`` > comparison / parenthesised expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        position = 0
        stripped = text.rstrip()
        while position < len(stripped):
            match = _TOKEN_RE.match(stripped, position)
            if match is None or match.end() == position:
                raise BadRequest(f"Syntax error at position {position} in '{text}'.")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def error(self, message: str) -> BadRequest:
        return BadRequest(f"{message} in $filter '{self.text}'.")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("Unexpected end of expression")
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1] == word:
            self.index += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.parse_or()
        if self.peek() is not None:
            raise self.error(f"Unexpected '{self.peek()[1]}'")  # type: ignore[index]
        return predicate

    def parse_or(self) -> Predicate:
        terms = [self.parse_and()]
        while self.keyword("or"):
            terms.append(self.parse_and())
        return terms[0] if len(terms) == 1 else (lambda item: any(term(item) for term in terms))

    def parse_and(self) -> Predicate:
        terms = [self.parse_not()]
        while self.keyword("and"):
            terms.append(self.parse_not())
        return terms[0] if len(terms) == 1 else (lambda item: all(term(item) for term in terms))

    def parse_not(self) -> Predicate:
        if self.keyword("not"):
            inner = self.parse_not()
            return lambda item: not inner(item)
        return self.parse_primary()

    def parse_primary(self) -> Predicate:
        kind, value = self.take()
        if kind == "lparen":
            inner = self.parse_or()
            if self.take()[0] != "rparen":
                raise self.error("Missing ')'")
            return inner
        if kind != "name" or value in _COMPARISONS | {"and", "or", "not", "true", "false", "null"}:
            raise self.error(f"Expected a property name, found '{value}'")
        path = value.split("/")
        operator_kind, operator = self.take()
        if operator_kind != "name" or operator not in _COMPARISONS:
            raise self.error(f"Unsupported operator or function '{operator}'")
        literal = self.literal()
        return lambda item: _compare(_resolve(item, path), operator, literal)

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "enum":
            return value[value.index("'") + 1 : -1].replace("''", "'")
        if kind == "guid":
            return value.lower()
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "name" and value in ("true", "false"):
            return value == "true"
        if kind == "name" and value == "null":
            return None
        raise self.error(f"Expected a literal, found '{value}'")


def _resolve(item: Any, path: list[str]) -> Any:
    current = item
    for step in path:
        if not isinstance(current, dict) or step not in current:
            return _MISSING
        current = current[step]
    return current


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(actual, str) and isinstance(expected, str) and _GUID_RE.fullmatch(expected):
        actual = actual.lower()
    if operator == "eq":
        if actual is None or expected is None:
            return actual is None and expected is None
        if isinstance(actual, bool) or isinstance(expected, bool):
            return type(actual) is type(expected) and actual == expected
        return bool(actual == expected)
    if operator == "ne":
        return not _compare(actual, "eq", expected)
    if actual is None or expected is None:
        return False
    try:
        if operator == "gt":
            return bool(actual > expected)
        if operator == "ge":
            return bool(actual >= expected)
        if operator == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    except TypeError:
        return False
