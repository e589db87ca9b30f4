"""The SCM model, rules and actions over the real HTTP layer (``/data/``): what an F&O client sees."""

from __future__ import annotations

from typing import Any

from sandbox.testing import assert_fno_error

NS = "Microsoft.Dynamics.DataEntities"


def post(client: Any, path: str, body: dict | None = None, **headers: str) -> Any:
    return client.post(f"/data/{path}", json=body if body is not None else {}, headers=headers)


def order_url(number: str, company: str = "usmf") -> str:
    return f"SalesOrderHeadersV2(dataAreaId='{company}',SalesOrderNumber='{number}')"


def new_order(client: Any, customer: str = "US-001", lines: list[tuple[str, int]] | None = None) -> str:
    created = post(client, "SalesOrderHeadersV2", {"OrderingCustomerAccountNumber": customer})
    assert created.status_code == 201, created.get_json()
    number = created.get_json()["SalesOrderNumber"]
    for item, quantity in lines if lines is not None else [("D0001", 5)]:
        line = post(
            client,
            "SalesOrderLines",
            {"SalesOrderNumber": number, "ItemNumber": item, "OrderedSalesQuantity": quantity},
        )
        assert line.status_code == 201, line.get_json()
    return number


def test_customer_by_compound_key_shows_enum_names(scm: Any) -> None:
    """CustomersV3(dataAreaId='usmf',CustomerAccount='US-013'): enums as member names, unset strings ''."""
    response = scm.get("/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-013')")
    assert response.status_code == 200
    body = response.get_json()
    assert body["OnHoldStatus"] == "All" and body["CreditLimitIsMandatory"] == "No"
    assert body["PartyType"] == "Organization" and body["VendorAccount"] == ""


def test_reads_are_scoped_to_the_default_company_unless_cross_company(scm: Any) -> None:
    """usrt customers appear only with cross-company=true."""
    plain = scm.get("/data/CustomersV3?$select=CustomerAccount,dataAreaId").get_json()["value"]
    assert {c["dataAreaId"] for c in plain} == {"usmf"}
    usrt = scm.get("/data/CustomersV3?cross-company=true&$filter=dataAreaId eq 'usrt'&$select=CustomerAccount")
    assert [c["CustomerAccount"] for c in usrt.get_json()["value"]] == [
        "RT-001",
        "RT-002",
        "RT-003",
        "RT-004",
        "RT-005",
    ]


def test_unknown_customer_group_answers_the_fno_error_body(scm: Any) -> None:
    """400 with message 'An error has occurred.' and the Infolog in innererror.message."""
    response = post(
        scm, "CustomersV3", {"CustomerGroupId": "Local", "SalesCurrencyCode": "USD", "OrganizationName": "Local Shop"}
    )
    error = assert_fno_error(response, 400)
    assert error["message"] == "An error has occurred."
    assert error["innererror"]["message"].startswith(
        "Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value 'Local' in field "
        "'Customer group' is not found in the related table 'Customer groups'."
    )


