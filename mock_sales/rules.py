"""Business rules of mock Sales: what Dataverse does on every create, update and delete.

The rules run inside :class:`sandbox.odata.store.Store` for every write, whether it comes from the Web API
(``ctx.via_api``), from an action or from the seeder. Restrictions a real user meets (only Draft quotes are
editable, closed opportunities are read-only, ...) apply to API writes only; derived values (names, numbers,
prices, totals, state defaults) are filled for every write.

**State** (:mod:`mock_sales.status`): a statuscode must belong to its statecode; over the API only the
transitions in :data:`mock_sales.status.API_STATE_CHANGES` are allowed, the others need an action.

**Pricing and totals** (:mod:`mock_sales.pricing`): line amounts and header totals supplied explicitly
(only privileged writers such as dual-write, the seeder or actions can; the HTTP layer drops read-only columns
from user bodies) are kept on that write; the next line write recomputes the header from its lines again.
``_base`` twins are the value divided by the row's ``exchangerate`` (units of the row currency per unit of
the base currency).

**Editability.** Documents accept ordinary column changes over the API only in
:data:`mock_sales.status.EDITABLE_STATES` (plus the SCM-owned columns in :data:`mock_sales.status.ALWAYS_WRITABLE`);
a PATCH that makes a legal state change may carry other columns along. Lines follow their header. Repeating
stored values is never an edit, because dual-write upserts whole rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mock_sales import numbering
from mock_sales.lookups import base_currency_id, customer_row, exchange_rate, owner_company, owner_for, require_row
from mock_sales.pricing import (
    DOCUMENT_LINES,
    LINE_DOCUMENTS,
    document_totals,
    line_amounts,
    list_price,
    recompute_document,
)
from mock_sales.schema import COMPOSITE_SOURCES, STATE_MODELS, composite_address
from mock_sales.status import (
    ALWAYS_WRITABLE,
    API_STATE_CHANGES,
    EDITABLE_STATES,
    SCM_OWNED_TABLES,
    TRANSITION_HINTS,
    resolve_state,
)
from mock_sales.values import changed_columns, dec, money
from sandbox.errors import BadRequest, NotFound, error_for_status
from sandbox.livesync import INTEGRATION_IDENTITIES
from sandbox.odata.dataverse.codes import INVALID_ARGUMENT, PRIVILEGE_DENIED
from sandbox.odata.store import EntityBehavior, Operation, Row, WriteContext
from sandbox.wellknown import SYSTEM_IDENTITY

#: tables whose company defaults from the customer (or parent account), then the owner's business unit
COMPANY_DEFAULTED = frozenset({"account", "contact", "quote", "salesorder", "invoice"})

_TOTAL_COLUMNS = (
    "totalamount",
    "totalamountlessfreight",
    "totallineitemamount",
    "totaldiscountamount",
    "totallineitemdiscountamount",
    "totaltax",
)
_LINE_PRICE_INPUTS = ("_productid_value", "_uomid_value", "ispriceoverridden", "isproductoverridden")
_LINE_AMOUNT_INPUTS = ("priceperunit", "quantity", "manualdiscountamount", "volumediscountamount", "tax")
_STATE_COLUMNS = frozenset({"statecode", "statuscode"})


# ---- behaviors -----------------------------------------------------------------------------------------


class SalesBehavior(EntityBehavior):
    """Rules every Sales table shares: state pairs, owner, company and currency defaults, money base twins.

    Subclasses add table rules in :meth:`creating` / :meth:`updating`, which run before the shared
    money finishing so computed amounts get their ``_base`` twins too.
    """

    def __init__(self, entity_name: str) -> None:
        self.entity_name = entity_name
        self._twins: dict[str, tuple[str, ...]] = {}

    @property
    def bulk_create(self) -> bool:  # type: ignore[override]
        """Whether rows of this table may be created in bulk (see ``EntityBehavior.bulk_create``): the shared
        rules read only other tables (owner, business unit, currency), and some table rules keep to that
        too. Opt-in by exact class, so that a new subclass with other rules is never bulk by accident."""
        return type(self) in _BULK_CREATE_RULES and self.entity_name not in _SHARED_READS

    # -- hooks ---------------------------------------------------------------------------------------
    def on_create(self, ctx: WriteContext, values: Row) -> None:
        entity = ctx.entity
        row_id = values.get(entity.key[0])
        if "_ownerid_value" in entity.properties and not values.get("_ownerid_value"):
            values["_ownerid_value"] = owner_for(ctx.store, ctx.identity)
        if self.entity_name in STATE_MODELS:
            self._create_state(ctx, values, row_id)
        self.creating(ctx, values)
        for prefix in self._composites(entity):
            values[f"{prefix}_composite"] = composite_address(values, prefix)
        if self.entity_name in COMPANY_DEFAULTED and not values.get("_msdyn_company_value"):
            values["_msdyn_company_value"] = self.default_company(ctx, values)
        if "_transactioncurrencyid_value" in entity.properties and not values.get("_transactioncurrencyid_value"):
            values["_transactioncurrencyid_value"] = self.default_currency(ctx, values)
        self._finish_money(ctx, values, values, created=True)

    def on_update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        entity = ctx.entity
        changed = changed_columns(entity, before, changes)
        if ctx.via_api and "_msdyn_company_value" in changed and before.get("_msdyn_company_value"):
            raise BadRequest(
                f"The company (msdyn_company) of a {self.entity_name} cannot be changed once it is saved.",
                INVALID_ARGUMENT,
            )
        state_changed = False
        if self.entity_name in STATE_MODELS and changed & _STATE_COLUMNS:
            state_changed = self._update_state(ctx, before, changes)
        if ctx.via_api and not state_changed:
            self.check_editable(ctx, before, changed - _STATE_COLUMNS)
        self.updating(ctx, before, changes, changed)
        after = {**before, **changes}
        for prefix in self._composites(entity):
            if any(f"{prefix}_{part}" in changes for part in COMPOSITE_SOURCES):
                changes[f"{prefix}_composite"] = composite_address(after, prefix)
        self._finish_money(ctx, changes, after, created=False)

    def _composites(self, entity: Any) -> tuple[str, ...]:
        """The address prefixes of ``entity`` with a composite column (``address1``, ``shipto``...)."""
        cached: tuple[str, ...] | None = self.__dict__.get("_composite_prefixes")
        if cached is None:
            cached = tuple(n[: -len("_composite")] for n in entity.properties if n.endswith("_composite"))
            self.__dict__["_composite_prefixes"] = cached
        return cached

    def creating(self, ctx: WriteContext, values: Row) -> None:
        """Table-specific defaults and checks on create."""

    def updating(self, ctx: WriteContext, before: Row, changes: Row, changed: set[str]) -> None:
        """Table-specific checks and derived values on update; ``changed`` = columns that really change."""

    def check_editable(self, ctx: WriteContext, before: Row, columns: set[str]) -> None:
        """Refuse API changes to a row whose state makes it read-only."""
        editable = EDITABLE_STATES.get(self.entity_name)
        if editable is None or before.get("statecode") in editable:
            return
        blocked = sorted(columns - ALWAYS_WRITABLE.get(self.entity_name, frozenset()))
        if blocked:
            model = STATE_MODELS[self.entity_name]
            allowed = " or ".join(model.state_label(s) for s in sorted(editable))
            raise BadRequest(
                f"The {self.entity_name} with Id {before.get(ctx.entity.key[0])} is "
                f"{model.state_label(before['statecode'])} and cannot be edited: only {allowed} "
                f"{self.entity_name} records accept changes (attempted: {', '.join(blocked)}).",
                INVALID_ARGUMENT,
            )

    def default_company(self, ctx: WriteContext, values: Row) -> str | None:
        return owner_company(ctx.store, values.get("_ownerid_value"))

    def default_currency(self, ctx: WriteContext, values: Row) -> str | None:
        return base_currency_id(ctx.store)

    # -- state ---------------------------------------------------------------------------------------
    def _create_state(self, ctx: WriteContext, values: Row, row_id: Any) -> None:
        model = STATE_MODELS[self.entity_name]
        state, status = values.get("statecode"), values.get("statuscode")
        if status not in (None, -1) and state == model.initial and model.state_of(status) not in (None, state):
            state = None  # only the reason was given: the property default must not contradict it
        state, status = resolve_state(self.entity_name, state, status, row_id)
        if ctx.via_api and state != model.initial:
            self._check_transition(model.initial, state)
        values["statecode"], values["statuscode"] = state, status

    def _update_state(self, ctx: WriteContext, before: Row, changes: Row) -> bool:
        """Complete the pair, check it and (over the API) the transition. True when statecode changes."""
        row_id = before.get(ctx.entity.key[0])
        old_state = before.get("statecode")
        state = changes.get("statecode", None)
        status = changes.get("statuscode", None)
        if "statecode" in changes and state is None:
            raise BadRequest("statecode cannot be null.", INVALID_ARGUMENT)
        if state is None and "statuscode" in changes:
            state = STATE_MODELS[self.entity_name].state_of(status) if status not in (None, -1) else old_state
        if "statuscode" not in changes and state == old_state:
            status = before.get("statuscode")
        state, status = resolve_state(self.entity_name, state, status, row_id)
        changes["statecode"], changes["statuscode"] = state, status
        if state == old_state:
            return False
        if ctx.via_api:
            self._check_transition(old_state, state)
        return True

    def _check_transition(self, old_state: Any, new_state: int) -> None:
        rules = API_STATE_CHANGES.get(self.entity_name)
        if rules is None or new_state in rules.get(old_state, set()):
            return
        model = STATE_MODELS[self.entity_name]
        hint = TRANSITION_HINTS.get((self.entity_name, new_state), "")
        raise BadRequest(
            f"A {self.entity_name} cannot change from {model.state_label(old_state)} to "
            f"{model.state_label(new_state)} with an update. {hint}".strip(),
            INVALID_ARGUMENT,
        )

    # -- money ---------------------------------------------------------------------------------------
    def _finish_money(self, ctx: WriteContext, target: Row, row: Mapping[str, Any], *, created: bool) -> None:
        """Fill ``exchangerate`` and every ``_base`` twin whose amount or currency changed."""
        entity = ctx.entity
        twins = self._twins.get(entity.name)
        if twins is None:  # the money columns that have a _base twin, worked out once per entity
            twins = self._twins[entity.name] = tuple(
                n[:-5] for n in entity.properties if n.endswith("_base") and n[:-5] in entity.properties
            )
        if not twins:
            return
        currency_changed = created or "_transactioncurrencyid_value" in target
        if "exchangerate" in entity.properties and currency_changed:
            target["exchangerate"] = exchange_rate(ctx.store, row.get("_transactioncurrencyid_value"))
        rate = (
            dec(row.get("exchangerate") if not currency_changed else target.get("exchangerate"))
            if "exchangerate" in entity.properties
            else Decimal(1)
        )
        if rate <= 0:
            rate = Decimal(1)
        for name in twins:
            if currency_changed or name in target:
                value = target.get(name, row.get(name))
                target[f"{name}_base"] = None if value is None else money(dec(value) / rate)


class PersonBehavior(SalesBehavior):
    """Lead, contact and systemuser: ``fullname`` = first name + last name."""

    def creating(self, ctx: WriteContext, values: Row) -> None:
        values["fullname"] = full_name(values)
        super().creating(ctx, values)

    def updating(self, ctx: WriteContext, before: Row, changes: Row, changed: set[str]) -> None:
        if {"firstname", "lastname"} & set(changes):
            changes["fullname"] = full_name({**before, **changes})
        super().updating(ctx, before, changes, changed)


def full_name(row: Mapping[str, Any]) -> str | None:
    parts = [str(row[p]).strip() for p in ("firstname", "lastname") if row.get(p) and str(row[p]).strip()]
    return " ".join(parts) or None


class LeadBehavior(PersonBehavior):
    pass


class ContactBehavior(PersonBehavior):
    def default_company(self, ctx: WriteContext, values: Row) -> str | None:
        parent = customer_row(ctx.store, values, "parentcustomerid")
        if parent is not None and parent[1].get("_msdyn_company_value"):
            return parent[1]["_msdyn_company_value"]
        return super().default_company(ctx, values)


class ProductBehavior(SalesBehavior):
    """productnumber is required (dual-write: company code + msdyn_productnumber); unit group from the unit."""

    def creating(self, ctx: WriteContext, values: Row) -> None:
        if not values.get("productnumber"):
            if not values.get("msdyn_productnumber"):
                raise BadRequest("The productnumber (Product ID) is required.", INVALID_ARGUMENT)
            company = (
                ctx.store.get("cdm_company", {"cdm_companyid": values.get("_msdyn_company_value")})
                if values.get("_msdyn_company_value")
                else None
            )
            values["productnumber"] = f"{company['cdm_companycode'] if company else ''}{values['msdyn_productnumber']}"
        self._unit_group(ctx, values)

    def updating(self, ctx: WriteContext, before: Row, changes: Row, changed: set[str]) -> None:
        if "_defaultuomid_value" in changed:
            self._unit_group(ctx, changes)

    def _unit_group(self, ctx: WriteContext, values: Row) -> None:
        if values.get("_defaultuomid_value") and not values.get("_defaultuomscheduleid_value"):
            unit = require_row(ctx.store, "uom", values["_defaultuomid_value"], "defaultuomid")
            values["_defaultuomscheduleid_value"] = unit.get("_uomscheduleid_value")

    def on_delete(self, ctx: WriteContext, row: Row) -> None:
        for item in ctx.store.find("productpricelevel", {"_productid_value": row["productid"]}):
            ctx.store.delete("productpricelevel", item, identity=ctx.identity, via_api=False)


class PriceLevelBehavior(SalesBehavior):
    def creating(self, ctx: WriteContext, values: Row) -> None:
        if not values.get("name"):
            raise BadRequest("The price list name is required.", INVALID_ARGUMENT)

    def on_delete(self, ctx: WriteContext, row: Row) -> None:
        for item in ctx.store.find("productpricelevel", {"_pricelevelid_value": row["pricelevelid"]}):
            ctx.store.delete("productpricelevel", item, identity=ctx.identity, via_api=False)


class ProductPriceLevelBehavior(SalesBehavior):
    """A price list item needs a price list, a product and a unit of the product's unit group."""

    def creating(self, ctx: WriteContext, values: Row) -> None:
        self._complete(ctx, values, values)

    def updating(self, ctx: WriteContext, before: Row, changes: Row, changed: set[str]) -> None:
        if changed & {"_pricelevelid_value", "_productid_value", "_uomid_value"}:
            self._complete(ctx, {**before, **changes}, changes)

    def _complete(self, ctx: WriteContext, row: Mapping[str, Any], target: Row) -> None:
        for column in ("_pricelevelid_value", "_productid_value", "_uomid_value"):
            if not row.get(column):
                raise BadRequest(f"A price list item needs {column[1:-6]}.", INVALID_ARGUMENT)
        price_list = require_row(ctx.store, "pricelevel", row["_pricelevelid_value"], "pricelevelid")
        product = require_row(ctx.store, "product", row["_productid_value"], "productid")
        unit = require_row(ctx.store, "uom", row["_uomid_value"], "uomid")
        group = product.get("_defaultuomscheduleid_value")
        if group and unit.get("_uomscheduleid_value") and unit["_uomscheduleid_value"] != group:
            raise BadRequest(
                f"The unit '{unit.get('name')}' does not belong to the unit group of product '{product.get('name')}'.",
                INVALID_ARGUMENT,
            )
        target["_uomscheduleid_value"] = unit.get("_uomscheduleid_value") or group
        target["productnumber"] = product.get("productnumber")
        target["_transactioncurrencyid_value"] = price_list.get("_transactioncurrencyid_value") or row.get(
            "_transactioncurrencyid_value"
        )


