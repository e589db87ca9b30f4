"""The generic OData service under both dialects, on a tiny model of its own (no mock business rules)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.odata.actions import ActionRegistry, EntityResult
from sandbox.odata.dataverse import DataverseDialect
from sandbox.odata.fno import FnoDialect
from sandbox.odata.model import (
    BOOLEAN,
    DECIMAL,
    GUID,
    INT32,
    STRING,
    EntityType,
    EnumType,
    Model,
    NavigationProperty,
    Property,
    new_guid,
)
from sandbox.odata.store import Store
from sandbox.runtime import ServiceConfig, ServiceSpec, build_app
from sandbox.testing import assert_dataverse_error, assert_fno_error

ROOT = "/api/data/v9.2"
STATE = EnumType("account_statecode", {"Active": 0, "Inactive": 1})


def dataverse_model() -> Model:
    account = EntityType(
        name="account",
        entity_set="accounts",
        key=("accountid",),
        primary_name="name",
        properties={
            "accountid": Property("accountid", GUID, default=new_guid),
            "name": Property("name", STRING, max_length=160),
            "accountnumber": Property("accountnumber", STRING),
            "revenue": Property("revenue", DECIMAL, scale=4),
            "statecode": Property("statecode", INT32, enum=STATE, default=0),
            "_primarycontactid_value": Property("_primarycontactid_value", GUID, lookup="primarycontactid"),
            "createdon": Property("createdon", "Edm.DateTimeOffset", read_only=True),
        },
        navigations={
            "primarycontactid": NavigationProperty(
                "primarycontactid", "contact", False, [("_primarycontactid_value", "contactid")], owns_fk=True
            ),
            "contact_customer_accounts": NavigationProperty(
                "contact_customer_accounts",
                "contact",
                True,
                [("accountid", "_parentcustomerid_value")],
                target_condition={"_parentcustomerid_type": "account"},
            ),
        },
        alternate_keys=[("accountnumber",)],
    )
    contact = EntityType(
        name="contact",
        entity_set="contacts",
        key=("contactid",),
        primary_name="fullname",
        properties={
            "contactid": Property("contactid", GUID, default=new_guid),
            "fullname": Property("fullname", STRING),
            "_parentcustomerid_value": Property("_parentcustomerid_value", GUID, lookup="parentcustomerid"),
            "_parentcustomerid_type": Property("_parentcustomerid_type", STRING, hidden=True),
        },
        navigations={
            "parentcustomerid_account": NavigationProperty(
                "parentcustomerid_account",
                "account",
                False,
                [("_parentcustomerid_value", "accountid")],
                owns_fk=True,
                local_condition={"_parentcustomerid_type": "account"},
            ),
        },
    )
    return Model("Microsoft.Dynamics.CRM", [account, contact], created_on="createdon")


def dataverse_actions(registry: ActionRegistry) -> None:
    @registry.action("Deactivate", bound_to="account")
    def deactivate(ctx: Any, target: Any, params: dict) -> EntityResult:
        """Deactivate an account."""
        row = ctx.store.update("account", target, {"statecode": 1}, identity=ctx.identity)
        return EntityResult("account", row)


def seed_nothing(store: Store, seed: int, options: dict) -> dict[str, int]:
    return {}


@pytest.fixture
def dv():
    spec = ServiceSpec(
        "dv", dataverse_model, lambda c: DataverseDialect(max_page_size=3), lambda: {}, dataverse_actions, seed_nothing
    )
    return build_app(spec, ServiceConfig(seed=None)).test_client()


def create(client: Any, entity_set: str, body: dict, **headers: str) -> str:
    response = client.post(f"{ROOT}/{entity_set}", json=body, headers=headers)
    assert response.status_code == 204, response.data
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


class TestDataverseDialect:
    def test_post_answers_204_with_entity_id(self, dv):
        """A create answers 204 and names the new row in OData-EntityId."""
        response = dv.post(f"{ROOT}/accounts", json={"name": "Contoso"})
        assert response.status_code == 204
        assert "/api/data/v9.2/accounts(" in response.headers["OData-EntityId"]

    def test_post_with_representation_answers_201_with_the_row(self, dv):
        """Prefer return=representation gives 201 with the row and the preference applied."""
        response = dv.post(
            f"{ROOT}/accounts?$select=name", json={"name": "Contoso"}, headers={"Prefer": "return=representation"}
        )
        assert response.status_code == 201
        body = response.get_json()
        assert body["name"] == "Contoso" and body["accountid"] and body["@odata.etag"].startswith('W/"')
        assert body["@odata.context"].endswith("$metadata#accounts(name)/$entity")
        assert "return=representation" in response.headers["Preference-Applied"]

    def test_text_longer_than_its_column_is_refused_alone_and_in_bulk(self, dv):
        """A text value past the column's maximum length is refused with Dataverse's error, whether it comes
        alone, in a CreateMultiple or with a value that is not text at all; text within it is stored as sent."""
        response = dv.post(f"{ROOT}/accounts", json={"name": "x" * 161})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "0x80044331"
        assert "maximum allowed length of '160'" in response.get_json()["error"]["message"]
        bulk = dv.post(
            f"{ROOT}/accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            json={"Targets": [{"name": "fits"}, {"name": "y" * 161}]},
        )
        assert bulk.status_code == 400 and bulk.get_json()["error"]["code"] == "0x80044331"
        assert dv.post(f"{ROOT}/accounts", json={"name": 12}).status_code == 400
        created = dv.post(
            f"{ROOT}/accounts",
            json={"name": "z" * 160, "accountnumber": "  Mixed Case "},
            headers={"Prefer": "return=representation"},
        )
        assert created.status_code == 201
        assert (created.get_json()["name"], created.get_json()["accountnumber"]) == ("z" * 160, "  Mixed Case ")
        listed = dv.get(f"{ROOT}/accounts?$select=name&$filter=name eq 'fits'").get_json()["value"]
        assert listed == []  # the refused CreateMultiple wrote nothing

    def test_bind_sets_lookup_and_read_shows_value(self, dv):
        """@odata.bind writes a lookup; reads show it as _x_value; $expand brings the row."""
        account = create(dv, "accounts", {"name": "A"})
        contact = create(
            dv, "contacts", {"fullname": "Jo", "parentcustomerid_account@odata.bind": f"/accounts({account})"}
        )
        body = dv.get(f"{ROOT}/contacts({contact})?$expand=parentcustomerid_account($select=name)").get_json()
        assert body["_parentcustomerid_value"] == account
        assert body["parentcustomerid_account"]["name"] == "A"
        children = dv.get(f"{ROOT}/accounts({account})/contact_customer_accounts").get_json()["value"]
        assert [c["contactid"] for c in children] == [contact]

    def test_writing_lookup_value_directly_is_refused(self, dv):
        """_x_value is read-only: writing it is a 400 in the Dataverse shape."""
        response = dv.post(f"{ROOT}/contacts", json={"_parentcustomerid_value": new_guid()})
        assert_dataverse_error(response, 400, "0x80048d19")

    def test_alternate_key_get_and_upsert(self, dv):
        """PATCH on an alternate key creates the row, then updates it."""
        first = dv.patch(f"{ROOT}/accounts(accountnumber='C-1')", json={"name": "One"})
        assert first.status_code == 204
        second = dv.patch(
            f"{ROOT}/accounts(accountnumber='C-1')", json={"name": "Uno"}, headers={"Prefer": "return=representation"}
        )
        assert second.status_code == 200 and second.get_json()["name"] == "Uno"
        assert dv.get(f"{ROOT}/accounts(accountnumber='C-1')").get_json()["name"] == "Uno"

    def test_undeclared_key_is_refused(self, dv):
        """A key the table does not declare is a 400."""
        assert_dataverse_error(dv.get(f"{ROOT}/accounts(name='x')"), 400, contains="key in the request URI")

    def test_if_match_stale_etag_gives_412(self, dv):
        """An update with an old etag is refused with 412 and the version-mismatch code."""
        account = create(dv, "accounts", {"name": "A"})
        etag = dv.get(f"{ROOT}/accounts({account})").get_json()["@odata.etag"]
        dv.patch(f"{ROOT}/accounts({account})", json={"name": "B"})
        stale = dv.patch(f"{ROOT}/accounts({account})", json={"name": "C"}, headers={"If-Match": etag})
        assert_dataverse_error(stale, 412, "0x80060882")

    def test_if_none_match_star_on_existing_row_gives_412(self, dv):
        """PATCH with If-None-Match: * only creates."""
        account = create(dv, "accounts", {"name": "A"})
        response = dv.patch(f"{ROOT}/accounts({account})", json={"name": "B"}, headers={"If-None-Match": "*"})
        assert_dataverse_error(response, 412, "0x80040237")

    def test_if_match_star_on_missing_row_gives_404(self, dv):
        """PATCH with If-Match: * never creates."""
        response = dv.patch(f"{ROOT}/accounts({new_guid()})", json={"name": "B"}, headers={"If-Match": "*"})
        assert_dataverse_error(response, 404, "0x80040217")

    def test_get_with_matching_etag_gives_304(self, dv):
        """If-None-Match with the current etag answers 304."""
        account = create(dv, "accounts", {"name": "A"})
        etag = dv.get(f"{ROOT}/accounts({account})").headers["ETag"]
        assert dv.get(f"{ROOT}/accounts({account})", headers={"If-None-Match": etag}).status_code == 304

    def test_paging_with_maxpagesize_and_skiptoken(self, dv):
        """odata.maxpagesize pages with @odata.nextLink until the last page."""
        for index in range(5):
            create(dv, "accounts", {"name": f"A{index}"})
        response = dv.get(f"{ROOT}/accounts?$select=name&$orderby=name", headers={"Prefer": "odata.maxpagesize=2"})
        body = response.get_json()
        assert [r["name"] for r in body["value"]] == ["A0", "A1"]
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=2"
        names = [r["name"] for r in body["value"]]
        while "@odata.nextLink" in body:
            link = body["@odata.nextLink"].split("localhost", 1)[1]
            body = dv.get(link, headers={"Prefer": "odata.maxpagesize=2"}).get_json()
            names += [r["name"] for r in body["value"]]
        assert names == ["A0", "A1", "A2", "A3", "A4"]

    def test_skip_is_refused(self, dv):
        """Dataverse has no $skip."""
        assert_dataverse_error(dv.get(f"{ROOT}/accounts?$skip=1"), 400)

    def test_count_and_dollar_count(self, dv):
        """$count=true adds @odata.count; /$count is a bare number."""
        for index in range(4):
            create(dv, "accounts", {"name": f"A{index}"})
        assert dv.get(f"{ROOT}/accounts?$count=true&$filter=name ne 'A0'").get_json()["@odata.count"] == 3
        response = dv.get(f"{ROOT}/accounts/$count")
        assert response.data == b"4" and response.content_type.startswith("text/plain")

    def test_filter_is_case_insensitive(self, dv):
        """String compares ignore case, as in Dataverse."""
        create(dv, "accounts", {"name": "Contoso"})
        assert len(dv.get(f"{ROOT}/accounts?$filter=name eq 'CONTOSO'").get_json()["value"]) == 1
        assert len(dv.get(f"{ROOT}/accounts?$filter=contains(name,'ntos')").get_json()["value"]) == 1

    def test_filter_ignores_case_in_every_alphabet(self, dv):
        """Dataverse string compares and contains/startswith/endswith are case-insensitive
        (docs/reference/dataverse-web-api.md, section 6: $filter) for 'Ö' as for 'O': SQLite's own lower()
        folds ASCII only, so text with a non-ASCII capital could not be found even in its own spelling."""
        create(dv, "accounts", {"name": "Ökonomie Test"})
        create(dv, "accounts", {"name": "Ärger GmbH"})
        queries = [
            "name eq 'Ökonomie Test'",
            "name eq 'ÖKONOMIE TEST'",
            "name eq 'ökonomie test'",
            "contains(name,'KONOMIE')",
            "contains(name,'ökonomie')",
            "startswith(name,'ÖKO')",
            "endswith(name,'test')",
            "tolower(name) eq 'ökonomie test'",
            "toupper(name) eq 'ÖKONOMIE TEST'",
            "name ne 'ärger gmbh'",
        ]
        for query in queries:
            rows = dv.get(f"{ROOT}/accounts", query_string={"$filter": query}).get_json()["value"]
            assert [r["name"] for r in rows] == ["Ökonomie Test"], query
        ordered = dv.get(f"{ROOT}/accounts", query_string={"$orderby": "name desc"}).get_json()["value"]
        assert [r["name"] for r in ordered] == ["Ökonomie Test", "Ärger GmbH"]

    def test_alternate_key_lookup_ignores_case_in_every_alphabet(self, dv):
        """An alternate key with a non-ASCII capital is found by $filter in any case, through its index."""
        create(dv, "accounts", {"name": "A", "accountnumber": "ÖK-1"})
        rows = dv.get(f"{ROOT}/accounts", query_string={"$filter": "accountnumber eq 'ök-1'"}).get_json()["value"]
        assert [r["accountnumber"] for r in rows] == ["ÖK-1"]

    def test_unhappy_paths_never_500(self, dv):
        """Malformed input of every kind answers 4xx in the Dataverse shape."""
        account = create(dv, "accounts", {"name": "A"})
        cases = [
            dv.post(f"{ROOT}/accounts", data="{not json", content_type="application/json"),
            dv.post(f"{ROOT}/accounts", json=[1, 2]),
            dv.post(f"{ROOT}/accounts", json={"nosuch": 1}),
            dv.post(f"{ROOT}/accounts", json={"revenue": "lots"}),
            dv.post(f"{ROOT}/accounts", json={"statecode": 7}),
            dv.post(f"{ROOT}/accounts", json={"name": "x" * 200}),
            dv.get(f"{ROOT}/accounts(not-a-guid)"),
            dv.get(f"{ROOT}/accounts?$filter=name eq"),
            dv.get(f"{ROOT}/accounts?$filter=name eq 'abc"),
            dv.get(f"{ROOT}/accounts?$select=nosuch"),
            dv.get(f"{ROOT}/accounts?$top=-1"),
            dv.get(f"{ROOT}/accounts?$expand=nosuch"),
            dv.get(f"{ROOT}/Accounts"),
            dv.delete(f"{ROOT}/accounts"),
            dv.get(f"{ROOT}/accounts({account})/nosuch"),
            dv.post(f"{ROOT}/contacts", json={"parentcustomerid_account@odata.bind": "/accounts(" + new_guid() + ")"}),
            dv.post(f"{ROOT}/contacts", json={"parentcustomerid_account@odata.bind": 5}),
        ]
        for response in cases:
            assert 400 <= response.status_code < 500, (response.status_code, response.data)
            assert set(response.get_json()) == {"error"}

    def test_bound_action_needs_namespace(self, dv):
        """Bound actions are called with the namespace; they return the typed row."""
        account = create(dv, "accounts", {"name": "A"})
        response = dv.post(f"{ROOT}/accounts({account})/Microsoft.Dynamics.CRM.Deactivate", json={})
        assert response.status_code == 200 and response.get_json()["statecode"] == 1
        assert_dataverse_error(dv.post(f"{ROOT}/accounts({account})/Deactivate", json={}), 400)

    def test_create_multiple_returns_ids(self, dv):
        """CreateMultiple creates every target and answers their ids."""
        response = dv.post(
            f"{ROOT}/accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            json={
                "Targets": [
                    {"name": "b", "@odata.type": "Microsoft.Dynamics.CRM.account"},
                    {"name": "c", "@odata.type": "Microsoft.Dynamics.CRM.account"},
                ]
            },
        )
        assert response.status_code == 200
        assert len(response.get_json()["Ids"]) == 2

    def test_create_multiple_resolves_each_reference_once(self, dv):
        """Every Target binds the same contact: it is looked up once for the whole call."""
        import sqlalchemy as sa

        contact = create(dv, "contacts", {"fullname": "Shared"})
        statements: list[str] = []
        engine = dv.application.extensions["sandbox"].db.engine
        listener = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            response = dv.post(
                f"{ROOT}/accounts/Microsoft.Dynamics.CRM.CreateMultiple",
                json={
                    "Targets": [
                        {
                            "name": f"n{i}",
                            "accountnumber": f"N-{i}",
                            "primarycontactid@odata.bind": f"/contacts({contact})",
                        }
                        for i in range(50)
                    ]
                },
            )
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert response.status_code == 200, response.data
        assert sum(s.startswith("SELECT contacts") for s in statements) == 1
        rows = dv.get(f"{ROOT}/accounts?$filter=_primarycontactid_value eq {contact}&$count=true").get_json()
        assert rows["@odata.count"] == 50

    def test_create_multiple_with_a_duplicate_key_or_a_missing_reference_creates_nothing(self, dv):
        """A Target repeating another's alternate key (409) or binding a missing row (404) fails the whole
        call with the error a single create of that Target gives."""
        create(dv, "accounts", {"name": "old", "accountnumber": "OLD"})
        single = dv.post(f"{ROOT}/accounts", json={"name": "again", "accountnumber": "OLD"})
        for targets, status in (
            ([{"name": "a", "accountnumber": "D-1"}, {"name": "b", "accountnumber": "D-1"}], single.status_code),
            ([{"name": "a", "accountnumber": "D-1"}, {"name": "b", "accountnumber": "OLD"}], single.status_code),
            (
                [
                    {"name": "a", "accountnumber": "D-1"},
                    {"name": "b", "primarycontactid@odata.bind": f"/contacts({new_guid()})"},
                ],
                404,
            ),
        ):
            response = dv.post(f"{ROOT}/accounts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
            assert response.status_code == status, response.data
            if status == single.status_code:
                assert response.get_json() == single.get_json()
            assert dv.get(f"{ROOT}/accounts?$filter=accountnumber eq 'D-1'").get_json()["value"] == []

    def test_change_tracking_delta(self, dv):
        """track-changes gives a delta link; the delta lists changes and deletions."""
        first = create(dv, "accounts", {"name": "A"})
        response = dv.get(f"{ROOT}/accounts?$select=name", headers={"Prefer": "odata.track-changes"})
        delta = response.get_json()["@odata.deltaLink"].split("localhost", 1)[1]
        second = create(dv, "accounts", {"name": "B"})
        dv.delete(f"{ROOT}/accounts({first})")
        body = dv.get(delta).get_json()
        assert body["@odata.context"].endswith("/$delta")
        ids = {item.get("accountid") or item.get("id"): item for item in body["value"]}
        assert ids[second]["name"] == "B" and ids[first]["reason"] == "deleted"

    def test_batch_changeset_with_content_id_is_atomic(self, dv):
        """A change set commits together; a failing part rolls back all of it."""

        def batch(parts: list[str]) -> Any:
            lines = ["--batch_A", "Content-Type: multipart/mixed;boundary=changeset_B", ""]
            for index, part in enumerate(parts, 1):
                lines += [
                    "--changeset_B",
                    "Content-Type: application/http",
                    "Content-Transfer-Encoding: binary",
                    f"Content-ID: {index}",
                    "",
                    part,
                    "",
                ]
            lines += ["--changeset_B--", "--batch_A--", ""]
            return dv.post(
                f"{ROOT}/$batch", data="\r\n".join(lines).encode(), content_type="multipart/mixed;boundary=batch_A"
            )

        ok = batch(
            [
                f"POST {ROOT}/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{json.dumps({'name': 'P'})}",
                f"POST {ROOT}/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                + json.dumps({"fullname": "C", "parentcustomerid_account@odata.bind": "$1"}),
            ]
        )
        assert ok.status_code == 200, ok.data
        contacts = dv.get(f"{ROOT}/contacts?$filter=fullname eq 'C'").get_json()["value"]
        assert contacts and contacts[0]["_parentcustomerid_value"]
        failed = batch(
            [
                f"POST {ROOT}/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{json.dumps({'name': 'Q'})}",
                f"POST {ROOT}/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{json.dumps({'bad': 1})}",
            ]
        )
        assert failed.status_code == 400
        assert dv.get(f"{ROOT}/accounts?$filter=name eq 'Q'").get_json()["value"] == []

    def test_service_document_and_metadata(self, dv):
        """The root lists entity sets; $metadata is CSDL XML."""
        names = {item["name"] for item in dv.get(f"{ROOT}/").get_json()["value"]}
        assert names == {"accounts", "contacts"}
        metadata = dv.get(f"{ROOT}/$metadata")
        assert metadata.status_code == 200 and b"EntityType" in metadata.data

    def test_older_roots_answer(self, dv):
        """v9.0 and v9.1 roots still answer."""
        assert dv.get("/api/data/v9.1/accounts").status_code == 200

    def test_faults_inject_429_with_retry_after(self, dv):
        """A 429 fault answers in the Dataverse shape with Retry-After."""
        added = dv.post(
            "/_sandbox/faults",
            json={"match": {"method": "GET", "path": "accounts"}, "status": 429, "retry_after": 7, "times": 1},
        )
        assert added.status_code == 201
        response = dv.get(f"{ROOT}/accounts")
        assert_dataverse_error(response, 429)
        assert response.headers["Retry-After"] == "7"
        assert dv.get(f"{ROOT}/accounts").status_code == 200


# ---- F&O ------------------------------------------------------------------------------------------------

NOYES = EnumType("NoYes", {"No": 0, "Yes": 1}, "Microsoft.Dynamics.DataEntities")


def fno_model() -> Model:
    group = EntityType(
        name="CustomerGroup",
        entity_set="CustomerGroups",
        key=("dataAreaId", "CustomerGroupId"),
        company_property="dataAreaId",
        properties={
            "dataAreaId": Property("dataAreaId", STRING, default=""),
            "CustomerGroupId": Property("CustomerGroupId", STRING, default=""),
            "Description": Property("Description", STRING, default=""),
            "IsSalesTaxIncludedInPrice": Property("IsSalesTaxIncludedInPrice", INT32, enum=NOYES, default=0),
            "Amount": Property("Amount", DECIMAL, scale=2, default=0),
            "Flag": Property("Flag", BOOLEAN, default=False),
        },
    )
    return Model("Microsoft.Dynamics.DataEntities", [group])


@pytest.fixture
def fo():
    spec = ServiceSpec("fo", fno_model, lambda c: FnoDialect(max_page_size=2), lambda: {}, lambda r: None, seed_nothing)
    client = build_app(spec, ServiceConfig(seed=None)).test_client()
    for company, group in [("usmf", "10"), ("usmf", "20"), ("usmf", "30"), ("usrt", "10")]:
        assert (
            client.post(
                "/data/CustomerGroups",
                json={"dataAreaId": company, "CustomerGroupId": group, "Description": f"{company} {group}"},
            ).status_code
            == 201
        )
    return client


class TestFnoDialect:
    def test_a_null_text_is_stored_as_empty_text(self, fo):
        """F&O has no null strings: a JSON null for text is stored (and read back) as ""."""
        response = fo.post("/data/CustomerGroups", json={"CustomerGroupId": "78", "Description": None})
        assert response.status_code == 201
        assert response.get_json()["Description"] == ""

    def test_company_given_in_any_case_is_stored_in_lower_case(self, fo):
        """dataAreaId is the one text column F&O does not store as sent: a company is lower case."""
        response = fo.post(
            "/data/CustomerGroups", json={"dataAreaId": "USRT", "CustomerGroupId": "77", "Description": "Mixed Case"}
        )
        assert response.status_code == 201
        assert (response.get_json()["dataAreaId"], response.get_json()["Description"]) == ("usrt", "Mixed Case")
        assert (
            fo.get("/data/CustomerGroups(dataAreaId='usrt',CustomerGroupId='77')?cross-company=true").status_code == 200
        )

    def test_post_answers_201_with_the_row(self, fo):
        """A create answers 201 with the full row, enums as names."""
        response = fo.post("/data/CustomerGroups", json={"CustomerGroupId": "40", "IsSalesTaxIncludedInPrice": "Yes"})
        assert response.status_code == 201
        body = response.get_json()
        assert body["dataAreaId"] == "usmf" and body["IsSalesTaxIncludedInPrice"] == "Yes"
        assert body["@odata.etag"].startswith('W/"')

    def test_default_company_only_unless_cross_company(self, fo):
        """Reads see the default company unless cross-company=true."""
        assert fo.get("/data/CustomerGroups?$count=true").get_json()["@odata.count"] == 3
        all_rows = fo.get("/data/CustomerGroups?cross-company=true&$top=10&$count=true").get_json()
        assert all_rows["@odata.count"] == 4
        usrt = fo.get("/data/CustomerGroups?cross-company=true&$filter=dataAreaId eq 'usrt'").get_json()["value"]
        assert [r["dataAreaId"] for r in usrt] == ["usrt"]
        assert fo.get("/data/CustomerGroups(dataAreaId='usrt',CustomerGroupId='10')").status_code == 404
        assert (
            fo.get("/data/CustomerGroups(dataAreaId='USRT',CustomerGroupId='10')?cross-company=true").status_code == 200
        )

    def test_skip_paging_with_next_link(self, fo):
        """Pages carry @odata.nextLink with $skip."""
        body = fo.get("/data/CustomerGroups").get_json()
        assert len(body["value"]) == 2 and "$skip=2" in body["@odata.nextLink"]

    def test_enum_literal_and_wildcard_filters(self, fo):
        """Enum literals and * wildcards work; string functions do not."""
        fo.patch(
            "/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='20')", json={"IsSalesTaxIncludedInPrice": "Yes"}
        )
        rows = fo.get(
            "/data/CustomerGroups?$filter=IsSalesTaxIncludedInPrice eq Microsoft.Dynamics.DataEntities.NoYes'Yes'"
        ).get_json()["value"]
        assert [r["CustomerGroupId"] for r in rows] == ["20"]
        rows = fo.get("/data/CustomerGroups?$filter=Description eq '*MF 3*'").get_json()["value"]
        assert [r["CustomerGroupId"] for r in rows] == ["30"]
        assert_fno_error(fo.get("/data/CustomerGroups?$filter=contains(Description,'x')"), 400)

    def test_filters_ignore_case_in_every_alphabet(self, fo):
        """F&O compares text case-insensitively (docs/reference/fno-odata.md), wildcards included, for
        non-ASCII capitals as for ASCII ones."""
        fo.patch("/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='20')", json={"Description": "Ökonomie"})
        for query in ("Description eq 'ÖKONOMIE'", "Description eq 'ökonomie'", "Description eq 'ÖK*'"):
            rows = fo.get("/data/CustomerGroups", query_string={"$filter": query}).get_json()["value"]
            assert [r["CustomerGroupId"] for r in rows] == ["20"], query

    def test_patch_missing_row_is_404_not_upsert(self, fo):
        """F&O PATCH never creates."""
        assert_fno_error(fo.patch("/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='99')", json={}), 404)

    def test_patch_and_delete_answer_204(self, fo):
        """Updates and deletes answer 204."""
        url = "/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='30')"
        assert fo.patch(url, json={"Description": "New"}).status_code == 204
        assert fo.get(url).get_json()["Description"] == "New"
        assert fo.delete(url).status_code == 204
        assert fo.get(url).status_code == 404

    def test_duplicate_key_is_refused(self, fo):
        """Creating an existing key fails in the F&O shape and writes nothing."""
        response = fo.post("/data/CustomerGroups", json={"CustomerGroupId": "10"})
        assert_fno_error(response, 409, contains="already exists")

    def test_unhappy_paths_never_500(self, fo):
        """Malformed input answers 4xx in the F&O shape."""
        cases = [
            fo.post("/data/CustomerGroups", data="{", content_type="application/json"),
            fo.post("/data/CustomerGroups", json={"Nope": 1}),
            fo.post("/data/CustomerGroups", json={"CustomerGroupId": "50", "IsSalesTaxIncludedInPrice": "Maybe"}),
            fo.post("/data/CustomerGroups", json={"CustomerGroupId": "50", "Amount": "x"}),
            fo.get("/data/CustomerGroups(CustomerGroupId='10')"),
            fo.get("/data/NoSuchEntities"),
            fo.get(
                "/data/CustomerGroups?$filter=IsSalesTaxIncludedInPrice eq Microsoft.Dynamics.DataEntities.NoYes'Maybe'"
            ),
        ]
        for response in cases:
            assert 400 <= response.status_code < 500, (response.status_code, response.data)
            assert response.get_json()["error"]["code"] == ""

    def test_batch_changeset_failure_is_500_part_with_outer_200(self, fo):
        """An F&O $batch answers 200 and reports a failed change set as a 500 part."""
        body = "\r\n".join(
            [
                "--batch_A",
                "Content-Type: multipart/mixed;boundary=changeset_B",
                "",
                "--changeset_B",
                "Content-Type: application/http",
                "Content-Transfer-Encoding: binary",
                "Content-ID: 1",
                "",
                "POST /data/CustomerGroups HTTP/1.1",
                "Content-Type: application/json",
                "",
                json.dumps({"CustomerGroupId": "60"}),
                "",
                "--changeset_B",
                "Content-Type: application/http",
                "Content-Transfer-Encoding: binary",
                "Content-ID: 2",
                "",
                "POST /data/CustomerGroups HTTP/1.1",
                "Content-Type: application/json",
                "",
                json.dumps({"CustomerGroupId": "10"}),
                "",
                "--changeset_B--",
                "--batch_A--",
                "",
            ]
        )
        response = fo.post("/data/$batch", data=body.encode(), content_type="multipart/mixed;boundary=batch_A")
        assert response.status_code == 200
        assert b"HTTP/1.1 500" in response.data
        assert fo.get("/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='60')").status_code == 404