def test_order_post_answers_201_with_number_and_defaults(scm: Any) -> None:
    """A new header is numbered and an open order (Backorder, as F&O creates it); after a line it has totals."""
    response = post(
        scm,
        "SalesOrderHeadersV2",
        {"dataAreaId": "usmf", "OrderingCustomerAccountNumber": "US-001", "CurrencyCode": "USD"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert (body["SalesOrderNumber"], body["SalesOrderStatus"], body["SalesOrderProcessingStatus"]) == (
        "000001",
        "Backorder",
        "Active",
    )
    assert body["RequestedShippingDate"] == "2024-05-17T12:00:00Z"
    line = post(scm, "SalesOrderLines", {"dataAreaId": "usmf", "SalesOrderNumber": "000001", "ItemNumber": "D0001"})
    assert line.status_code == 201
    assert (line.get_json()["SalesUnitSymbol"], line.get_json()["ShippingWarehouseId"]) == ("ea", "11")
    header = scm.get(f"/data/{order_url('000001')}?$expand=SalesOrderLines($select=ItemNumber,LineAmount)").get_json()
    assert header["SalesOrderStatus"] == "Backorder" and header["OrderTotalAmount"] == 240.9
    assert header["SalesOrderLines"] == [
        {"@odata.etag": header["SalesOrderLines"][0]["@odata.etag"], "ItemNumber": "D0001", "LineAmount": 219.0}
    ]


def test_cds_lines_are_addressed_by_order_and_sequence_number(scm: Any) -> None:
    """Dual-write's flavour: CDSSalesOrderLinesV2(dataAreaId, SalesOrderNumber, LineCreationSequenceNumber)."""
    number = new_order(scm, lines=[])
    created = post(
        scm,
        "CDSSalesOrderLinesV2",
        {
            "SalesOrderNumber": number,
            "LineCreationSequenceNumber": 3,
            "ProductNumber": "D0003",
            "OrderedSalesQuantity": 3,
            "TotalDiscountAmount": 10,
        },
        **{"X-Sandbox-Identity": "dualwrite"},
    )
    assert created.status_code == 201, created.get_json()
    line = scm.get(
        f"/data/CDSSalesOrderLinesV2(dataAreaId='usmf',SalesOrderNumber='{number}',LineCreationSequenceNumber=3)"
    ).get_json()
    assert (line["LineAmount"], line["TotalDiscountAmount"], line["TotalChargesAmount"]) == (350.01, 10.0, -0.01)


def test_read_only_fields_from_dual_write_do_not_change_status(scm: Any) -> None:
    """Even the privileged dual-write identity cannot set the processing status by PATCH."""
    number = new_order(scm)
    response = scm.patch(
        f"/data/CDSSalesOrderHeaders(dataAreaId='usmf',SalesOrderNumber='{number}')",
        json={"SalesOrderProcessingStatus": "Invoiced", "CustomersOrderReference": "PO-1"},
        headers={"X-Sandbox-Identity": "dualwrite"},
    )
    assert response.status_code == 204
    body = scm.get(f"/data/{order_url(number)}").get_json()
    assert body["SalesOrderProcessingStatus"] == "Active" and body["CustomersOrderReference"] == "PO-1"


def test_order_to_cash_through_bound_actions(scm: Any) -> None:
    """Confirm, PostPackingSlip (partial, then rest), PostInvoice over /data/ with the namespace-qualified names."""
    number = new_order(scm, lines=[("D0001", 5)])
    confirmed = post(scm, f"{order_url(number)}/{NS}.Confirm")
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["SalesOrderProcessingStatus"] == "Confirmed"
    partial = post(
        scm, f"{order_url(number)}/{NS}.PostPackingSlip", {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}]}
    )
    assert partial.get_json()["SalesOrderProcessingStatus"] == "PartiallyDelivered"
    post(scm, f"{order_url(number)}/{NS}.PostPackingSlip")
    invoice = post(scm, f"{order_url(number)}/{NS}.PostInvoice")
    assert invoice.status_code == 200
    body = invoice.get_json()
    assert "SalesInvoiceHeadersV2" in body["@odata.context"]
    assert (body["InvoiceNumber"], body["TotalInvoiceAmount"], body["IsSettled"]) == ("CIV-000001", 1204.5, "No")
    onhand = scm.get(
        "/data/WarehousesOnHandV2(dataAreaId='usmf',ItemNumber='D0001',InventorySiteId='1',InventoryWarehouseId='11')"
    ).get_json()
    assert onhand["OnHandQuantity"] == 95 and onhand["ReservedOnHandQuantity"] == 0
    invoiced = scm.get(
        f"/data/SalesOrderHeadersV2?$filter=SalesOrderStatus eq {NS}.SalesStatus'Invoiced'&$select=SalesOrderNumber"
    ).get_json()["value"]
    assert [o["SalesOrderNumber"] for o in invoiced] == [number]


def test_illegal_transition_is_a_400_naming_the_problem(scm: Any) -> None:
    """Invoicing before delivery is refused with the reason in innererror."""
    number = new_order(scm)
    response = post(scm, f"{order_url(number)}/{NS}.PostInvoice")
    error = assert_fno_error(response, 400, contains="post a packing slip first")
    assert error["innererror"]["type"] == "Microsoft.Dynamics.Ax.Xpp.ErrorException"


def test_posted_invoices_are_read_only(scm: Any) -> None:
    """SalesInvoiceHeadersV2 cannot be written over OData."""
    response = post(scm, "SalesInvoiceHeadersV2", {"InvoiceNumber": "X"})
    assert response.status_code == 405


