"""Invoice lines are SCM's: over the Web API only dual-write (the integration identity) creates, updates or
deletes them; anyone else gets Dataverse's missing privilege (403 ``0x80040220``), on every write path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.odata.dataverse.codes import PRIVILEGE_DENIED
from sandbox.testing import assert_dataverse_error
from sandbox.wellknown import INTEGRATION_IDENTITY

ROOT = "/api/data/v9.2"
DUALWRITE = {"X-Sandbox-Identity": INTEGRATION_IDENTITY}
RETURN = {"Prefer": "return=representation"}


def _first(sales: FlaskClient, query: str) -> dict[str, Any]:
    return sales.get(f"{ROOT}/{query}&$top=1").get_json()["value"][0]


def _invoice(sales: FlaskClient) -> dict[str, Any]:
    """A draft invoice of the demo customer with no lines (headers are not what these tests are about)."""
    account = _first(sales, "accounts?$select=accountid&$filter=accountnumber eq 'US-001'")
    price_list = _first(sales, "pricelevels?$select=pricelevelid&$filter=name eq 'Contoso USD'")
    created = sales.post(
        f"{ROOT}/invoices",
        headers=RETURN,
        json={
            "name": "Owned by SCM",
            "customerid_account@odata.bind": f"/accounts({account['accountid']})",
            "pricelevelid@odata.bind": f"/pricelevels({price_list['pricelevelid']})",
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.get_json()


def _line_body(sales: FlaskClient, invoice_id: str | None = None) -> dict[str, Any]:
    product = _first(sales, "products?$select=productid&$filter=msdyn_productnumber eq 'D0001'")
    body: dict[str, Any] = {"productid@odata.bind": f"/products({product['productid']})", "quantity": 2}
    if invoice_id is not None:
        body["invoiceid@odata.bind"] = f"/invoices({invoice_id})"
    return body


def _synced_line(sales: FlaskClient, invoice_id: str) -> dict[str, Any]:
    created = sales.post(f"{ROOT}/invoicedetails", headers={**DUALWRITE, **RETURN}, json=_line_body(sales, invoice_id))
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.get_json()


def _lines(sales: FlaskClient, invoice_id: str) -> list[dict[str, Any]]:
    return sales.get(f"{ROOT}/invoicedetails?$filter=_invoiceid_value eq {invoice_id}").get_json()["value"]


def _refused(response: Any, access: str) -> None:
    assert_dataverse_error(response, 403, code=PRIVILEGE_DENIED, contains=f"missing prv{access}Invoice privilege")


def test_dual_write_creates_updates_and_deletes_invoice_lines(sales: FlaskClient) -> None:
    invoice = _invoice(sales)
    line = _synced_line(sales, invoice["invoiceid"])
    url = f"{ROOT}/invoicedetails({line['invoicedetailid']})"
    assert sales.patch(url, headers=DUALWRITE, json={"quantity": 3}).status_code == 204
    assert sales.delete(url, headers=DUALWRITE).status_code == 204
    assert _lines(sales, invoice["invoiceid"]) == []


def test_a_user_cannot_create_update_or_delete_an_invoice_line(sales: FlaskClient) -> None:
    invoice = _invoice(sales)
    _refused(sales.post(f"{ROOT}/invoicedetails", json=_line_body(sales, invoice["invoiceid"])), "Create")
    line = _synced_line(sales, invoice["invoiceid"])
    url = f"{ROOT}/invoicedetails({line['invoicedetailid']})"
    _refused(sales.patch(url, json={"quantity": 5}), "Write")
    _refused(sales.delete(url), "Delete")
    assert [(row["invoicedetailid"], row["quantity"]) for row in _lines(sales, invoice["invoiceid"])] == [
        (line["invoicedetailid"], line["quantity"])
    ]


def test_a_user_cannot_deep_insert_invoice_lines_with_an_invoice(sales: FlaskClient) -> None:
    account = _first(sales, "accounts?$select=accountid&$filter=accountnumber eq 'US-001'")
    body = {
        "name": "Deep",
        "customerid_account@odata.bind": f"/accounts({account['accountid']})",
        "invoice_details": [_line_body(sales)],
    }
    _refused(sales.post(f"{ROOT}/invoices", json=body), "Create")
    assert sales.get(f"{ROOT}/invoices?$filter=name eq 'Deep'").get_json()["value"] == []
    assert sales.post(f"{ROOT}/invoices", headers=DUALWRITE, json=body).status_code == 204


@pytest.mark.parametrize("message", ["CreateMultiple", "UpdateMultiple"])
def test_a_user_cannot_write_invoice_lines_in_bulk(sales: FlaskClient, message: str) -> None:
    invoice = _invoice(sales)
    url = f"{ROOT}/invoicedetails/Microsoft.Dynamics.CRM.{message}"
    target = {"@odata.type": "Microsoft.Dynamics.CRM.invoicedetail", **_line_body(sales, invoice["invoiceid"])}
    if message == "UpdateMultiple":
        line = _synced_line(sales, invoice["invoiceid"])
        target = {
            "@odata.type": "Microsoft.Dynamics.CRM.invoicedetail",
            "invoicedetailid": line["invoicedetailid"],
            "quantity": 7,
        }
    before = _lines(sales, invoice["invoiceid"])
    _refused(sales.post(url, json={"Targets": [target]}), "Create" if message == "CreateMultiple" else "Write")
    assert _lines(sales, invoice["invoiceid"]) == before
    # CreateMultiple answers the new ids (200), UpdateMultiple nothing (204)
    assert sales.post(url, headers=DUALWRITE, json={"Targets": [target]}).status_code in (200, 204)
    assert _lines(sales, invoice["invoiceid"]) != before


def _batch(sales: FlaskClient, invoice_id: str, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(_line_body(sales, invoice_id))
    payload = (
        "--batch_A\r\nContent-Type: multipart/mixed;boundary=changeset_B\r\n\r\n"
        "--changeset_B\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        f"POST {ROOT}/invoicedetails HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{body}\r\n"
        "--changeset_B--\r\n--batch_A--\r\n"
    )
    return sales.post(
        f"{ROOT}/$batch",
        data=payload.encode(),
        headers={"Content-Type": "multipart/mixed;boundary=batch_A", **(headers or {})},
    )


def test_a_user_cannot_create_an_invoice_line_in_a_batch_change_set(sales: FlaskClient) -> None:
    invoice = _invoice(sales)
    answer = _batch(sales, invoice["invoiceid"])
    text = answer.get_data(as_text=True)
    assert "HTTP/1.1 403" in text and PRIVILEGE_DENIED in text and "missing prvCreateInvoice privilege" in text
    assert _lines(sales, invoice["invoiceid"]) == []
    synced = _batch(sales, invoice["invoiceid"], DUALWRITE).get_data(as_text=True)
    assert "HTTP/1.1 204" in synced and len(_lines(sales, invoice["invoiceid"])) == 1
