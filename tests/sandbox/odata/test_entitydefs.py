"""Dataverse EntityDefinitions metadata derived from the declared model, and its query helpers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sandbox.errors import BadRequest, NotFound
from sandbox.odata.dataverse.entitydefs import (
    attributes,
    attributes_of_type,
    entity_definitions,
    filter_definitions,
    find_by_key,
    parse_expand,
    parse_select,
    project,
)
from sandbox.odata.model import (
    BOOLEAN,
    DATETIME,
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

CRM = "Microsoft.Dynamics.CRM"


def dataverse_model() -> Model:
    """account / contact / a custom table: GUID keys, a lookup, a polymorphic lookup, choices, money, memo."""
    customer_type = EnumType("account_customertypecode", {"Customer": 3, "Prospect": 8})
    state = EnumType("account_statecode", {"Active": 0, "Inactive": 1})
    status = EnumType("account_statuscode", {"Active": 1, "Inactive": 2})
    account = EntityType(
        name="account",
        entity_set="accounts",
        key=("accountid",),
        primary_name="name",
        alternate_keys=[("accountnumber",)],
        description="Business that represents a customer.",
        properties={
            "accountid": Property("accountid", GUID, nullable=False),
            "name": Property("name", STRING, max_length=160, required=True, label="Account Name"),
            "accountnumber": Property("accountnumber", STRING, max_length=20),
            "description": Property("description", STRING, max_length=10000),
            "revenue": Property("revenue", DECIMAL, precision=23, scale=4),
            "exchangerate": Property("exchangerate", DECIMAL, precision=23, scale=10),
            "numberofemployees": Property("numberofemployees", INT32),
            "customertypecode": Property("customertypecode", INT32, enum=customer_type, label="Relationship Type"),
            "statecode": Property("statecode", INT32, enum=state),
            "statuscode": Property("statuscode", INT32, enum=status),
            "versionnumber": Property("versionnumber", INT64, read_only=True),
            "createdon": Property("createdon", DATETIME, read_only=True),
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
                "account_primary_contact", "account", many=True, pairs=[("contactid", "_primarycontactid_value")]
            ),
        },
    )
    company = EntityType(
        name="cdm_company",
        entity_set="cdm_companies",
        key=("cdm_companyid",),
        primary_name="cdm_name",
        read_only=True,
        alternate_keys=[("cdm_companycode",)],
        properties={
            "cdm_companyid": Property("cdm_companyid", GUID, nullable=False),
            "cdm_name": Property("cdm_name", STRING, max_length=100),
            "cdm_companycode": Property("cdm_companycode", STRING, max_length=4),
        },
    )
    model = Model(CRM, [account, contact, company])
    model.check()
    return model


@pytest.fixture()
def model() -> Model:
    return dataverse_model()


@pytest.fixture()
def definitions(model: Model) -> dict[str, dict[str, Any]]:
    """Entity definitions by logical name."""
    return {d["LogicalName"]: d for d in entity_definitions(model)}


def by_name(attrs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["LogicalName"]: a for a in attrs}


# ---- entity definitions ---------------------------------------------------------------------------------


def test_entity_definition_names_set_keys_and_labels(definitions: dict[str, dict[str, Any]]) -> None:
    """account's definition carries its names, entity set, primary id/name and 1033 display labels."""
    account = definitions["account"]
    assert account["LogicalName"] == "account"
    assert account["SchemaName"] == "Account"
    assert account["EntitySetName"] == "accounts"
    assert account["LogicalCollectionName"] == "accounts"
    assert account["PrimaryIdAttribute"] == "accountid"
    assert account["PrimaryNameAttribute"] == "name"
    assert account["IsCustomEntity"] is False
    assert account["DisplayName"]["UserLocalizedLabel"]["Label"] == "Account"
    assert account["DisplayName"]["UserLocalizedLabel"]["LanguageCode"] == 1033
    assert account["DisplayName"]["LocalizedLabels"][0]["Label"] == "Account"
    assert account["DisplayCollectionName"]["UserLocalizedLabel"]["Label"] == "Accounts"
    assert account["Description"]["UserLocalizedLabel"]["Label"] == "Business that represents a customer."


