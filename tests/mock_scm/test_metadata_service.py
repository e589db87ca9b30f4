"""Mock SCM's metadata service (``/Metadata/``) and platform version actions, over HTTP.

What they follow: ``docs/reference/fno-odata.md`` section 1 (the metadata API clients read instead of
``$metadata``), and the requests ``d365fo-client`` 0.3.7 sends (``metadata_api.py``: ``DataEntities`` with
``$filter=contains(tolower(Name), '...')`` and ``EntityCategory eq Microsoft.Dynamics.Metadata.EntityCategory'...'``,
``PublicEntities('<name>')``, ``PublicEnumerations('<name>')``, ``PublicEntities?$top=1``; ``labels.py``:
``Labels(Id='...',Language='...')`` read as ``Value``; ``crud.py``: collection actions on
``DataManagementEntities``). Every document is derived from the model, so the tests compare with the model.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from sandbox.runtime import runtime_of
from sandbox.testing import assert_fno_error

META = "/Metadata"
NS = "Microsoft.Dynamics.DataEntities"


def get(client: Any, path: str, **args: str) -> Any:
    return client.get(f"{META}/{path}", query_string=args)


def test_data_entities_list_every_entity_of_the_model_with_its_public_names(scm: Any, scm_app: Flask) -> None:
    """One DataEntities row per entity set, named by its AOT name, pointing at the public names."""
    body = get(scm, "DataEntities").get_json()
    model = runtime_of(scm_app).model
    by_set = {row["PublicCollectionName"]: row for row in body["value"]}
    assert set(by_set) >= {entity.entity_set for entity in model.entities.values()}
    customers = by_set["CustomersV3"]
    assert customers == {
        "Name": "CustCustomerV3Entity",
        "PublicEntityName": "CustomerV3",
        "PublicCollectionName": "CustomersV3",
        "LabelId": customers["LabelId"],
        "EntityCategory": "Master",
        "DataServiceEnabled": True,
        "DataManagementEnabled": True,
        "IsReadOnly": False,
    }
    assert by_set["SalesInvoiceHeadersV2"]["IsReadOnly"] is True
    assert by_set["SalesOrderHeadersV2"]["EntityCategory"] == "Document"


def test_data_entities_filter_as_d365fo_client_searches(scm: Any) -> None:
    """``contains(tolower(Name), ...)``, the EntityCategory enum literal, booleans, ``$select`` and ``$count``."""
    response = get(
        scm,
        "DataEntities",
        **{
            "$filter": "contains(tolower(Name), 'customer') and "
            "EntityCategory eq Microsoft.Dynamics.Metadata.EntityCategory'Master' and IsReadOnly eq false",
            "$select": "Name,PublicCollectionName",
            "$count": "true",
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["@odata.context"].endswith("/Metadata/$metadata#DataEntities(Name,PublicCollectionName)")
    assert body["value"] == [{"Name": "CustCustomerV3Entity", "PublicCollectionName": "CustomersV3"}]
    assert body["@odata.count"] == 1


def test_top_skip_and_orderby_page_the_collections(scm: Any) -> None:
    """``$top``/``$skip`` page in ``$orderby`` order; ``/$count`` is the plain number."""
    names = [row["Name"] for row in get(scm, "PublicEntities", **{"$select": "Name", "$orderby": "Name"}).json["value"]]
    assert names == sorted(names)
    page = get(scm, "PublicEntities", **{"$select": "Name", "$orderby": "Name", "$top": "3", "$skip": "2"}).json
    assert [row["Name"] for row in page["value"]] == names[2:5]
    count = get(scm, "PublicEntities/$count")
    assert count.status_code == 200 and int(count.get_data(as_text=True)) == len(names)


def test_public_entity_describes_properties_keys_navigations_and_actions(scm: Any, scm_app: Flask) -> None:
    """``PublicEntities('SalesOrderHeaderV2')``: every property with its EDM and X++ type, keys, editability,
    the navigations with their referential constraints, and the bound actions."""
    response = get(scm, "PublicEntities('SalesOrderHeaderV2')")
    assert response.status_code == 200
    body = response.get_json()
    entity = runtime_of(scm_app).model.entities["SalesOrderHeaderV2"]
    assert body["@odata.context"].endswith("#PublicEntities/$entity")
    assert (body["Name"], body["EntitySetName"], body["IsReadOnly"]) == (
        "SalesOrderHeaderV2",
        "SalesOrderHeadersV2",
        False,
    )
    props = {p["Name"]: p for p in body["Properties"]}
    assert list(props) == [name for name, prop in entity.properties.items() if not prop.hidden]
    assert [name for name, p in props.items() if p["IsKey"]] == list(entity.key)
    number = props["SalesOrderNumber"]
    assert (number["TypeName"], number["DataType"], number["IsMandatory"], number["AllowEdit"]) == (
        "Edm.String",
        "String",
        True,
        False,
    )
    status = props["SalesOrderStatus"]
    assert (status["TypeName"], status["DataType"], status["AllowEdit"]) == (f"{NS}.SalesStatus", "Enum", False)
    assert props["OrderTotalAmount"]["DataType"] == "Real"
    assert props["RequestedShippingDate"]["DataType"] == "Date"
    assert props["dataAreaId"]["IsKey"] and not props["dataAreaId"]["IsMandatory"]
    lines = next(n for n in body["NavigationProperties"] if n["Name"] == "SalesOrderLines")
    assert (lines["RelatedEntity"], lines["Cardinality"], lines["RelatedRelationName"]) == (
        "SalesOrderLine",
        "Multiple",
        "SalesOrderHeader",
    )
    assert {(c["Property"], c["ReferencedProperty"]) for c in lines["Constraints"]} == {
        ("dataAreaId", "dataAreaId"),
        ("SalesOrderNumber", "SalesOrderNumber"),
    }
    assert all(c["@odata.type"] == "#Microsoft.Dynamics.Metadata.ReferentialConstraint" for c in lines["Constraints"])
    invoice = next(a for a in body["Actions"] if a["Name"] == "PostInvoice")
    assert invoice["BindingKind"] == "BoundToEntityInstance"
    assert invoice["ReturnType"] == {"TypeName": f"{NS}.SalesInvoiceHeaderV2", "IsCollection": False}


def test_public_entity_select_and_unknown_names(scm: Any) -> None:
    """A name is matched ignoring case, a public entity also by its entity set name; an unknown one is a 404
    (d365fo-client reads 404 as "no such entity")."""
    body = get(scm, "PublicEntities('customerv3')", **{"$select": "Name,EntitySetName"}).get_json()
    assert body["Name"] == "CustomerV3" and set(body) == {"@odata.context", "Name", "EntitySetName"}
    by_set = get(scm, "PublicEntities('CustomersV3')").get_json()
    assert (by_set["Name"], by_set["EntitySetName"]) == ("CustomerV3", "CustomersV3")
    assert_fno_error(get(scm, "PublicEntities('NoSuchEntity')"), 404)
    assert_fno_error(get(scm, "DataEntities(Name='NoSuchEntity')"), 404)


def test_public_enumeration_lists_members_with_their_values(scm: Any) -> None:
    """``PublicEnumerations('SalesStatus')``: the members with the integer values the model stores."""
    body = get(scm, "PublicEnumerations('SalesStatus')").get_json()
    assert [(m["Name"], m["Value"]) for m in body["Members"]] == [
        ("None", 0),
        ("Backorder", 1),
        ("Delivered", 2),
        ("Invoiced", 3),
        ("Canceled", 4),
    ]
    found = get(scm, "PublicEnumerations", **{"$filter": "contains(tolower(Name), 'gender')", "$select": "Name"})
    assert found.get_json()["value"] == [{"Name": "Gender"}]


def test_labels_resolve_the_ids_the_other_documents_carry(scm: Any) -> None:
    """Every LabelId of a property resolves to its text; an unknown ID answers with itself as its Value."""
    props = get(scm, "PublicEntities('CustomerV3')").get_json()["Properties"]
    group = next(p for p in props if p["Name"] == "CustomerGroupId")
    label = get(scm, f"Labels(Id='{group['LabelId']}',Language='en-us')").get_json()
    assert (label["Id"], label["Language"], label["Value"]) == (group["LabelId"], "en-us", "Customer group")
    unknown = get(scm, "Labels(Id='@SYS13342',Language='en-us')").get_json()
    assert unknown["Value"] == "@SYS13342"
    assert_fno_error(get(scm, "Labels('@SYS13342')"), 400)


def test_bad_queries_answer_the_odata_error(scm: Any) -> None:
    """Unknown properties, options the service lacks, wrong enum types, lambdas and non-GET methods."""
    assert_fno_error(
        get(scm, "PublicEntities", **{"$filter": "Nope eq 1"}), 400, "Could not find a property named 'Nope'"
    )
    assert_fno_error(get(scm, "PublicEntities", **{"$select": "Nope"}), 400, "Nope")
    assert_fno_error(get(scm, "PublicEntities", **{"$expand": "Properties"}), 400, "$expand")
    assert_fno_error(get(scm, "PublicEntities", **{"$top": "-1"}), 400)
    assert_fno_error(
        get(scm, "DataEntities", **{"$filter": "EntityCategory eq Microsoft.Dynamics.DataEntities.NoYes'No'"}),
        400,
        "is not of type",
    )
    assert_fno_error(get(scm, "PublicEntities", **{"$filter": "Properties/any(p: p/IsKey eq true)"}), 400)
    refused = scm.post(f"{META}/PublicEntities", json={})
    assert_fno_error(refused, 405)
    assert refused.headers["Allow"] == "GET"


def test_version_actions_answer_strings_and_modules(scm: Any) -> None:
    """``GetApplicationVersion``/``GetPlatformBuildVersion`` on DataManagementEntities answer an Edm.String;
    ``GetInstalledModules`` on SystemNotifications the five-part module lines."""
    for action in ("GetApplicationVersion", "GetPlatformBuildVersion", "GetApplicationBuildVersion"):
        response = scm.post(f"/data/DataManagementEntities/{NS}.{action}", json={})
        assert response.status_code == 200
        body = response.get_json()
        assert body["@odata.context"].endswith("/data/$metadata#Edm.String")
        assert isinstance(body["value"], str) and body["value"].count(".") == 3
    modules = scm.post(f"/data/SystemNotifications/{NS}.GetInstalledModules", json={}).get_json()["value"]
    assert modules and all(len(line.split(" | ")) == 5 and line.startswith("Name: ") for line in modules)
    assert_fno_error(scm.post(f"/data/DataManagementEntities/{NS}.NoSuchAction", json={}), 404)
    refused = scm.get("/data/DataManagementEntities")
    assert_fno_error(refused, 405)
    assert refused.headers["Allow"] == "POST"


def test_platform_entities_are_listed_with_their_actions(scm: Any) -> None:
    """The metadata service lists DataManagementEntities with its actions, so a client that checks an action's
    entity set before calling it (d365fo-client's ``call_action``) finds it."""
    found = get(
        scm, "DataEntities", **{"$filter": "PublicCollectionName eq 'DataManagementEntities'", "$select": "Name"}
    )
    assert found.get_json()["value"] == [{"Name": "DataManagementEntity"}]
    entity = get(scm, "PublicEntities('DataManagementEntity')").get_json()
    assert {a["Name"] for a in entity["Actions"]} >= {"GetApplicationVersion", "GetPlatformBuildVersion"}


def test_query_action_lists_data_management_entities_by_category_and_sharing(scm: Any, scm_app: Flask) -> None:
    """``DataManagementEntities/...query`` (d365fo-client's ``query_data_management_entities``): one row per
    entity, narrowed by the category numbers (Reference 3) and IsShared (1); a wrong parameter is a 400."""
    url = f"/data/DataManagementEntities/{NS}.query"
    everything = scm.post(url, json={"categoryFilters": [], "isSharedFilters": []}).get_json()["value"]
    assert len(everything) == len(runtime_of(scm_app).model.entities)
    shared_reference = scm.post(url, json={"categoryFilters": [3], "isSharedFilters": [1]}).get_json()["value"]
    assert {row["TargetName"] for row in shared_reference} == {"OMLegalEntity", "CurrencyEntity", "UnitOfMeasureEntity"}
    assert all(row["Category"] == "Reference" and row["IsShared"] == "Yes" for row in shared_reference)
    assert_fno_error(scm.post(url, json={"categoryFilters": ["Master"]}), 400, "Edm.Int32")
    assert_fno_error(scm.post(url, json={"entityFilters": []}), 400, "not a parameter")
