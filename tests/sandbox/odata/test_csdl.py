"""CSDL rendering: one declared model becomes the Dataverse or the F&O ``$metadata`` document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from sandbox.odata.actions import ActionSpec
from sandbox.odata.csdl import render_csdl
from sandbox.odata.model import (
    BOOLEAN,
    DECIMAL,
    GUID,
    INT32,
    INT64,
    STRING,
    EntityType,
    EnumType,
    Model,
    NavigationProperty,
    Property,
)

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
CRM = "Microsoft.Dynamics.CRM"
DE = "Microsoft.Dynamics.DataEntities"


def _noop(ctx: Any, target: Any, params: dict[str, Any]) -> None:
    """Action handler stand-in; rendering never calls it."""
    return None


def dataverse_model() -> Model:
    """account and contact with a GUID key each, a simple lookup, a polymorphic lookup and a choice."""
    customer_type = EnumType("account_customertypecode", {"Customer": 3, "Prospect": 8})
    state = EnumType("account_statecode", {"Active": 0, "Inactive": 1})
    account = EntityType(
        name="account",
        entity_set="accounts",
        key=("accountid",),
        primary_name="name",
        alternate_keys=[("accountnumber",)],
        properties={
            "accountid": Property("accountid", GUID, nullable=False),
            "name": Property("name", STRING, max_length=160, required=True, label="Account Name"),
            "accountnumber": Property("accountnumber", STRING, max_length=20),
            "revenue": Property("revenue", DECIMAL, precision=23, scale=4),
            "customertypecode": Property("customertypecode", INT32, enum=customer_type),
            "statecode": Property("statecode", INT32, enum=state),
            "versionnumber": Property("versionnumber", INT64, read_only=True),
            "_primarycontactid_value": Property("_primarycontactid_value", GUID, lookup="primarycontactid"),
        },
        navigations={
            "primarycontactid": NavigationProperty(
                "primarycontactid",
                "contact",
                many=False,
                pairs=[("_primarycontactid_value", "contactid")],
                owns_fk=True,
                partner="account_primary_contact",
            ),
            "contact_customer_accounts": NavigationProperty(
                "contact_customer_accounts",
                "contact",
                many=True,
                pairs=[("accountid", "_parentcustomerid_value")],
                target_condition={"_parentcustomerid_type": "account"},
                partner="parentcustomerid_account",
            ),
        },
    )
    contact = EntityType(
        name="contact",
        entity_set="contacts",
        key=("contactid",),
        primary_name="fullname",
        tracked=False,
        properties={
            "contactid": Property("contactid", GUID, nullable=False),
            "fullname": Property("fullname", STRING, max_length=160),
            "donotemail": Property("donotemail", BOOLEAN),
            "_parentcustomerid_value": Property("_parentcustomerid_value", GUID, lookup="parentcustomerid"),
            "_parentcustomerid_type": Property("_parentcustomerid_type", STRING, hidden=True),
        },
        navigations={
            "parentcustomerid_account": NavigationProperty(
                "parentcustomerid_account",
                "account",
                many=False,
                pairs=[("_parentcustomerid_value", "accountid")],
                owns_fk=True,
                local_condition={"_parentcustomerid_type": "account"},
                partner="contact_customer_accounts",
            ),
            "parentcustomerid_contact": NavigationProperty(
                "parentcustomerid_contact",
                "contact",
                many=False,
                pairs=[("_parentcustomerid_value", "contactid")],
                owns_fk=True,
                local_condition={"_parentcustomerid_type": "contact"},
            ),
            "account_primary_contact": NavigationProperty(
                "account_primary_contact",
                "account",
                many=True,
                pairs=[("contactid", "_primarycontactid_value")],
                partner="primarycontactid",
            ),
        },
    )
    model = Model(CRM, [account, contact])
    model.check()
    return model


def dataverse_actions() -> list[ActionSpec]:
    """An unbound action, an entity-bound action, a collection-bound action and an unbound function."""
    return [
        ActionSpec("WinOpportunity", _noop, parameters={"Status": "Edm.Int32", "OpportunityClose": "account"}),
        ActionSpec("AddNote", _noop, bound_to="account", parameters={"NoteText": "Edm.String"}, returns="account"),
        ActionSpec(
            "CreateMultiple",
            _noop,
            bound_to="account",
            collection_bound=True,
            parameters={"Targets": "Collection(mscrm.crmbaseentity)"},
            returns="Collection(Edm.Guid)",
        ),
        ActionSpec("WhoAmI", _noop, is_function=True, returns="Edm.String"),
    ]


def fno_model() -> Model:
    """CustomerV3 / SalesOrderHeaderV2 with dataAreaId compound keys, an enum, a many-nav and an alias."""
    sales_status = EnumType("SalesStatus", {"None": 0, "Backorder": 1, "Delivered": 2, "Invoiced": 3, "Canceled": 4})
    no_yes = EnumType("NoYes", {"No": 0, "Yes": 1})
    customer_props = {
        "dataAreaId": Property("dataAreaId", STRING, nullable=False, max_length=4),
        "CustomerAccount": Property("CustomerAccount", STRING, nullable=False, max_length=20),
        "OrganizationName": Property("OrganizationName", STRING, max_length=100),
        "CreditLimit": Property("CreditLimit", DECIMAL),
        "IsOneTimeCustomer": Property("IsOneTimeCustomer", INT32, enum=no_yes),
        "InternalNote": Property("InternalNote", STRING, hidden=True),
    }
    customer = EntityType(
        name="CustomerV3",
        entity_set="CustomersV3",
        key=("dataAreaId", "CustomerAccount"),
        company_property="dataAreaId",
        properties=customer_props,
        navigations={
            "SalesOrderHeaders": NavigationProperty(
                "SalesOrderHeaders",
                "SalesOrderHeaderV2",
                many=True,
                pairs=[("dataAreaId", "dataAreaId"), ("CustomerAccount", "OrderingCustomerAccountNumber")],
                partner="Customer",
            )
        },
    )
    order = EntityType(
        name="SalesOrderHeaderV2",
        entity_set="SalesOrderHeadersV2",
        key=("dataAreaId", "SalesOrderNumber"),
        company_property="dataAreaId",
        properties={
            "dataAreaId": Property("dataAreaId", STRING, nullable=False, max_length=4),
            "SalesOrderNumber": Property("SalesOrderNumber", STRING, nullable=False, max_length=20),
            "OrderingCustomerAccountNumber": Property("OrderingCustomerAccountNumber", STRING, max_length=20),
            "SalesOrderStatus": Property("SalesOrderStatus", INT32, enum=sales_status, read_only=True),
        },
        navigations={
            "Customer": NavigationProperty(
                "Customer",
                "CustomerV3",
                many=False,
                pairs=[("dataAreaId", "dataAreaId"), ("OrderingCustomerAccountNumber", "CustomerAccount")],
                partner="SalesOrderHeaders",
            )
        },
    )
    alias = EntityType(
        name="CustomerV2",
        entity_set="CustomersV2",
        key=("dataAreaId", "CustomerAccount"),
        company_property="dataAreaId",
        alias_of="CustomerV3",
        properties={name: customer_props[name] for name in ("dataAreaId", "CustomerAccount", "OrganizationName")},
    )
    model = Model(DE, [customer, order, alias], enums=[sales_status, no_yes])
    model.check()
    return model


def fno_actions() -> list[ActionSpec]:
    """An entity-bound action and a collection-bound function, as F&O data entities expose them."""
    return [
        ActionSpec("confirmOrder", _noop, bound_to="SalesOrderHeaderV2", parameters={"_force": "Edm.Boolean"}),
        ActionSpec(
            "getNextOrderNumber",
            _noop,
            bound_to="SalesOrderHeaderV2",
            collection_bound=True,
            is_function=True,
            returns="Edm.String",
        ),
    ]


def parse(xml_text: str) -> ET.Element:
    """Parse a rendered document (fails the test when it is not well-formed XML)."""
    return ET.fromstring(xml_text.encode("utf-8"))


def schema_of(root: ET.Element) -> ET.Element:
    schemas = root.findall(f"{EDMX}DataServices/{EDM}Schema")
    assert schemas, "no Schema element"
    return schemas[0]


def entity_type(schema: ET.Element, name: str) -> ET.Element:
    found = schema.find(f"{EDM}EntityType[@Name='{name}']")
    assert found is not None, f"EntityType {name} missing"
    return found


def properties(entity: ET.Element) -> dict[str, dict[str, str]]:
    return {prop.get("Name", ""): dict(prop.attrib) for prop in entity.findall(f"{EDM}Property")}


def navigations(entity: ET.Element) -> dict[str, ET.Element]:
    return {nav.get("Name", ""): nav for nav in entity.findall(f"{EDM}NavigationProperty")}


@pytest.fixture()
def dataverse_root() -> ET.Element:
    """The parsed Dataverse document without annotations."""
    return parse(render_csdl(dataverse_model(), dataverse_actions(), dialect="dataverse"))


@pytest.fixture()
def fno_root() -> ET.Element:
    """The parsed F&O document."""
    return parse(render_csdl(fno_model(), fno_actions(), dialect="fno"))


# ---- document frame -------------------------------------------------------------------------------------


def test_dataverse_document_is_edmx_4_with_aliased_crm_schema(dataverse_root: ET.Element) -> None:
    """The root is edmx:Edmx 4.0 and the single schema is Microsoft.Dynamics.CRM with alias mscrm."""
    assert dataverse_root.tag == f"{EDMX}Edmx"
    assert dataverse_root.get("Version") == "4.0"
    schemas = dataverse_root.findall(f"{EDMX}DataServices/{EDM}Schema")
    assert len(schemas) == 1
    assert schemas[0].get("Namespace") == CRM
    assert schemas[0].get("Alias") == "mscrm"


def test_fno_schema_has_no_alias(fno_root: ET.Element) -> None:
    """F&O declares Microsoft.Dynamics.DataEntities without an alias."""
    schema = schema_of(fno_root)
    assert schema.get("Namespace") == DE
    assert schema.get("Alias") is None


def test_rendered_text_starts_with_xml_declaration() -> None:
    """The text is a standalone XML document with a UTF-8 declaration."""
    text = render_csdl(fno_model(), [], dialect="fno")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')


def test_unknown_dialect_is_rejected() -> None:
    """A dialect other than dataverse/fno is a programming error."""
    with pytest.raises(ValueError):
        render_csdl(fno_model(), [], dialect="sap")  # type: ignore[arg-type]


# ---- entity types -----------------------------------------------------------------------------------------


def test_dataverse_entity_has_single_guid_key_and_crmbaseentity_base(dataverse_root: ET.Element) -> None:
    """account is keyed by accountid (Edm.Guid, not nullable) and derives from the abstract crmbaseentity."""
    schema = schema_of(dataverse_root)
    base = entity_type(schema, "crmbaseentity")
    assert base.get("Abstract") == "true"
    account = entity_type(schema, "account")
    assert account.get("BaseType") == f"{CRM}.crmbaseentity"
    assert [ref.get("Name") for ref in account.findall(f"{EDM}Key/{EDM}PropertyRef")] == ["accountid"]
    props = properties(account)
    assert props["accountid"]["Type"] == "Edm.Guid"
    assert props["accountid"]["Nullable"] == "false"
    assert props["name"]["MaxLength"] == "160"
    assert props["revenue"] == {"Name": "revenue", "Type": "Edm.Decimal", "Precision": "23", "Scale": "4"}
    assert props["_primarycontactid_value"]["Type"] == "Edm.Guid"


def test_dataverse_choices_are_int32_properties_without_enum_types(dataverse_root: ET.Element) -> None:
    """Choices (customertypecode, statecode) are Edm.Int32 and no EnumType is declared."""
    schema = schema_of(dataverse_root)
    props = properties(entity_type(schema, "account"))
    assert props["customertypecode"]["Type"] == "Edm.Int32"
    assert props["statecode"]["Type"] == "Edm.Int32"
    assert schema.findall(f"{EDM}EnumType") == []


def test_hidden_properties_are_absent(dataverse_root: ET.Element, fno_root: ET.Element) -> None:
    """The polymorphic lookup's type column and F&O's hidden InternalNote never reach $metadata."""
    contact = entity_type(schema_of(dataverse_root), "contact")
    assert "_parentcustomerid_type" not in properties(contact)
    assert "_parentcustomerid_value" in properties(contact)
    customer = entity_type(schema_of(fno_root), "CustomerV3")
    assert "InternalNote" not in properties(customer)


def test_fno_entity_has_compound_key_with_dataareaid(fno_root: ET.Element) -> None:
    """CustomerV3 is keyed by (dataAreaId, CustomerAccount); key parts are not nullable."""
    customer = entity_type(schema_of(fno_root), "CustomerV3")
    assert [ref.get("Name") for ref in customer.findall(f"{EDM}Key/{EDM}PropertyRef")] == [
        "dataAreaId",
        "CustomerAccount",
    ]
    props = properties(customer)
    assert props["dataAreaId"] == {"Name": "dataAreaId", "Type": "Edm.String", "Nullable": "false", "MaxLength": "4"}
    assert customer.get("BaseType") is None


def test_fno_decimal_without_scale_declares_variable_scale(fno_root: ET.Element) -> None:
    """A decimal without a declared scale says Scale="Variable" (CSDL would otherwise mean 0 decimals)."""
    props = properties(entity_type(schema_of(fno_root), "CustomerV3"))
    assert props["CreditLimit"]["Scale"] == "Variable"


def test_fno_enums_are_declared_with_member_values(fno_root: ET.Element) -> None:
    """Every enum is an EnumType with its members' names and integer values."""
    schema = schema_of(fno_root)
    enum = schema.find(f"{EDM}EnumType[@Name='SalesStatus']")
    assert enum is not None
    members = {m.get("Name"): m.get("Value") for m in enum.findall(f"{EDM}Member")}
    assert members == {"None": "0", "Backorder": "1", "Delivered": "2", "Invoiced": "3", "Canceled": "4"}
    assert schema.find(f"{EDM}EnumType[@Name='NoYes']") is not None


