"""CSDL 4.0 (``$metadata``) rendering of a declared :class:`~sandbox.odata.model.Model`.

One renderer serves both services; ``dialect`` selects what differs between them:

* **Dataverse** (``Microsoft.Dynamics.CRM``): the schema carries ``Alias="mscrm"``, every entity type derives
  from the abstract ``crmbaseentity`` (the type Dataverse actions such as QualifyLead return collections of),
  choices stay ``Edm.Int32`` properties (no ``EnumType``), lookups that own their foreign key get a
  ``ReferentialConstraint`` from ``_x_value`` to the target key, bound operations name their binding parameter
  ``entity`` / ``entityset``, the container is ``System``, and ``annotations=True`` adds
  ``Org.OData.Capabilities.V1.ChangeTracking`` on the sets of tracked tables.
* **F&O** (``Microsoft.Dynamics.DataEntities``): no alias, enums are ``EnumType`` elements and enum-typed
  properties reference them, single-valued navigations carry their referential constraints, bound operations
  name their binding parameter after the entity type, and the container is ``Resources``.

The document is built with :mod:`xml.etree.ElementTree`, so every name and value is escaped. Nothing is
cached here; the caller caches the rendered text per model.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Literal

from sandbox.odata.actions import ActionSpec
from sandbox.odata.model import DECIMAL, INT32, EntityType, EnumType, Model, NavigationProperty, Property

Dialect = Literal["dataverse", "fno"]

EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
CAPABILITIES_NS = "Org.OData.Capabilities.V1"
CAPABILITIES_URI = "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Capabilities.V1.xml"

#: Schema alias Dataverse declares for ``Microsoft.Dynamics.CRM``.
DATAVERSE_ALIAS = "mscrm"
#: Abstract base type of every Dataverse table (what ``Collection(mscrm.crmbaseentity)`` results refer to).
DATAVERSE_BASE_TYPE = "crmbaseentity"
#: Entity container names of the real services.
CONTAINER_NAMES: dict[str, str] = {"dataverse": "System", "fno": "Resources"}


def render_csdl(model: Model, actions: list[ActionSpec], *, dialect: Dialect, annotations: bool = False) -> str:
    """Render ``model`` and its operations as a CSDL 4.0 ``$metadata`` document.

    Properties marked ``hidden`` are left out everywhere (types, keys, constraints). Every entity gets an
    entity set (aliases included) with a navigation property binding per navigation. Unbound actions and
    functions also get an ``ActionImport`` / ``FunctionImport``. ``annotations`` only changes Dataverse
    output (change-tracking capability annotations, as ``$metadata?annotations=true`` returns them).
    """
    if dialect not in CONTAINER_NAMES:
        raise ValueError(f"unknown dialect {dialect!r}")
    renderer = _Renderer(model, dialect, annotations)
    root = renderer.document(actions)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


class _Renderer:
    """Builds the element tree for one model and dialect."""

    def __init__(self, model: Model, dialect: Dialect, annotations: bool) -> None:
        self.model = model
        self.dialect = dialect
        self.ns = model.namespace
        self.dataverse = dialect == "dataverse"
        self.annotate = annotations and self.dataverse
        # Dataverse tables derive from crmbaseentity unless the model declares a type of that name itself.
        self.base_type = DATAVERSE_BASE_TYPE if self.dataverse and DATAVERSE_BASE_TYPE not in model.entities else None

    # ---- naming ----------------------------------------------------------------------------------------

    def qualified(self, name: str) -> str:
        """The namespace-qualified name of a type declared in this schema."""
        return f"{self.ns}.{name}"

    def enum_namespace(self, enum: EnumType) -> str:
        return enum.namespace or self.ns

    def type_ref(self, type_name: str) -> str:
        """Qualify a type name given by an action spec: bare entity names (also inside ``Collection(...)``)
        become ``<namespace>.<name>``; EDM primitives and already qualified names pass unchanged."""
        if type_name.startswith("Collection(") and type_name.endswith(")"):
            return f"Collection({self.type_ref(type_name[len('Collection(') : -1])})"
        if type_name in self.model.entities or type_name == self.base_type:
            return self.qualified(type_name)
        if type_name in self.model.enums and not self.dataverse:
            enum = self.model.enums[type_name]
            return f"{self.enum_namespace(enum)}.{enum.name}"
        return type_name

    def property_type(self, prop: Property) -> str:
        if prop.enum is not None and not self.dataverse:
            return f"{self.enum_namespace(prop.enum)}.{prop.enum.name}"
        if prop.enum is not None:
            return INT32
        return prop.type

    # ---- document --------------------------------------------------------------------------------------

    def document(self, actions: list[ActionSpec]) -> ET.Element:
        root = ET.Element("edmx:Edmx", {"Version": "4.0", "xmlns:edmx": EDMX_NS})
        if self.annotate:
            reference = ET.SubElement(root, "edmx:Reference", {"Uri": CAPABILITIES_URI})
            ET.SubElement(reference, "edmx:Include", {"Namespace": CAPABILITIES_NS, "Alias": "Capabilities"})
        services = ET.SubElement(root, "edmx:DataServices")
        schema_attrs = {"Namespace": self.ns}
        if self.dataverse:
            schema_attrs["Alias"] = DATAVERSE_ALIAS
        schema_attrs["xmlns"] = EDM_NS
        schema = ET.SubElement(services, "Schema", schema_attrs)

        foreign_enums: dict[str, list[EnumType]] = {}
        if not self.dataverse:
            for enum in self.model.enums.values():
                namespace = self.enum_namespace(enum)
                if namespace == self.ns:
                    schema.append(self.enum_type(enum))
                else:
                    foreign_enums.setdefault(namespace, []).append(enum)

        if self.base_type is not None:
            ET.SubElement(schema, "EntityType", {"Name": self.base_type, "Abstract": "true"})
        for entity in self.model.entities.values():
            schema.append(self.entity_type(entity))
        for spec in actions:
            schema.append(self.operation(spec))
        schema.append(self.container(actions))

        for namespace, enums in foreign_enums.items():
            other = ET.SubElement(services, "Schema", {"Namespace": namespace, "xmlns": EDM_NS})
            for enum in enums:
                other.append(self.enum_type(enum))
        return root

    def enum_type(self, enum: EnumType) -> ET.Element:
        element = ET.Element("EnumType", {"Name": enum.name})
        for member, value in enum.members.items():
            ET.SubElement(element, "Member", {"Name": member, "Value": str(value)})
        return element

    def entity_type(self, entity: EntityType) -> ET.Element:
        attrs = {"Name": entity.name}
        if self.base_type is not None:
            attrs["BaseType"] = self.qualified(self.base_type)
        element = ET.Element("EntityType", attrs)
        key = ET.SubElement(element, "Key")
        for name in entity.key:
            ET.SubElement(key, "PropertyRef", {"Name": name})
        for prop in entity.properties.values():
            if not prop.hidden:
                element.append(self.property(prop, prop.name in entity.key))
        for nav in entity.navigations.values():
            element.append(self.navigation(entity, nav))
        return element

    def property(self, prop: Property, is_key: bool) -> ET.Element:
        attrs = {"Name": prop.name, "Type": self.property_type(prop)}
        if is_key or not prop.nullable:
            attrs["Nullable"] = "false"
        if prop.max_length is not None and prop.type == "Edm.String":
            attrs["MaxLength"] = str(prop.max_length)
        if prop.type == DECIMAL and prop.enum is None:
            if prop.precision is not None:
                attrs["Precision"] = str(prop.precision)
            # CSDL defaults Scale to 0 (whole numbers); say "Variable" when the model does not fix one.
            attrs["Scale"] = str(prop.scale) if prop.scale is not None else "Variable"
        return ET.Element("Property", attrs)

    def navigation(self, entity: EntityType, nav: NavigationProperty) -> ET.Element:
        target = self.qualified(nav.target)
        attrs = {"Name": nav.name, "Type": f"Collection({target})" if nav.many else target}
        if nav.partner:
            attrs["Partner"] = nav.partner
        element = ET.Element("NavigationProperty", attrs)
        if self.constrained(entity, nav):
            for local, remote in nav.pairs:
                ET.SubElement(element, "ReferentialConstraint", {"Property": local, "ReferencedProperty": remote})
        return element

    def constrained(self, entity: EntityType, nav: NavigationProperty) -> bool:
        """Whether ``nav`` gets ``ReferentialConstraint`` children: single-valued only, and for Dataverse
        only lookups that own their foreign key; never when a constrained property is hidden or undeclared."""
        if nav.many or not nav.pairs or (self.dataverse and not nav.owns_fk):
            return False
        target = self.model.entities.get(nav.target)
        for local, remote in nav.pairs:
            local_prop = entity.properties.get(local)
            remote_prop = target.properties.get(remote) if target is not None else None
            if local_prop is None or remote_prop is None or local_prop.hidden or remote_prop.hidden:
                return False
        return True

    def binding_parameter_name(self, spec: ActionSpec) -> str:
        if self.dataverse:
            return "entityset" if spec.collection_bound else "entity"
        return str(spec.bound_to)

    def operation(self, spec: ActionSpec) -> ET.Element:
        attrs = {"Name": spec.name}
        if spec.bound_to is not None:
            attrs["IsBound"] = "true"
        element = ET.Element("Function" if spec.is_function else "Action", attrs)
        if spec.bound_to is not None:
            bound = self.type_ref(spec.bound_to)
            ET.SubElement(
                element,
                "Parameter",
                {
                    "Name": self.binding_parameter_name(spec),
                    "Type": f"Collection({bound})" if spec.collection_bound else bound,
                    "Nullable": "false",
                },
            )
        for name, type_name in spec.parameters.items():
            ET.SubElement(element, "Parameter", {"Name": name, "Type": self.type_ref(type_name)})
        if spec.returns:
            ET.SubElement(element, "ReturnType", {"Type": self.type_ref(spec.returns)})
        return element

    def container(self, actions: list[ActionSpec]) -> ET.Element:
        container = ET.Element("EntityContainer", {"Name": CONTAINER_NAMES[self.dialect]})
        for entity in self.model.entities.values():
            entity_set = ET.SubElement(
                container, "EntitySet", {"Name": entity.entity_set, "EntityType": self.qualified(entity.name)}
            )
            for nav in entity.navigations.values():
                target = self.model.entities.get(nav.target)
                if target is not None:
                    ET.SubElement(
                        entity_set, "NavigationPropertyBinding", {"Path": nav.name, "Target": target.entity_set}
                    )
            if self.annotate and entity.tracked:
                annotation = ET.SubElement(entity_set, "Annotation", {"Term": f"{CAPABILITIES_NS}.ChangeTracking"})
                record = ET.SubElement(annotation, "Record")
                ET.SubElement(record, "PropertyValue", {"Property": "Supported", "Bool": "true"})
        imported: set[str] = set()
        for spec in actions:
            if spec.bound_to is not None or spec.name in imported:
                continue
            imported.add(spec.name)
            if spec.is_function:
                ET.SubElement(container, "FunctionImport", {"Name": spec.name, "Function": self.qualified(spec.name)})
            else:
                ET.SubElement(container, "ActionImport", {"Name": spec.name, "Action": self.qualified(spec.name)})
        return container
