"""The F&O metadata service's documents, derived from the service's own model (one source of truth).

Beside ``/data/``, Finance & Operations serves a read-only OData service at ``/Metadata/`` that clients read
instead of the large ``$metadata`` document (``docs/reference/fno-odata.md`` section 1). Third-party clients
such as ``d365fo-client`` read an entity's schema there before every create, read, update and delete:

- ``DataEntities``: one row per data entity (the AOT name, ``CustCustomerV3Entity``), with its public names
  (``PublicEntityName``, ``PublicCollectionName``), ``EntityCategory``, ``DataServiceEnabled``,
  ``DataManagementEnabled``, ``IsReadOnly`` and ``LabelId``; keyed by ``Name``;
- ``PublicEntities``: one row per public entity (``CustomerV3``, set ``CustomersV3``) with its ``Properties``
  (``Name``, ``TypeName``, ``DataType``, ``LabelId``, ``IsKey``, ``IsMandatory``, ``AllowEdit``,
  ``AllowEditOnCreate``, ...), ``NavigationProperties`` (``Cardinality``, referential ``Constraints``),
  ``PropertyGroups`` and bound ``Actions``; keyed by ``Name``;
- ``PublicEnumerations``: one row per enum with its ``Members`` (``Name``, ``Value``, ``LabelId``);
- ``Labels(Id='@SYS...',Language='en-us')``: the text of a label.

Everything here is computed from the :class:`~sandbox.odata.model.Model` (entities, properties, keys,
navigations, enums), the service's registered actions and a few facts only F&O has (entity categories, the
system entities that carry the version actions), so a field added to the model shows up in the metadata too.

Labels: the model has texts, not F&O label IDs, so each text gets an ID in a label file of the sandbox's own
(``@SCM:CustomerAccount`` for "Customer account"), in the ``@<label file>:<name>`` form F&O uses for labels
of newer modules. An ID with no label answers with the ID itself as its text, as F&O's label lookup does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.odata import model as m
from sandbox.odata.actions import ActionSpec
from sandbox.odata.fno.dictquery import DocumentType
from sandbox.odata.fno.wire import NAMESPACE
from sandbox.odata.model import EntityType, Model, Property

#: the namespace of the metadata service's own types and enums
METADATA_NAMESPACE = "Microsoft.Dynamics.Metadata"
#: the languages labels are asked in are matched case-insensitively; the sandbox has one
DEFAULT_LANGUAGE = "en-us"
#: ``EntityCategory`` members (``Microsoft.Dynamics.Metadata.EntityCategory``)
ENTITY_CATEGORIES = ("Master", "Configuration", "Transaction", "Reference", "Document", "Parameters")

#: ``DataType`` (F&O's ODataXppType) of each EDM primitive
_DATA_TYPES = {
    m.STRING: "String",
    m.INT32: "Int32",
    m.INT64: "Int64",
    m.DECIMAL: "Real",
    m.DOUBLE: "Real",
    m.BOOLEAN: "Enum",
    m.DATETIME: "UtcDateTime",
    m.DATE: "Date",
    m.GUID: "Guid",
}


@dataclass(frozen=True)
class SystemEntity:
    """A platform entity the service answers beside the model's (``DataManagementEntities``): its names, key
    properties and the collection-bound actions it carries (action name -> return type)."""

    name: str
    entity_set: str
    technical_name: str
    properties: tuple[str, ...]
    actions: Mapping[str, str] = field(default_factory=dict)
    category: str = "Reference"


@dataclass(frozen=True)
class CatalogFacts:
    """What the model cannot say: each entity's category (by public name, default ``Master``), the label file
    of the sandbox's label IDs, and the platform entities served beside the model's."""

    categories: Mapping[str, str] = field(default_factory=dict)
    default_category: str = "Master"
    label_file: str = "SCM"
    system_entities: tuple[SystemEntity, ...] = ()


def humanize(name: str) -> str:
    """``CustomerAccount`` -> ``Customer account``, ``CustomersV3`` -> ``Customers V3``, ``CDSSalesOrderHeaders``
    -> ``CDS sales order headers``."""
    words: list[str] = []
    for word in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name):
        if word.isdigit() and words and words[-1] == "V":
            words[-1] = f"V{word}"  # entity versions read V2, V3
        else:
            words.append(word)
    if not words:
        return name
    first = words[0][:1].upper() + words[0][1:]
    rest = [
        word if word.isupper() or word[:1].isdigit() or re.fullmatch(r"V\d+", word) else word.lower()
        for word in words[1:]
    ]
    return " ".join([first, *rest])


class Labels:
    """Label texts by ID, each text given an ID in the label file once."""

    def __init__(self, label_file: str) -> None:
        self.label_file = label_file
        self._texts: dict[str, str] = {}
        self._folded: dict[str, str] = {}

    def id_for(self, text: str) -> str:
        """The ID of ``text`` (``Customer account`` -> ``@SCM:CustomerAccount``), registered on first use."""
        words = re.findall(r"[A-Za-z0-9]+", text)
        name = "".join(word[:1].upper() + word[1:] for word in words) or "Blank"
        label_id = f"@{self.label_file}:{name}"
        self._texts.setdefault(label_id, text)
        self._folded.setdefault(label_id.lower(), label_id)
        return label_id

    def text(self, label_id: str) -> str | None:
        """The text of ``label_id`` (IDs compare case-insensitively), None when there is no such label."""
        found = self._texts.get(label_id)
        if found is None:
            exact = self._folded.get(label_id.lower())
            found = self._texts.get(exact) if exact else None
        return found

    def items(self) -> list[tuple[str, str]]:
        """Every (ID, text), in the order the IDs were given."""
        return list(self._texts.items())

    def __len__(self) -> int:
        return len(self._texts)


#: the document types of the collections (for $select, $filter and error texts)
DATA_ENTITY_TYPE = DocumentType(
    f"{METADATA_NAMESPACE}.DataEntity",
    (
        "Name",
        "PublicEntityName",
        "PublicCollectionName",
        "LabelId",
        "EntityCategory",
        "DataServiceEnabled",
        "DataManagementEnabled",
        "IsReadOnly",
    ),
    {"EntityCategory": f"{METADATA_NAMESPACE}.EntityCategory"},
)
PUBLIC_ENTITY_TYPE = DocumentType(
    f"{METADATA_NAMESPACE}.PublicEntity",
    (
        "Name",
        "EntitySetName",
        "LabelId",
        "IsReadOnly",
        "ConfigurationEnabled",
        "Properties",
        "NavigationProperties",
        "PropertyGroups",
        "Actions",
    ),
    {},
)
PUBLIC_ENUMERATION_TYPE = DocumentType(f"{METADATA_NAMESPACE}.PublicEnumeration", ("Name", "LabelId", "Members"), {})
LABEL_TYPE = DocumentType(f"{METADATA_NAMESPACE}.Label", ("Id", "Language", "Value"), {})


class MetadataCatalog:
    """The metadata service's documents for one model, built once (the model does not change while served)."""

    def __init__(self, model: Model, actions: Iterable[ActionSpec] = (), facts: CatalogFacts | None = None) -> None:
        self.facts = facts or CatalogFacts()
        self.labels = Labels(self.facts.label_file)
        specs = list(actions)
        self.public_entities: list[dict[str, Any]] = []
        self.data_entities: list[dict[str, Any]] = []
        for entity in model.entities.values():
            self._add_model_entity(entity, [s for s in specs if s.bound_to == entity.name])
        for system in self.facts.system_entities:
            self._add_system_entity(system)
        self.public_enumerations = [self._enumeration(enum) for enum in model.enums.values()]
        self._by_name = {
            "PublicEntities": {doc["Name"]: doc for doc in self.public_entities},
            "DataEntities": {doc["Name"]: doc for doc in self.data_entities},
            "PublicEnumerations": {doc["Name"]: doc for doc in self.public_enumerations},
        }

    def collection(self, name: str) -> list[dict[str, Any]]:
        """The documents of ``DataEntities``, ``PublicEntities`` or ``PublicEnumerations``."""
        return {
            "DataEntities": self.data_entities,
            "PublicEntities": self.public_entities,
            "PublicEnumerations": self.public_enumerations,
        }[name]

    def find(self, collection: str, name: str) -> dict[str, Any] | None:
        """One document of ``collection`` by its ``Name`` (exact first, then ignoring case). A public entity is
        also found by its entity set name (``PublicEntities('CustomersV3')``), which clients often have in hand."""
        documents = self._by_name[collection]
        found = documents.get(name)
        lowered = name.lower()
        if found is None:
            found = next((doc for key, doc in documents.items() if key.lower() == lowered), None)
        if found is None and collection == "PublicEntities":
            found = next((doc for doc in documents.values() if doc["EntitySetName"].lower() == lowered), None)
        return found

    # ---- building --------------------------------------------------------------------------------------
    def _category(self, name: str) -> str:
        return self.facts.categories.get(name, self.facts.default_category)

    def _add_model_entity(self, entity: EntityType, actions: list[ActionSpec]) -> None:
        label_id = self.labels.id_for(humanize(entity.entity_set))
        self.data_entities.append(
            {
                "Name": entity.description or f"{entity.name}Entity",
                "PublicEntityName": entity.name,
                "PublicCollectionName": entity.entity_set,
                "LabelId": label_id,
                "EntityCategory": self._category(entity.name),
                "DataServiceEnabled": True,
                "DataManagementEnabled": True,
                "IsReadOnly": entity.read_only,
            }
        )
        self.public_entities.append(
            {
                "Name": entity.name,
                "EntitySetName": entity.entity_set,
                "LabelId": label_id,
                "IsReadOnly": entity.read_only,
                "ConfigurationEnabled": True,
                "Properties": [self._property(entity, prop) for prop in entity.properties.values() if not prop.hidden],
                "NavigationProperties": [
                    {
                        "Name": nav.name,
                        "RelatedEntity": nav.target,
                        "RelatedRelationName": nav.partner or "",
                        "Cardinality": "Multiple" if nav.many else "Single",
                        "Constraints": [
                            {
                                "@odata.type": f"#{METADATA_NAMESPACE}.ReferentialConstraint",
                                "Property": local,
                                "ReferencedProperty": remote,
                            }
                            for local, remote in nav.pairs
                        ],
                    }
                    for nav in entity.navigations.values()
                ],
                "PropertyGroups": [],
                "Actions": [self._action(spec) for spec in actions],
            }
        )

    def _property(self, entity: EntityType, prop: Property) -> dict[str, Any]:
        is_key = prop.name in entity.key
        # The company is a key part that F&O fills in from the caller's company: never mandatory in a body.
        defaulted = prop.name == entity.company_property
        if prop.enum is not None:
            type_name, data_type = prop.enum.qualified_name or f"{NAMESPACE}.{prop.enum.name}", "Enum"
        else:
            type_name, data_type = prop.type, _data_type(prop)
        writable = not (prop.read_only or entity.read_only)
        return {
            "Name": prop.name,
            "TypeName": type_name,
            "DataType": data_type,
            "LabelId": self.labels.id_for(prop.label or humanize(prop.name)),
            "IsKey": is_key,
            "IsMandatory": (is_key and not defaulted) or prop.required,
            "ConfigurationEnabled": True,
            "AllowEdit": writable and not is_key,
            "AllowEditOnCreate": writable,
            "IsDimension": False,
            "DimensionRelation": "",
            "IsDynamicDimension": False,
            "DimensionLegalEntityProperty": "",
            "DimensionTypeProperty": "",
        }

    def _action(self, spec: ActionSpec) -> dict[str, Any]:
        returns = spec.returns
        return {
            "Name": spec.name,
            "BindingKind": "BoundToEntitySet" if spec.collection_bound else "BoundToEntityInstance",
            "FieldLookup": None,
            "Parameters": [
                {"Name": name, "Type": _type_info(type_name)} for name, type_name in spec.parameters.items()
            ],
            "ReturnType": _type_info(returns) if returns else None,
        }

    def _add_system_entity(self, system: SystemEntity) -> None:
        label_id = self.labels.id_for(humanize(system.entity_set))
        self.data_entities.append(
            {
                "Name": system.technical_name,
                "PublicEntityName": system.name,
                "PublicCollectionName": system.entity_set,
                "LabelId": label_id,
                "EntityCategory": system.category,
                "DataServiceEnabled": True,
                "DataManagementEnabled": False,
                "IsReadOnly": True,
            }
        )
        self.public_entities.append(
            {
                "Name": system.name,
                "EntitySetName": system.entity_set,
                "LabelId": label_id,
                "IsReadOnly": True,
                "ConfigurationEnabled": True,
                "Properties": [
                    {
                        "Name": name,
                        "TypeName": m.STRING,
                        "DataType": "String",
                        "LabelId": self.labels.id_for(humanize(name)),
                        "IsKey": index == 0,
                        "IsMandatory": index == 0,
                        "ConfigurationEnabled": True,
                        "AllowEdit": False,
                        "AllowEditOnCreate": False,
                        "IsDimension": False,
                        "DimensionRelation": "",
                        "IsDynamicDimension": False,
                        "DimensionLegalEntityProperty": "",
                        "DimensionTypeProperty": "",
                    }
                    for index, name in enumerate(system.properties)
                ],
                "NavigationProperties": [],
                "PropertyGroups": [],
                "Actions": [
                    {
                        "Name": name,
                        "BindingKind": "BoundToEntitySet",
                        "FieldLookup": None,
                        "Parameters": [],
                        "ReturnType": _type_info(returns),
                    }
                    for name, returns in system.actions.items()
                ],
            }
        )

    def _enumeration(self, enum: m.EnumType) -> dict[str, Any]:
        return {
            "Name": enum.name,
            "LabelId": self.labels.id_for(humanize(enum.name)),
            "Members": [
                {
                    "Name": member,
                    "Value": value,
                    "LabelId": self.labels.id_for(enum.labels.get(member) or humanize(member)),
                    "ConfigurationEnabled": True,
                }
                for member, value in enum.members.items()
            ],
        }


def _data_type(prop: Property) -> str:
    if prop.type == m.DATETIME and isinstance(prop.default, dt.datetime) and prop.default.hour == 12:
        # F&O's date-only fields are served as Edm.DateTimeOffset at 12:00:00Z (the model's convention)
        return "Date"
    return _DATA_TYPES.get(prop.type, "String")


def _type_info(type_name: str) -> dict[str, Any]:
    """``{"TypeName": ..., "IsCollection": ...}`` of an action's parameter or return type."""
    collection = type_name.startswith("Collection(") and type_name.endswith(")")
    inner = type_name[len("Collection(") : -1] if collection else type_name
    if "." not in inner:
        inner = f"{NAMESPACE}.{inner}"  # an entity type of the service, named unqualified by its registration
    return {"TypeName": inner, "IsCollection": collection}