def test_fno_enum_properties_reference_the_enum_type(fno_root: ET.Element) -> None:
    """An enum-typed property's Type is the qualified enum name, not Edm.Int32."""
    schema = schema_of(fno_root)
    order = properties(entity_type(schema, "SalesOrderHeaderV2"))
    assert order["SalesOrderStatus"]["Type"] == f"{DE}.SalesStatus"
    customer = properties(entity_type(schema, "CustomerV3"))
    assert customer["IsOneTimeCustomer"]["Type"] == f"{DE}.NoYes"


def test_fno_enum_in_another_namespace_gets_its_own_schema() -> None:
    """An enum declared with a foreign namespace is emitted in a second Schema and referenced by it."""
    foreign = EnumType("Flag", {"Off": 0, "On": 1}, namespace="Contoso.Enums")
    entity = EntityType(
        "Thing",
        "Things",
        ("Id",),
        {"Id": Property("Id", STRING, nullable=False), "Flag": Property("Flag", INT32, enum=foreign)},
    )
    root = parse(render_csdl(Model(DE, [entity]), [], dialect="fno"))
    schemas = root.findall(f"{EDMX}DataServices/{EDM}Schema")
    assert [s.get("Namespace") for s in schemas] == [DE, "Contoso.Enums"]
    assert schemas[1].find(f"{EDM}EnumType[@Name='Flag']") is not None
    assert properties(entity_type(schemas[0], "Thing"))["Flag"]["Type"] == "Contoso.Enums.Flag"


