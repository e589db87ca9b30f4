"""The third-party Dataverse client ``dynamics-client`` 0.8.4 (``import dynamics``) against mock Sales, unmodified.

The client takes its token with the OAuth 2.0 client-credentials flow (authlib over httpx) from a token URL, here
the sandbox's identity service with the well-known development app, and sends its own default headers on every
call (``OData-Version``, ``Prefer: odata.maxpagesize=...``, ``Prefer: return=representation`` on writes, and on
PATCH both ``If-Match: *`` and ``If-None-Match: null``; ``dynamics/client/base.py``). Each test drives its
documented normal calls (``docs/docs.md`` of the client): queries with select, filter, orderby, top, count,
expand and ``$apply``, paging with ``pagination_rules``, a row by id and by alternate key, create, update and
delete, references, FetchXML, annotations, and a function. The services run with tokens checked (auth on), as
``sandbox up`` does.
"""

from __future__ import annotations

import urllib.parse
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from leadtocash.stack import Serving, Stack, StackConfig, start_stack
from sandbox.wellknown import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID

with warnings.catch_warnings():
    # authlib announces that its httpx integration moves to httpx2; the client 0.8.4 still uses it
    warnings.simplefilter("ignore")
    dynamics = pytest.importorskip("dynamics")
    from dynamics.exceptions import NotFound, ParseError