def test_entity_without_description_has_empty_label(definitions: dict[str, dict[str, Any]]) -> None:
    """An unset label has no localized labels and a null user label, as Dataverse answers."""
    assert definitions["contact"]["Description"] == {"LocalizedLabels": [], "UserLocalizedLabel": None}


def test_metadata_ids_are_stable_guids(model: Model) -> None:
    """MetadataIds are valid GUIDs, distinct per entity and equal between two derivations."""
    first = [d["MetadataId"] for d in entity_definitions(model)]
    second = [d["MetadataId"] for d in entity_definitions(dataverse_model())]
    assert first == second
    assert len(set(first)) == len(first)
    for value in first:
        uuid.UUID(value)


def test_object_type_codes_are_real_for_standard_tables_and_stable_for_others(
    definitions: dict[str, dict[str, Any]],
) -> None:
    """account is 1 and contact 2 as in Dataverse; a custom table gets a stable code from 10000 up."""
    assert definitions["account"]["ObjectTypeCode"] == 1
    assert definitions["contact"]["ObjectTypeCode"] == 2
    code = definitions["cdm_company"]["ObjectTypeCode"]
    assert 10000 <= code < 50000
    assert {d["LogicalName"]: d["ObjectTypeCode"] for d in entity_definitions(dataverse_model())}["cdm_company"] == code


def test_prefixed_table_keeps_publisher_prefix_in_schema_name(definitions: dict[str, dict[str, Any]]) -> None:
    """cdm_company's SchemaName keeps the lower-case prefix and capitalises the rest."""
    assert definitions["cdm_company"]["SchemaName"] == "cdm_Company"


def test_change_tracking_follows_tracked_flag(definitions: dict[str, dict[str, Any]]) -> None:
    """ChangeTrackingEnabled is the entity's tracked flag."""
    assert definitions["account"]["ChangeTrackingEnabled"] is True
    assert definitions["contact"]["ChangeTrackingEnabled"] is False


def test_alternate_keys_become_key_definitions(definitions: dict[str, dict[str, Any]]) -> None:
    """Each alternate key is a Keys entry named <entity>_key<n> with its attributes and a MetadataId."""
    keys = definitions["account"]["Keys"]
    assert len(keys) == 1
    assert keys[0]["LogicalName"] == "account_key1"
    assert keys[0]["KeyAttributes"] == ["accountnumber"]
    uuid.UUID(keys[0]["MetadataId"])
    assert definitions["contact"]["Keys"] == []


def test_attributes_are_attached_only_on_request(model: Model) -> None:
    """include_attributes=True adds each entity's Attributes (what $expand=Attributes needs)."""
    assert all("Attributes" not in d for d in entity_definitions(model))
    expanded = {d["LogicalName"]: d for d in entity_definitions(model, include_attributes=True)}
    assert "name" in by_name(expanded["account"]["Attributes"])


# ---- attributes -------------------------------------------------------------------------------------------


def test_lookup_attribute_is_named_without_underscores_and_value(model: Model) -> None:
    """_primarycontactid_value is the Lookup attribute primarycontactid targeting contact."""
    attrs = by_name(attributes(model, "account"))
    assert "_primarycontactid_value" not in attrs
    lookup = attrs["primarycontactid"]
    assert lookup["AttributeType"] == "Lookup"
    assert lookup["@odata.type"] == f"#{CRM}.LookupAttributeMetadata"
    assert lookup["Targets"] == ["contact"]
    assert lookup["IsValidForCreate"] is True


def test_polymorphic_customer_lookup_lists_both_targets_and_hides_type_column(model: Model) -> None:
    """parentcustomerid is a Customer lookup to account and contact; the hidden type column is absent."""
    attrs = by_name(attributes(model, "contact"))
    assert attrs["parentcustomerid"]["AttributeType"] == "Customer"
    assert attrs["parentcustomerid"]["Targets"] == ["account", "contact"]
    assert not any("type" in name for name in attrs if name.startswith("_"))
    assert "_parentcustomerid_type" not in attrs