def test_alias_entity_gets_its_own_type_with_its_property_subset(fno_root: ET.Element) -> None:
    """The alias CustomerV2 is an entity type of its own holding only its declared properties."""
    alias = entity_type(schema_of(fno_root), "CustomerV2")
    assert set(properties(alias)) == {"dataAreaId", "CustomerAccount", "OrganizationName"}


# ---- navigation properties --------------------------------------------------------------------------------


def test_dataverse_lookup_navigation_has_partner_and_referential_constraint(dataverse_root: ET.Element) -> None:
    """primarycontactid is single-valued, typed by the target, partnered, and constrained _x_value -> key."""
    navs = navigations(entity_type(schema_of(dataverse_root), "account"))
    nav = navs["primarycontactid"]
    assert nav.get("Type") == f"{CRM}.contact"
    assert nav.get("Partner") == "account_primary_contact"
    constraints = [dict(c.attrib) for c in nav.findall(f"{EDM}ReferentialConstraint")]
    assert constraints == [{"Property": "_primarycontactid_value", "ReferencedProperty": "contactid"}]


def test_dataverse_collection_navigation_is_collection_typed_without_constraint(dataverse_root: ET.Element) -> None:
    """A one-to-many navigation is Collection(ns.target) and carries no ReferentialConstraint."""
    nav = navigations(entity_type(schema_of(dataverse_root), "account"))["contact_customer_accounts"]
    assert nav.get("Type") == f"Collection({CRM}.contact)"
    assert nav.findall(f"{EDM}ReferentialConstraint") == []