pytestmark = [pytest.mark.live, pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Mock Sales and the identity service served on loopback ports, tokens checked (no bridge)."""
    config = StackConfig(memory=True, seed=1, auth=True)
    with start_stack(config, serve=Serving("127.0.0.1"), bridge=False) as served:
        yield served


@pytest.fixture
def client(stack: Stack) -> Any:
    """A fresh client, configured as its README says (API URL, token URL, client id and secret, scope)."""
    made = dynamics.DynamicsClient(
        api_url=f"{stack.urls['sales']}/api/data/v9.2",
        token_url=f"{stack.urls['identity']}/{DEV_TENANT_ID}/oauth2/v2.0/token",
        client_id=DEV_CLIENT_ID,
        client_secret=DEV_CLIENT_SECRET,
        scope=[f"{stack.urls['sales']}/.default"],
        cache_token=False,
    )
    yield made
    made._oauth_client.close()


def test_query_with_select_filter_orderby_top_and_count(client: Any) -> None:
    """``get()`` with select, filter, orderby, top and count: rows as a list, ``count`` from ``@odata.count``."""
    client.table = "accounts"
    client.select = ["accountid", "name", "accountnumber"]
    client.filter = ["startswith(accountnumber,'US-')"]
    client.orderby = {"accountnumber": "desc"}
    client.top = 3
    client.count = True
    result = client.get()
    numbers = [row["accountnumber"] for row in result.data]
    assert len(numbers) == 3 and numbers == sorted(numbers, reverse=True)
    assert result.count is not None and result.count >= 3
    assert all(set(row) >= {"accountid", "name", "accountnumber", "@odata.etag"} for row in result.data)


def test_expand_and_pre_expand_follow_navigation(client: Any) -> None:
    """``expand`` on a lookup and ``pre_expand`` (``accounts(id)/contact_customer_accounts``) both answer."""
    client.table = "accounts"
    client.select = ["name"]
    client.filter = ["accountnumber eq 'US-001'"]
    client.expand = {"primarycontactid": {"select": ["fullname"]}}
    account = client.get().data[0]
    assert "primarycontactid" in account
    client.reset_query()
    client.table = "accounts"
    client.filter = ["accountnumber eq 'US-001'"]
    client.select = ["accountid"]
    account_id = client.get().data[0]["accountid"]
    client.reset_query()
    client.table = "accounts"
    client.row_id = account_id
    client.pre_expand = "contact_customer_accounts"
    client.select = ["fullname"]
    contacts = client.get(not_found_ok=True).data
    assert all("fullname" in contact for contact in contacts)


def test_pagination_rules_follow_next_links_with_the_clients_page_size(client: Any) -> None:
    """``pagesize`` becomes ``Prefer: odata.maxpagesize``; ``pagination_rules={"pages": -1}`` follows every
    ``@odata.nextLink`` until a short page, so all rows arrive once."""
    client.table = "contacts"
    client.select = ["contactid"]
    client.pagesize = 7
    every = client.get(pagination_rules={"pages": -1}).data
    client.reset_query()
    client.table = "contacts"
    client.select = ["contactid"]
    client.count = True
    total = client.get().count
    ids = [row["contactid"] for row in every]
    assert len(ids) == total and len(set(ids)) == total > 7


def _account(client: Any, number: str) -> dict[str, Any]:
    client.reset_query()
    client.table = "accounts"
    client.filter = [f"accountnumber eq '{number}'"]
    client.select = ["accountid", "accountnumber", "_msdyn_company_value"]
    row: dict[str, Any] = client.get().data[0]
    client.reset_query()
    return row


def test_row_by_id_and_by_alternate_key(client: Any) -> None:
    """``row_id`` as a GUID and as ``accountnumber='US-001',_msdyn_company_value=<id>`` (the account's dual-write
    alternate key) read the same row; the account number alone is no key of account (400 ``0x80060888``)."""
    account = _account(client, "US-001")
    client.table = "accounts"
    client.row_id = f"accountnumber='US-001',_msdyn_company_value={account['_msdyn_company_value']}"
    assert client.get().data[0]["accountid"] == account["accountid"]
    client.reset_query()
    client.table = "accounts"
    client.row_id = account["accountid"]
    assert client.get().data[0]["accountnumber"] == "US-001"
    client.reset_query()
    client.table = "accounts"
    client.row_id = "accountnumber='US-001'"
    with pytest.raises(ParseError, match="0x80060888|not valid"):
        client.get()


def test_create_update_delete_and_not_found(client: Any) -> None:
    """``post`` returns the created row (``Prefer: return=representation``); ``patch`` (``If-Match: *`` with
    ``If-None-Match: null``) returns the updated row; ``delete`` then a read raises the client's NotFound."""
    client.table = "contacts"
    created = client.post(data={"firstname": "Dyna", "lastname": "Mics", "emailaddress1": "dyna@example.com"}).data
    assert created["fullname"] == "Dyna Mics" and created["contactid"]
    client.row_id = created["contactid"]
    updated = client.patch(data={"jobtitle": "Buyer"}).data
    assert updated["jobtitle"] == "Buyer" and updated["contactid"] == created["contactid"]
    client.delete()
    with pytest.raises(NotFound):
        client.get()


def test_patch_of_a_missing_row_is_not_an_upsert(client: Any) -> None:
    """``If-Match: *`` makes PATCH update-only: a missing id answers 404, nothing is created."""
    client.table = "contacts"
    client.row_id = "00000000-0000-0000-0000-0000000000aa"
    with pytest.raises(NotFound):
        client.patch(data={"lastname": "Ghost"})
    client.reset_query()
    client.table = "contacts"
    client.filter = ["lastname eq 'Ghost'"]
    assert client.get(not_found_ok=True).data == []


def test_add_reference_to_a_collection_navigation(client: Any) -> None:
    """``add_ref_to_property`` POSTs ``{"@odata.id": ...}`` to ``<table>(<id>)/<nav>/$ref``."""
    account_id = _account(client, "US-002")["accountid"]
    client.table = "contacts"
    contact = client.post(data={"lastname": "Referenced"}).data
    client.reset_query()
    client.table = "accounts"
    client.row_id = account_id
    client.add_ref_to_property = "contact_customer_accounts"
    client.post(data={"@odata.id": f"{client._api_url}/contacts({contact['contactid']})"})
    client.reset_query()
    client.table = "contacts"
    client.row_id = contact["contactid"]
    client.select = ["_parentcustomerid_value"]
    assert client.get().data[0]["_parentcustomerid_value"] == account_id


def test_fetchxml_and_apply(client: Any) -> None:
    """``fetch_xml`` sends ``?fetchXml=`` (URL-encoded); ``apply`` sends ``$apply`` and gets the groups."""
    client.table = "accounts"
    client.fetch_xml = (
        "<fetch top='2'><entity name='account'><attribute name='name'/><order attribute='name'/></entity></fetch>"
    )
    rows = client.get().data
    assert len(rows) == 2 and rows[0]["name"] <= rows[1]["name"]
    client.reset_query()
    client.table = "accounts"
    client.apply = "aggregate($count as total)"
    assert client.get().data[0]["total"] > 0


def test_show_annotations_brings_formatted_values(client: Any) -> None:
    """``show_annotations = True`` sends ``Prefer: odata.include-annotations="*"``: choice columns carry their
    formatted value."""
    client.table = "accounts"
    client.select = ["statecode"]
    client.top = 1
    client.show_annotations = True
    row = client.get().data[0]
    assert row["statecode@OData.Community.Display.V1.FormattedValue"] == "Active"


def test_functions_whoami(client: Any) -> None:
    """``client.functions.whoami()`` calls ``WhoAmI`` and returns the caller's ids."""
    answer = client.functions.whoami()
    first = answer.data[0] if hasattr(answer, "data") else answer[0] if isinstance(answer, list) else answer
    assert first["UserId"] and first["BusinessUnitId"] and first["OrganizationId"]


def test_an_unknown_table_raises_the_clients_error_with_dataverses_code(client: Any) -> None:
    """An unknown entity set answers Dataverse's 404 error body; the client raises its NotFound with it."""
    client.table = "nosuchthings"
    with pytest.raises(NotFound) as raised:
        client.get()
    assert "nosuchthings" in str(raised.value) or urllib.parse.quote("nosuchthings") in str(raised.value)