def test_choice_is_picklist_with_option_labels(model: Model) -> None:
    """customertypecode is a Picklist whose OptionSet lists each value with a 1033 label."""
    attr = by_name(attributes(model, "account"))["customertypecode"]
    assert attr["AttributeType"] == "Picklist"
    assert attr["@odata.type"] == f"#{CRM}.PicklistAttributeMetadata"
    assert attr["DisplayName"]["UserLocalizedLabel"]["Label"] == "Relationship Type"
    options = [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"]) for o in attr["OptionSet"]["Options"]]
    assert options == [(3, "Customer"), (8, "Prospect")]
    assert attr["OptionSet"]["Options"][0]["Label"]["LocalizedLabels"][0]["LanguageCode"] == 1033


def test_statecode_and_statuscode_are_state_and_status(model: Model) -> None:
    """statecode/statuscode are State/Status attributes with their own metadata types and options."""
    attrs = by_name(attributes(model, "account"))
    assert attrs["statecode"]["AttributeType"] == "State"
    assert attrs["statecode"]["@odata.type"] == f"#{CRM}.StateAttributeMetadata"
    assert attrs["statuscode"]["AttributeType"] == "Status"
    assert attrs["statuscode"]["@odata.type"] == f"#{CRM}.StatusAttributeMetadata"
    assert [o["Value"] for o in attrs["statuscode"]["OptionSet"]["Options"]] == [1, 2]


def test_scalar_attribute_types_follow_edm_types(model: Model) -> None:
    """Strings, memos, integers, big ints, money (scale 4), decimals, dates, booleans and GUID keys map to
    their Dataverse attribute types."""
    account = by_name(attributes(model, "account"))
    contact = by_name(attributes(model, "contact"))
    expected = {
        "name": ("String", "StringAttributeMetadata"),
        "description": ("Memo", "MemoAttributeMetadata"),
        "numberofemployees": ("Integer", "IntegerAttributeMetadata"),
        "versionnumber": ("BigInt", "BigIntAttributeMetadata"),
        "revenue": ("Money", "MoneyAttributeMetadata"),
        "exchangerate": ("Decimal", "DecimalAttributeMetadata"),
        "createdon": ("DateTime", "DateTimeAttributeMetadata"),
        "accountid": ("Uniqueidentifier", "UniqueIdentifierAttributeMetadata"),
    }
    for name, (attribute_type, metadata_type) in expected.items():
        assert account[name]["AttributeType"] == attribute_type, name
        assert account[name]["@odata.type"] == f"#{CRM}.{metadata_type}", name
    assert account["name"]["MaxLength"] == 160
    assert contact["donotemail"]["AttributeType"] == "Boolean"
    assert contact["donotemail"]["OptionSet"]["TrueOption"]["Value"] == 1


def test_primary_flags_required_levels_and_validity(model: Model) -> None:
    """The key is the primary id (SystemRequired, not updatable); the primary name is flagged;
    required properties are ApplicationRequired; read-only ones are not valid for create/update."""
    attrs = by_name(attributes(model, "account"))
    assert attrs["accountid"]["IsPrimaryId"] is True
    assert attrs["accountid"]["RequiredLevel"]["Value"] == "SystemRequired"
    assert attrs["accountid"]["IsValidForCreate"] is True
    assert attrs["accountid"]["IsValidForUpdate"] is False
    assert attrs["name"]["IsPrimaryName"] is True
    assert attrs["name"]["RequiredLevel"]["Value"] == "ApplicationRequired"
    assert attrs["accountnumber"]["RequiredLevel"]["Value"] == "None"
    assert attrs["versionnumber"]["IsValidForCreate"] is False
    assert attrs["versionnumber"]["IsValidForUpdate"] is False
    assert attrs["versionnumber"]["IsValidForRead"] is True
    company = by_name(attributes(model, "cdm_company"))
    assert company["cdm_name"]["IsValidForUpdate"] is False


def test_attribute_metadata_ids_are_stable_and_distinct(model: Model) -> None:
    """Attribute MetadataIds repeat across derivations and differ between attributes."""
    first = [a["MetadataId"] for a in attributes(model, "account")]
    assert first == [a["MetadataId"] for a in attributes(dataverse_model(), "account")]
    assert len(set(first)) == len(first)


def test_attributes_of_unknown_entity_is_not_found(model: Model) -> None:
    """Asking for the attributes of an undeclared entity raises NotFound."""
    with pytest.raises(NotFound):
        attributes(model, "nosuchtable")


def test_type_cast_keeps_only_matching_metadata_type(model: Model) -> None:
    """The PicklistAttributeMetadata cast keeps picklists only (not State/Status); the base cast keeps all."""
    attrs = attributes(model, "account")
    picked = attributes_of_type(attrs, f"{CRM}.PicklistAttributeMetadata")
    assert [a["LogicalName"] for a in picked] == ["customertypecode"]
    assert [a["LogicalName"] for a in attributes_of_type(attrs, f"{CRM}.StateAttributeMetadata")] == ["statecode"]
    assert len(attributes_of_type(attrs, None)) == len(attrs)
    assert len(attributes_of_type(attrs, f"{CRM}.AttributeMetadata")) == len(attrs)


# ---- projection and parsing -------------------------------------------------------------------------------


def test_project_with_expanded_optionset_selects_options_only(model: Model) -> None:
    """?$select=LogicalName&$expand=OptionSet($select=Options) keeps LogicalName, the type and MetadataId,
    and an OptionSet with just Options (plus its MetadataId)."""
    attr = attributes_of_type(attributes(model, "account"), f"{CRM}.PicklistAttributeMetadata")[0]
    projected = project(attr, ["LogicalName"], {"OptionSet": ["Options"]})
    assert set(projected) == {"@odata.type", "MetadataId", "LogicalName", "OptionSet"}
    assert set(projected["OptionSet"]) == {"MetadataId", "Options"}
    assert [o["Value"] for o in projected["OptionSet"]["Options"]] == [3, 8]


def test_project_drops_navigation_properties_unless_expanded(
    model: Model, definitions: dict[str, dict[str, Any]]
) -> None:
    """OptionSet and Keys are navigation properties: absent without $expand, present with it."""
    attr = by_name(attributes(model, "account"))["customertypecode"]
    assert "OptionSet" not in project(attr, None, None)
    assert "Keys" not in project(definitions["account"], None, None)
    assert project(definitions["account"], ["LogicalName"], {"Keys": None})["Keys"][0]["LogicalName"] == "account_key1"


def test_project_refuses_to_expand_a_structural_property(definitions: dict[str, dict[str, Any]]) -> None:
    """Expanding something that is not a navigation property is a BadRequest."""
    with pytest.raises(BadRequest):
        project(definitions["account"], None, {"LogicalName": None})


def test_parse_expand_and_select() -> None:
    """$expand text becomes {nav: nested select or None}; $select text a list of names."""
    assert parse_expand("OptionSet($select=Options),Keys") == {"OptionSet": ["Options"], "Keys": None}
    assert parse_expand("Attributes($select=LogicalName,AttributeType)") == {
        "Attributes": ["LogicalName", "AttributeType"]
    }
    assert parse_expand(None) is None
    assert parse_select("LogicalName, EntitySetName") == ["LogicalName", "EntitySetName"]
    assert parse_select("") is None
    with pytest.raises(BadRequest):
        parse_expand("OptionSet($filter=IsGlobal eq true)")


def test_find_by_key_accepts_logical_name_and_metadata_id(model: Model) -> None:
    """(LogicalName='account') and (<MetadataId>) address the same definition; unknown names are NotFound,
    other key forms BadRequest."""
    defs = entity_definitions(model)
    account = find_by_key(defs, "LogicalName='account'")
    assert account["LogicalName"] == "account"
    assert find_by_key(defs, account["MetadataId"]) is account
    assert find_by_key(defs, account["MetadataId"].upper()) is account
    with pytest.raises(NotFound):
        find_by_key(defs, "LogicalName='nosuch'")
    with pytest.raises(BadRequest):
        find_by_key(defs, "SchemaName='Account'")
    attr = find_by_key(attributes(model, "account"), "LogicalName='primarycontactid'", kind="AttributeMetadata")
    assert attr["AttributeType"] == "Lookup"


# ---- $filter ------------------------------------------------------------------------------------------------


def test_filter_by_logical_name_with_select_keeps_metadata_id(model: Model) -> None:
    """The Python client's lookup: LogicalName eq 'account' with a $select returns one projected row."""
    rows = filter_definitions(
        entity_definitions(model), "LogicalName eq 'account'", ["LogicalName", "EntitySetName", "PrimaryIdAttribute"]
    )
    assert len(rows) == 1
    assert set(rows[0]) == {"LogicalName", "EntitySetName", "PrimaryIdAttribute", "MetadataId"}
    assert rows[0]["EntitySetName"] == "accounts"
    assert rows[0]["PrimaryIdAttribute"] == "accountid"


def test_filter_by_entity_set_name(model: Model) -> None:
    """EntitySetName eq 'contacts' finds contact."""
    rows = filter_definitions(entity_definitions(model), "EntitySetName eq 'contacts'", ["LogicalName"])
    assert [r["LogicalName"] for r in rows] == ["contact"]


def test_filter_with_or_and_parentheses(model: Model) -> None:
    """Disjunctions, conjunctions, not and grouping combine as in OData."""
    defs = entity_definitions(model)
    names = lambda text: [r["LogicalName"] for r in filter_definitions(defs, text, ["LogicalName"])]  # noqa: E731
    assert names("LogicalName eq 'account' or LogicalName eq 'contact'") == ["account", "contact"]
    assert names("(LogicalName eq 'account' or LogicalName eq 'contact') and ChangeTrackingEnabled eq true") == [
        "account"
    ]
    assert names("not (LogicalName eq 'account')") == ["contact", "cdm_company"]
    assert names("LogicalName ne 'account' and ObjectTypeCode lt 10") == ["contact"]


def test_filter_on_booleans_nested_paths_and_enum_literals(model: Model) -> None:
    """IsPrivate eq false (list tables), label paths, and enum literals on attribute types work."""
    defs = entity_definitions(model)
    assert len(filter_definitions(defs, "IsPrivate eq false", None)) == 3
    rows = filter_definitions(defs, "DisplayName/UserLocalizedLabel/Label eq 'Contact'", ["LogicalName"])
    assert [r["LogicalName"] for r in rows] == ["contact"]
    attrs = attributes(model, "account")
    rows = filter_definitions(
        attrs, "AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'", ["LogicalName"]
    )
    assert [r["LogicalName"] for r in rows] == ["customertypecode"]


def test_filter_by_metadata_id_guid_literal(model: Model) -> None:
    """An unquoted GUID literal compares with MetadataId regardless of case."""
    defs = entity_definitions(model)
    target = defs[1]["MetadataId"]
    rows = filter_definitions(defs, f"MetadataId eq {target.upper()}", ["LogicalName"])
    assert [r["LogicalName"] for r in rows] == ["contact"]


def test_filter_attributes_like_the_python_client(model: Model) -> None:
    """The client's attribute probe (LogicalName eq 'x', $select=LogicalName,AttributeType) answers one row."""
    rows = filter_definitions(
        attributes(model, "account"), "LogicalName eq 'customertypecode'", ["LogicalName", "AttributeType"]
    )
    assert rows == [
        {
            "@odata.type": f"#{CRM}.PicklistAttributeMetadata",
            "MetadataId": rows[0]["MetadataId"],
            "LogicalName": "customertypecode",
            "AttributeType": "Picklist",
        }
    ]


def test_filter_without_filter_or_select_returns_every_structural_item(model: Model) -> None:
    """No $filter and no $select: every definition, all structural properties, no navigation properties."""
    rows = filter_definitions(entity_definitions(model), None, None)
    assert len(rows) == 3
    assert "PrimaryNameAttribute" in rows[0]
    assert "Keys" not in rows[0]


def test_filter_string_literal_with_escaped_quote(model: Model) -> None:
    """Doubled single quotes inside a literal stand for one quote (and simply match nothing here)."""
    assert filter_definitions(entity_definitions(model), "LogicalName eq 'o''brien'", None) == []


@pytest.mark.parametrize(
    "text",
    [
        "contains(LogicalName,'acc')",
        "LogicalName eq",
        "LogicalName has 'account'",
        "LogicalName eq 'account' xor LogicalName eq 'contact'",
        "(LogicalName eq 'account'",
        "LogicalName eq 'account",
    ],
)
def test_unsupported_or_malformed_filter_is_bad_request(model: Model, text: str) -> None:
    """Functions, unknown operators and syntax errors raise BadRequest."""
    with pytest.raises(BadRequest):
        filter_definitions(entity_definitions(model), text, None)