def test_quotation_confirm_on_the_cds_entity_returns_the_order(scm: Any) -> None:
    """CDSSalesQuotationHeaders(...)/Confirm answers with the CDS sales order it made."""
    quote = post(scm, "CDSSalesQuotationHeaders", {"RequestingCustomerAccountNumber": "US-003"}).get_json()
    number = quote["SalesQuotationNumber"]
    post(
        scm,
        "CDSSalesQuotationLines",
        {"SalesQuotationNumber": number, "ProductNumber": "L0001", "RequestedSalesQuantity": 2},
    )
    url = f"CDSSalesQuotationHeaders(dataAreaId='usmf',SalesQuotationNumber='{number}')"
    assert post(scm, f"{url}/{NS}.Send").get_json()["SalesQuotationStatus"] == "Sent"
    order = post(scm, f"{url}/{NS}.Confirm").get_json()
    assert "CDSSalesOrderHeaders" in order["@odata.context"] and order["QuotationNumber"] == number
    quote = scm.get(f"/data/{url}").get_json()
    assert (
        quote["SalesQuotationStatus"] == "Confirmed" and quote["GeneratedSalesOrderNumber"] == order["SalesOrderNumber"]
    )


def test_quotation_status_is_read_only_for_users_but_a_request_from_dual_write(scm: Any) -> None:
    """A plain PATCH of SalesQuotationStatus is ignored; the same PATCH from the bridge sends the quotation."""
    quote = post(scm, "SalesQuotationHeadersV2", {"RequestingCustomerAccountNumber": "US-003"}).get_json()
    url = f"/data/SalesQuotationHeadersV2(dataAreaId='usmf',SalesQuotationNumber='{quote['SalesQuotationNumber']}')"
    assert scm.patch(url, json={"SalesQuotationStatus": "Sent"}).status_code == 204
    assert scm.get(url).get_json()["SalesQuotationStatus"] == "Created"
    assert (
        scm.patch(url, json={"SalesQuotationStatus": "Sent"}, headers={"X-Sandbox-Identity": "dualwrite"}).status_code
        == 204
    )
    assert scm.get(url).get_json()["SalesQuotationStatus"] == "Sent"


def test_payment_journal_settles_an_invoice_over_http(scm: Any) -> None:
    """CustomerPaymentJournalHeaders/Lines + Post: the invoice's open amount drops to 0 and IsSettled is Yes."""
    number = new_order(scm, lines=[("D0003", 1)])
    post(scm, f"{order_url(number)}/{NS}.PostPackingSlip")
    invoice = post(scm, f"{order_url(number)}/{NS}.PostInvoice").get_json()
    journal = post(scm, "CustomerPaymentJournalHeaders", {"Description": "Wire"}).get_json()
    batch = journal["JournalBatchNumber"]
    line = post(
        scm,
        "CustomerPaymentJournalLines",
        {
            "JournalBatchNumber": batch,
            "AccountType": "Cust",
            "AccountDisplayValue": "US-001",
            "CreditAmount": invoice["TotalInvoiceAmount"],
            "MarkedInvoice": invoice["InvoiceNumber"],
        },
    )
    assert line.status_code == 201, line.get_json()
    posted = post(scm, f"CustomerPaymentJournalHeaders(dataAreaId='usmf',JournalBatchNumber='{batch}')/{NS}.Post")
    assert posted.status_code == 200 and posted.get_json()["IsPosted"] == "Yes"
    settled = scm.get(f"/data/SalesInvoiceHeadersV2(dataAreaId='usmf',InvoiceNumber='{invoice['InvoiceNumber']}')")
    assert settled.get_json()["InvoiceOpenAmount"] == 0 and settled.get_json()["IsSettled"] == "Yes"


def test_metadata_declares_the_actions_and_enums(scm: Any) -> None:
    """$metadata lists the bound actions (also on the CDS entities) and the enum types."""
    text = scm.get("/data/$metadata").get_data(as_text=True)
    for fragment in (
        '<Action Name="PostPackingSlip" IsBound="true">',
        f'Type="{NS}.CDSSalesOrderHeader"',
        '<EnumType Name="SalesOrderProcessingStatus"',
        '<EntitySet Name="CDSSalesOrderLinesV2"',
        '<EntitySet Name="CustomerPaymentJournalLines"',
    ):
        assert fragment in text, fragment


def test_a_select_read_answers_the_selected_part_of_the_whole_row(scm: Any) -> None:
    """A read with ``$select`` reads only the columns it renders: the same values and etag as the whole row's."""
    query = "cross-company=true&$filter=CustomerAccount eq 'US-013' and dataAreaId eq 'usmf'"
    whole = scm.get(f"/data/CustomersV3?{query}").get_json()["value"]
    chosen = ["CustomerAccount", "CreditLimit", "OnHoldStatus", "PartyNumber"]
    narrow = scm.get(f"/data/CustomersV3?{query}&$select={','.join(chosen)}&$top=1").get_json()["value"]
    assert len(whole) == 1
    assert narrow == [{"@odata.etag": whole[0]["@odata.etag"], **{name: whole[0][name] for name in chosen}}]