def test_dataverse_polymorphic_lookup_has_one_navigation_per_target(dataverse_root: ET.Element) -> None:
    """parentcustomerid_account / parentcustomerid_contact both constrain the shared _parentcustomerid_value."""
    navs = navigations(entity_type(schema_of(dataverse_root), "contact"))
    assert navs["parentcustomerid_account"].get("Type") == f"{CRM}.account"
    assert navs["parentcustomerid_contact"].get("Type") == f"{CRM}.contact"
    for name, remote in (("parentcustomerid_account", "accountid"), ("parentcustomerid_contact", "contactid")):
        constraint = navs[name].find(f"{EDM}ReferentialConstraint")
        assert constraint is not None
        assert constraint.attrib == {"Property": "_parentcustomerid_value", "ReferencedProperty": remote}


def test_fno_many_navigation_is_collection_and_single_navigation_is_constrained(fno_root: ET.Element) -> None:
    """SalesOrderHeaders is a collection; the reverse Customer navigation lists its compound constraint."""
    schema = schema_of(fno_root)
    many = navigations(entity_type(schema, "CustomerV3"))["SalesOrderHeaders"]
    assert many.get("Type") == f"Collection({DE}.SalesOrderHeaderV2)"
    assert many.get("Partner") == "Customer"
    single = navigations(entity_type(schema, "SalesOrderHeaderV2"))["Customer"]
    assert single.get("Type") == f"{DE}.CustomerV3"
    assert [dict(c.attrib) for c in single.findall(f"{EDM}ReferentialConstraint")] == [
        {"Property": "dataAreaId", "ReferencedProperty": "dataAreaId"},
        {"Property": "OrderingCustomerAccountNumber", "ReferencedProperty": "CustomerAccount"},
    ]