class CurrencyBehavior(SalesBehavior):
    def creating(self, ctx: WriteContext, values: Row) -> None:
        if not values.get("isocurrencycode"):
            raise BadRequest("The currency code (isocurrencycode) is required.", INVALID_ARGUMENT)
        if dec(values.get("exchangerate")) <= 0:
            raise BadRequest("The exchange rate must be greater than zero.", INVALID_ARGUMENT)

    def updating(self, ctx: WriteContext, before: Row, changes: Row, changed: set[str]) -> None:
        if "exchangerate" in changed and dec(changes["exchangerate"]) <= 0:
            raise BadRequest("The exchange rate must be greater than zero.", INVALID_ARGUMENT)


class DocumentBehavior(SalesBehavior):
    """Opportunity, quote, salesorder and invoice headers: numbers, defaults, totals, cascade delete."""

    def creating(self, ctx: WriteContext, values: Row) -> None:
        store, name = ctx.store, self.entity_name
        if name in numbering.AUTO_NUMBER_PREFIXES:
            column, _ = numbering.AUTO_NUMBER_PREFIXES[name]
            if not values.get(column):
                values[column] = numbering.auto_number(store, name, values[ctx.entity.key[0]])
        if not values.get("_pricelevelid_value") and values.get("_customerid_type") == "account":
            account = customer_row(store, values)
            if account is not None and account[1].get("_defaultpricelevelid_value"):
                values["_pricelevelid_value"] = account[1]["_defaultpricelevelid_value"]
        if name in COMPANY_DEFAULTED and not values.get("_msdyn_company_value"):
            values["_msdyn_company_value"] = self.default_company(ctx, values)
        if not values.get("_transactioncurrencyid_value"):
            values["_transactioncurrencyid_value"] = self.default_currency(ctx, values)
        if ctx.via_api:
            self._check_price_list_currency(ctx, values)
        if name in numbering.SALES_DOCUMENT_PREFIXES:
            column, _ = numbering.SALES_DOCUMENT_PREFIXES[name]
            if not values.get(column):
                values[column] = numbering.document_number(store, name, values.get("_msdyn_company_value"))
        totals = document_totals(values, [])
        for column, value in totals.items():
            if values.get(column) is None:
                values[column] = value

    def updating(self, ctx: WriteContext, before: Row, changes: Row, changed: set[str]) -> None:
        if ctx.via_api and changed & {"_pricelevelid_value", "_transactioncurrencyid_value"}:
            self._check_price_list_currency(ctx, {**before, **changes})
        if changed & {"discountamount", "discountpercentage", "freightamount"} and not any(
            changes.get(c) is not None for c in _TOTAL_COLUMNS
        ):
            line_entity, fk = DOCUMENT_LINES[self.entity_name]
            lines = ctx.store.find(line_entity, {fk: before[f"{self.entity_name}id"]})
            changes.update(document_totals({**before, **changes}, lines))

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        if operation == "delete":
            return
        if (
            row.get("_customerid_type") == "contact"
            and self.entity_name != "opportunity"
            and (before is None or before.get("_customerid_value") != row.get("_customerid_value"))
        ):
            contact = ctx.store.get("contact", {"contactid": row["_customerid_value"]})
            # dual-write: a contact used on a quote, order or invoice becomes (and stays) sellable
            if contact is not None and not contact.get("msdyn_sellable"):
                ctx.store.update("contact", contact, {"msdyn_sellable": True}, identity=ctx.identity, via_api=False)
        if (
            operation == "update"
            and before is not None
            and before.get("_pricelevelid_value") != row.get("_pricelevelid_value")
            and not row.get("ispricelocked")
        ):
            self._reprice_lines(ctx, row)

    def on_delete(self, ctx: WriteContext, row: Row) -> None:
        if ctx.via_api and self.entity_name == "quote" and row.get("statecode") == 1:
            raise BadRequest(
                f"The quote with Id {row['quoteid']} is Active and cannot be deleted; close or revise it first.",
                INVALID_ARGUMENT,
            )
        line_entity, fk = DOCUMENT_LINES[self.entity_name]
        for line in ctx.store.find(line_entity, {fk: row[f"{self.entity_name}id"]}):
            ctx.store.delete(line_entity, line, identity=ctx.identity, via_api=False, extra={"cascade": True})

    def default_company(self, ctx: WriteContext, values: Row) -> str | None:
        customer = customer_row(ctx.store, values)
        if customer is not None and customer[1].get("_msdyn_company_value"):
            return customer[1]["_msdyn_company_value"]
        return super().default_company(ctx, values)

    def default_currency(self, ctx: WriteContext, values: Row) -> str | None:
        if values.get("_pricelevelid_value"):
            price_list = ctx.store.get("pricelevel", {"pricelevelid": values["_pricelevelid_value"]})
            if price_list and price_list.get("_transactioncurrencyid_value"):
                return price_list["_transactioncurrencyid_value"]
        customer = customer_row(ctx.store, values)
        if customer is not None and customer[1].get("_transactioncurrencyid_value"):
            return customer[1]["_transactioncurrencyid_value"]
        return super().default_currency(ctx, values)

    def _check_price_list_currency(self, ctx: WriteContext, row: Mapping[str, Any]) -> None:
        if not row.get("_pricelevelid_value") or not row.get("_transactioncurrencyid_value"):
            return
        price_list = ctx.store.get("pricelevel", {"pricelevelid": row["_pricelevelid_value"]})
        if price_list is None:
            return
        currency = price_list.get("_transactioncurrencyid_value")
        if currency and currency != row["_transactioncurrencyid_value"]:
            raise BadRequest(
                f"The currency of the price list '{price_list.get('name')}' does not match the "
                f"currency of the {self.entity_name}.",
                INVALID_ARGUMENT,
            )

    def _reprice_lines(self, ctx: WriteContext, row: Row) -> None:
        line_entity, fk = DOCUMENT_LINES[self.entity_name]
        for line in ctx.store.find(line_entity, {fk: row[f"{self.entity_name}id"]}):
            if line.get("ispriceoverridden") or line.get("isproductoverridden") or not line.get("_productid_value"):
                continue
            product = ctx.store.get("product", {"productid": line["_productid_value"]})
            if product is None:
                continue
            price = list_price(ctx.store, row.get("_pricelevelid_value"), product, line.get("_uomid_value"))
            ctx.store.update(line_entity, line, {"priceperunit": price}, identity=ctx.identity, via_api=False)