# ---- operations -----------------------------------------------------------------------------------------


def operation(schema: ET.Element, tag: str, name: str) -> ET.Element:
    found = schema.find(f"{EDM}{tag}[@Name='{name}']")
    assert found is not None, f"{tag} {name} missing"
    return found


def parameters(element: ET.Element) -> list[tuple[str | None, str | None]]:
    return [(p.get("Name"), p.get("Type")) for p in element.findall(f"{EDM}Parameter")]


def test_dataverse_bound_action_has_entity_binding_parameter_first(dataverse_root: ET.Element) -> None:
    """AddNote is bound: IsBound=true, first parameter 'entity' of mscrm account, then its own parameters."""
    action = operation(schema_of(dataverse_root), "Action", "AddNote")
    assert action.get("IsBound") == "true"
    assert parameters(action) == [("entity", f"{CRM}.account"), ("NoteText", "Edm.String")]
    return_type = action.find(f"{EDM}ReturnType")
    assert return_type is not None and return_type.get("Type") == f"{CRM}.account"


def test_dataverse_collection_bound_action_binds_to_collection(dataverse_root: ET.Element) -> None:
    """CreateMultiple binds 'entityset' to Collection(account) and keeps given qualified types unchanged."""
    action = operation(schema_of(dataverse_root), "Action", "CreateMultiple")
    assert parameters(action) == [
        ("entityset", f"Collection({CRM}.account)"),
        ("Targets", "Collection(mscrm.crmbaseentity)"),
    ]
    return_type = action.find(f"{EDM}ReturnType")
    assert return_type is not None and return_type.get("Type") == "Collection(Edm.Guid)"


def test_unbound_operations_are_not_bound_and_get_imports(dataverse_root: ET.Element) -> None:
    """Unbound WinOpportunity gets an ActionImport, unbound WhoAmI a Function plus FunctionImport;
    bound operations get no import."""
    schema = schema_of(dataverse_root)
    action = operation(schema, "Action", "WinOpportunity")
    assert action.get("IsBound") is None
    assert parameters(action) == [("Status", "Edm.Int32"), ("OpportunityClose", f"{CRM}.account")]
    assert action.find(f"{EDM}ReturnType") is None
    function = operation(schema, "Function", "WhoAmI")
    assert function.find(f"{EDM}ReturnType") is not None
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None
    imports = {
        (i.tag, i.get("Name"), i.get("Action") or i.get("Function"))
        for i in container
        if i.tag in (f"{EDM}ActionImport", f"{EDM}FunctionImport")
    }
    assert imports == {
        (f"{EDM}ActionImport", "WinOpportunity", f"{CRM}.WinOpportunity"),
        (f"{EDM}FunctionImport", "WhoAmI", f"{CRM}.WhoAmI"),
    }


def test_fno_bound_operations_name_binding_parameter_after_entity(fno_root: ET.Element) -> None:
    """F&O bound action/function: binding parameter named like the entity type, typed by it or its collection."""
    schema = schema_of(fno_root)
    action = operation(schema, "Action", "confirmOrder")
    assert parameters(action) == [("SalesOrderHeaderV2", f"{DE}.SalesOrderHeaderV2"), ("_force", "Edm.Boolean")]
    function = operation(schema, "Function", "getNextOrderNumber")
    assert function.get("IsBound") == "true"
    assert parameters(function) == [("SalesOrderHeaderV2", f"Collection({DE}.SalesOrderHeaderV2)")]


# ---- container ----------------------------------------------------------------------------------------------


def entity_sets(root: ET.Element) -> dict[str, ET.Element]:
    container = schema_of(root).find(f"{EDM}EntityContainer")
    assert container is not None
    return {s.get("Name", ""): s for s in container.findall(f"{EDM}EntitySet")}


def test_dataverse_container_is_system_with_sets_and_navigation_bindings(dataverse_root: ET.Element) -> None:
    """The container 'System' has one set per table, typed by the entity, binding every navigation."""
    container = schema_of(dataverse_root).find(f"{EDM}EntityContainer")
    assert container is not None and container.get("Name") == "System"
    sets = entity_sets(dataverse_root)
    assert set(sets) == {"accounts", "contacts"}
    assert sets["accounts"].get("EntityType") == f"{CRM}.account"
    bindings = {b.get("Path"): b.get("Target") for b in sets["accounts"].findall(f"{EDM}NavigationPropertyBinding")}
    assert bindings == {"primarycontactid": "contacts", "contact_customer_accounts": "contacts"}


def test_fno_container_lists_base_and_alias_entity_sets(fno_root: ET.Element) -> None:
    """F&O's container 'Resources' has sets for CustomersV3, SalesOrderHeadersV2 and the alias CustomersV2."""
    container = schema_of(fno_root).find(f"{EDM}EntityContainer")
    assert container is not None and container.get("Name") == "Resources"
    sets = entity_sets(fno_root)
    assert set(sets) == {"CustomersV3", "SalesOrderHeadersV2", "CustomersV2"}
    assert sets["CustomersV2"].get("EntityType") == f"{DE}.CustomerV2"
    bindings = {b.get("Path"): b.get("Target") for b in sets["CustomersV3"].findall(f"{EDM}NavigationPropertyBinding")}
    assert bindings == {"SalesOrderHeaders": "SalesOrderHeadersV2"}


def test_change_tracking_annotation_only_with_annotations_on_tracked_sets() -> None:
    """annotations=True marks tracked Dataverse sets with Capabilities.ChangeTracking Supported=true;
    untracked sets and the default rendering carry none."""
    model, actions = dataverse_model(), dataverse_actions()
    plain = entity_sets(parse(render_csdl(model, actions, dialect="dataverse")))
    assert plain["accounts"].findall(f"{EDM}Annotation") == []

    root = parse(render_csdl(model, actions, dialect="dataverse", annotations=True))
    references = root.findall(f"{EDMX}Reference/{EDMX}Include")
    assert [r.get("Namespace") for r in references] == ["Org.OData.Capabilities.V1"]
    sets = entity_sets(root)
    annotation = sets["accounts"].find(f"{EDM}Annotation")
    assert annotation is not None
    assert annotation.get("Term") == "Org.OData.Capabilities.V1.ChangeTracking"
    value = annotation.find(f"{EDM}Record/{EDM}PropertyValue")
    assert value is not None and value.attrib == {"Property": "Supported", "Bool": "true"}
    assert sets["contacts"].findall(f"{EDM}Annotation") == []


def test_fno_ignores_annotations_flag() -> None:
    """annotations=True is a Dataverse feature; the F&O document is unchanged by it."""
    model, actions = fno_model(), fno_actions()
    assert render_csdl(model, actions, dialect="fno", annotations=True) == render_csdl(model, actions, dialect="fno")


def test_special_characters_are_escaped() -> None:
    """Names and types with XML-special characters are escaped so the document still parses."""
    enum = EnumType("Odd", {"A&B": 0, "<C>": 1})
    entity = EntityType(
        "Thing",
        "Things",
        ("Id",),
        {"Id": Property("Id", STRING, nullable=False), "Kind": Property("Kind", INT32, enum=enum)},
    )
    text = render_csdl(
        Model(DE, [entity]), [ActionSpec('Say"Hi"', _noop, parameters={"x": "Edm.String"})], dialect="fno"
    )
    schema = schema_of(parse(text))
    members = [m.get("Name") for m in schema.findall(f"{EDM}EnumType/{EDM}Member")]
    assert members == ["A&B", "<C>"]
    assert schema.find(f"{EDM}Action").get("Name") == 'Say"Hi"'  # type: ignore[union-attr]