class LineBehavior(SalesBehavior):
    """Document lines: product or write-in, unit, list price, amounts, numbering, header totals."""

    def __init__(self, entity_name: str) -> None:
        super().__init__(entity_name)
        self.document, self.fk = LINE_DOCUMENTS[entity_name]

    def creating(self, ctx: WriteContext, values: Row) -> None:
        self._check_scm_owned(ctx, "Create")
        header = self._header(ctx, values)
        if ctx.via_api:
            self._check_header_editable(ctx, header, set(values))
        self._check_product(ctx, values)
        values["_transactioncurrencyid_value"] = header.get("_transactioncurrencyid_value") or values.get(
            "_transactioncurrencyid_value"
        )
        if values.get("quantity") is None:
            values["quantity"] = Decimal(1)
        if values.get("sequencenumber") is None:
            values["sequencenumber"] = self._next_sequence(ctx, header)
        if values.get("lineitemnumber") is None:
            values["lineitemnumber"] = values["sequencenumber"]
        self._price(ctx, header, values, values)
        self._amounts(values, values, given=set(values))

    def updating(self, ctx: WriteContext, before: Row, changes: Row, changed: set[str]) -> None:
        self._check_scm_owned(ctx, "Write")
        if self.fk in changed:
            raise BadRequest(f"A {self.entity_name} cannot be moved to another {self.document}.", INVALID_ARGUMENT)
        header = self._header(ctx, before)
        if ctx.via_api:
            self._check_header_editable(ctx, header, changed)
        after = {**before, **changes}
        if changed & set(_LINE_PRICE_INPUTS):
            self._check_product(ctx, after)
            for column in ("_uomid_value", "producttypecode"):
                if after.get(column) != before.get(column):
                    changes[column] = after[column]
        if changed & {*_LINE_PRICE_INPUTS, "priceperunit"}:
            # a priceperunit sent for a list-priced line is replaced by the list price, as Dataverse does
            self._price(ctx, header, after, changes)
        after = {**before, **changes}
        if changed & set(_LINE_AMOUNT_INPUTS) or "priceperunit" in changes:
            self._amounts(after, changes, given=set(c for c in changes if changes[c] is not None))

    def on_delete(self, ctx: WriteContext, row: Row) -> None:
        self._check_scm_owned(ctx, "Delete")
        if ctx.via_api:
            header = ctx.store.get(self.document, {f"{self.document}id": row.get(self.fk)})
            if header is not None:
                self._check_header_editable(ctx, header, {"(delete)"})

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        if ctx.extra.get("cascade"):
            return  # the header is being deleted with its lines
        if ctx.identity in INTEGRATION_IDENTITIES:
            return  # dual-write: SCM owns prices, tax and totals; the header arrives with them
        header = ctx.store.get(self.document, {f"{self.document}id": row.get(self.fk)})
        if header is not None:
            recompute_document(ctx.store, self.document, header, ctx.identity)

    # -- helpers -------------------------------------------------------------------------------------
    def _check_scm_owned(self, ctx: WriteContext, access: str) -> None:
        """Refuse an API write of a table SCM owns (:data:`mock_sales.status.SCM_OWNED_TABLES`) by anyone but the
        integration identity and the system: the missing privilege Dataverse names, whatever the path (single
        request, ``$batch``, CreateMultiple/UpdateMultiple, deep insert)."""
        owned = SCM_OWNED_TABLES.get(self.entity_name)
        if (
            owned is None
            or not ctx.via_api
            or ctx.identity in INTEGRATION_IDENTITIES
            or ctx.identity == SYSTEM_IDENTITY
        ):
            return
        privilege, type_code = owned
        users = ctx.store.find("systemuser", {"domainname": ctx.identity}, limit=1)
        user_id = users[0]["systemuserid"] if users else ctx.identity  # Dataverse names the systemuserid
        raise error_for_status(
            403,
            f"Principal user (Id={user_id}, type=8), is missing prv{access}{privilege} privilege on "
            f"OTC={type_code} for entity '{self.entity_name}'. The {self.entity_name} rows are owned by Supply Chain "
            "Management: only dual-write (the integration identity) writes them.",
            PRIVILEGE_DENIED,
        )

    def _header(self, ctx: WriteContext, values: Mapping[str, Any]) -> Row:
        header_id = values.get(self.fk)
        if not header_id:
            raise BadRequest(f"A {self.entity_name} needs its {self.document} ({self.fk[1:-6]}).", INVALID_ARGUMENT)
        header = ctx.store.get(self.document, {f"{self.document}id": header_id})
        if header is None:
            raise NotFound(f"Entity '{self.document}' With Id = {header_id} Does Not Exist")
        return header

    def _check_header_editable(self, ctx: WriteContext, header: Row, columns: set[str]) -> None:
        editable = EDITABLE_STATES[self.document]
        if header.get("statecode") in editable:
            return
        blocked = columns - ALWAYS_WRITABLE.get(self.entity_name, frozenset())
        if not blocked:
            return
        model = STATE_MODELS[self.document]
        allowed = " or ".join(model.state_label(s) for s in sorted(editable))
        raise BadRequest(
            f"The lines of the {self.document} with Id {header[f'{self.document}id']} cannot be "
            f"changed because the {self.document} is {model.state_label(header['statecode'])}: "
            f"only {allowed} {self.document} records accept line changes.",
            INVALID_ARGUMENT,
        )

    def _check_product(self, ctx: WriteContext, values: Row) -> None:
        if values.get("isproductoverridden"):
            if not values.get("productdescription"):
                raise BadRequest(
                    "A write-in product (isproductoverridden = true) needs a productdescription.", INVALID_ARGUMENT
                )
            if values.get("_productid_value"):
                raise BadRequest(
                    "A write-in line (isproductoverridden = true) cannot also reference an existing "
                    "product; clear productid or set isproductoverridden to false.",
                    INVALID_ARGUMENT,
                )
            return
        if not values.get("_productid_value"):
            raise BadRequest(
                f"A {self.entity_name} needs a productid, or a write-in product "
                "(isproductoverridden = true with productdescription).",
                INVALID_ARGUMENT,
            )
        product = require_row(ctx.store, "product", values["_productid_value"], "productid")
        if ctx.via_api and product.get("statecode") == 1:
            raise BadRequest(
                f"The product '{product.get('name')}' is retired and cannot be added to a {self.document}.",
                INVALID_ARGUMENT,
            )
        if not values.get("_uomid_value"):
            values["_uomid_value"] = product.get("_defaultuomid_value")
        if not values.get("_uomid_value"):
            raise BadRequest(
                f"A {self.entity_name} for product '{product.get('name')}' needs a unit (uomid).", INVALID_ARGUMENT
            )
        unit = require_row(ctx.store, "uom", values["_uomid_value"], "uomid")
        group = product.get("_defaultuomscheduleid_value")
        if group and unit.get("_uomscheduleid_value") and unit["_uomscheduleid_value"] != group:
            raise BadRequest(
                f"The unit '{unit.get('name')}' does not belong to the unit group of product '{product.get('name')}'.",
                INVALID_ARGUMENT,
            )
        if values.get("producttypecode") is None:
            # the lines' own choice (1 Product, 2 Bundle, ...), not the product table's type (Services, ...): a line
            # of a bundle is a Bundle, any other product's a Product (docs/reference/dataverse-fields.md)
            values["producttypecode"] = 2 if product.get("productstructure") == 3 else 1

    def _price(self, ctx: WriteContext, header: Row, row: Mapping[str, Any], target: Row) -> None:
        """Take priceperunit from the price list unless overridden, written in, or copied by an action."""
        if row.get("ispriceoverridden") or row.get("isproductoverridden") or ctx.extra.get("keep_prices"):
            if row.get("priceperunit") is None:
                target["priceperunit"] = Decimal(0)
            return
        product = ctx.store.get("product", {"productid": row["_productid_value"]})
        if product is not None:
            target["priceperunit"] = list_price(
                ctx.store, header.get("_pricelevelid_value"), product, row.get("_uomid_value")
            )

    def _amounts(self, row: Mapping[str, Any], target: Row, *, given: set[str]) -> None:
        amounts = line_amounts(row)
        for column, value in amounts.items():
            # privileged writers (dual-write, actions) may supply the amounts SCM computed
            if column in given and target.get(column) is not None:
                continue
            target[column] = value
        if target.get("volumediscountamount") is None and row.get("volumediscountamount") is None:
            target["volumediscountamount"] = Decimal(0)

    def _next_sequence(self, ctx: WriteContext, header: Row) -> int:
        lines = ctx.store.find(
            self.entity_name, {self.fk: header[f"{self.document}id"]}, order_by=["-sequencenumber"], limit=1
        )
        return int(lines[0].get("sequencenumber") or 0) + 1 if lines else 1


class SystemUserBehavior(PersonBehavior):
    pass


#: Rules whose ``on_create`` writes nothing and reads no row of its own table and whose ``after_write``
#: does nothing on create. Not here: contact (its company may come from a parent contact), documents
#: (number sequences), lines (sequence numbers, header totals), currencies and users (read by every create).
_BULK_CREATE_RULES: frozenset[type[SalesBehavior]] = frozenset(
    {SalesBehavior, LeadBehavior, ProductBehavior, PriceLevelBehavior, ProductPriceLevelBehavior}
)
#: tables the shared rules read on every create: their own rows are never created in bulk
_SHARED_READS = frozenset({"systemuser", "businessunit", "organization", "transactioncurrency"})


def behaviors() -> dict[str, EntityBehavior]:
    """Entity name -> rules, for every mock Sales table that has any."""
    table: dict[str, EntityBehavior] = {
        "lead": LeadBehavior("lead"),
        "contact": ContactBehavior("contact"),
        "systemuser": SystemUserBehavior("systemuser"),
        "product": ProductBehavior("product"),
        "pricelevel": PriceLevelBehavior("pricelevel"),
        "productpricelevel": ProductPriceLevelBehavior("productpricelevel"),
        "transactioncurrency": CurrencyBehavior("transactioncurrency"),
    }
    for document in DOCUMENT_LINES:
        table[document] = DocumentBehavior(document)
    for line in LINE_DOCUMENTS:
        table[line] = LineBehavior(line)
    for name in STATE_MODELS:
        table.setdefault(name, SalesBehavior(name))
    return table


__all__ = ["behaviors", "COMPANY_DEFAULTED"]
