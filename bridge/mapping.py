"""Table maps as data: one YAML file per map, loaded, validated with coded errors, ready for the pipeline.

A map file::

    id: customers-accounts                # stable id used by the admin API and the CLI
    name: Customers V3 (accounts)
    scm: {entity: CustomersV3, filter: "PartyType eq 'Organization'"}
    sales: {table: accounts, filter: "customertypecode eq 3"}   # filter = the Dataverse reversed filter
    company: true                         # company-specific: dataAreaId <-> msdyn_company.cdm_companycode
    # company_from: quoteid              # (lines) the company of the row a lookup points at
    depends_on: [customer-groups]
    keys: [{scm: CustomerAccount, sales: accountnumber}]
    defaults: {sales: {customertypecode: 3}, scm: {PartyType: Organization}}
    fields:
      - {scm: CustomerAccount, dir: "=", sales: accountnumber}
      - {scm: CustomerGroupId, dir: "=", sales: msdyn_customergroupid.msdyn_groupid}      # lookup
      - {scm: OnHoldStatus, dir: "=", sales: msdyn_onholdstatus, values: {No: 806380000, All: 806380002}}
      - {scm: IsOneTimeCustomer, dir: "=", sales: msdyn_onetimecustomer, values: noyes}    # named value map
      - {scm: SalesUnitDecimalPrecision, dir: ">", sales: quantitydecimal, default: 0}

Directions: ``=`` both ways, ``>`` SCM to Sales, ``<`` Sales to SCM. A Sales side of ``nav.column`` is a
lookup resolved through the related table's integration key; ``a.x|b.y`` is a polymorphic lookup tried in
order (``customerid_account.accountnumber|customerid_contact.msdyn_contactpersonid``).

Transforms of a field (dual-write's "Default" and "Value map"):

- ``values``: SCM value -> Sales value pairs, or the name of a shared map (:data:`NAMED_VALUE_MAPS`:
  ``noyes`` for NoYes <-> false/true, ``country`` for ISO codes <-> the English names on Sales addresses).
  An SCM value mapped to ``~`` (null) leaves the Sales column as it is (a status whose Sales state depends
  on what came before); one mapped to a list stands for several Sales values (the first is written to Sales,
  any of them reads back as the SCM value). Unmapped values pass through unchanged (the target then says what
  is wrong).
- ``default``: written when the source has no value (null or ``""``), and to Sales for unmapped values.
- ``scm_default: true``: SCM fills the field itself (from the customer, the header or the product) when it
  is not given, so an empty Sales value is not sent to SCM: it would clear SCM's default (and a mandatory
  one, like an order's invoice account or a stocked line's site, would refuse the write).

Map-level options beside the fields:

- ``defaults``: constants per direction (``none`` on one side of a dual-write mapping row).
- ``scm.computed`` / ``sales.computed``: mandatory target columns the target fills itself (Sales makes a
  product's ``productnumber`` from company + ``msdyn_productnumber``), so DIPV1010 does not apply.
- ``sales.price_list: {currency: <SCM field>}``: new rows get the alphabetically first active price list in
  that currency as ``pricelevelid`` (one is created when the currency has none); see
  :func:`bridge.pipeline.assign_price_list`.

Validation codes: DIPV1000 malformed map, DIPV1001 unknown entity/table, DIPV1002 company mismatch,
DIPV1003 no key, DIPV1004 one-way key on a two-way map, DIPV1008 unknown column, DIPV1010 mandatory target
not mapped, DIPV1012 bad filter, DIPV1014 key not mapped, DIPV1016 bad dependency, DIPV1023/DIPV1029 two
mappings write the same SCM field / Sales column, DIPV1027 lookup without an alternate key, DIPV1030 type
mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bridge.filters import compile_predicate
from sandbox.odata import model as m
from sandbox.odata.model import EntityType, Model

Direction = Literal["=", ">", "<"]
Side = Literal["scm", "sales"]

#: folder of the maps that ship in the box
BUILTIN_MAPS = Path(__file__).parent / "maps"

#: Value maps shared by many fields, named in a map file instead of listed (``values: noyes``).
NAMED_VALUE_MAPS: dict[str, dict[str, Any]] = {
    # F&O NoYes enum <-> Dataverse two-option columns
    "noyes": {"No": False, "Yes": True},
    # Delivery address country: ISO code <-> the lower-case English name (docs/reference/dual-write.md 4.7,
    # "columbia" as published by Microsoft)
    "country": {
        "US": "united states",
        "DE": "germany",
        "FR": "france",
        "GB": "united kingdom",
        "JP": "japan",
        "IN": "india",
        "ES": "spain",
        "NZ": "new zealand",
        "AU": "australia",
        "CO": "columbia",
        "ZA": "south africa",
        "BE": "belgium",
        "CA": "canada",
        "AT": "austria",
        "TR": "türkiye",
        "CN": "china",
        "DK": "denmark",
        "SE": "sweden",
        "NO": "norway",
        "FI": "finland",
        "EG": "egypt",
    },
}


class _Keep:
    """The value map says: leave the target column as it is."""

    def __repr__(self) -> str:
        return "KEEP"


#: returned by :meth:`FieldMap.value_to_sales` for values mapped to null
KEEP: Any = _Keep()


class MapValidationError(Exception):
    """A map is invalid. ``code`` follows dual-write's DIPV codes where one fits."""

    def __init__(self, map_id: str, code: str, message: str) -> None:
        super().__init__(f"{map_id}: {code}: {message}")
        self.map_id = map_id
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"map": self.map_id, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class SalesPath:
    """The Sales side of a field: a plain column, or a lookup ``nav.column`` (one hop)."""

    nav: str | None
    column: str

    @property
    def text(self) -> str:
        return f"{self.nav}.{self.column}" if self.nav else self.column


@dataclass
class FieldMap:
    scm: str
    sales: list[SalesPath]
    direction: Direction = "="
    values: dict[str, Any] = field(default_factory=dict)
    default: Any = None
    #: SCM defaults the field itself: an empty Sales value is left out of writes to SCM
    scm_default: bool = False

    @property
    def to_sales(self) -> bool:
        return self.direction in ("=", ">")

    @property
    def to_scm(self) -> bool:
        return self.direction in ("=", "<")

    @property
    def is_lookup(self) -> bool:
        return self.sales[0].nav is not None

    def value_to_sales(self, value: Any) -> Any:
        """The Sales value of an SCM value: default for empty, value map, or :data:`KEEP`."""
        if value in (None, "") and self.default is not None:
            return self.default
        if not self.values:
            return value
        for scm_value, sales_value in self.values.items():
            if _same(scm_value, value):
                if isinstance(sales_value, list):
                    return sales_value[0] if sales_value else KEEP
                return KEEP if sales_value is None else sales_value
        return self.default if self.default is not None else value

    def value_to_scm(self, value: Any) -> Any:
        """The SCM value of a Sales value: default for empty, else the value map read backwards."""
        if value in (None, "") and self.default is not None:
            return self.default
        if not self.values:
            return value
        for scm_value, sales_value in self.values.items():
            alternatives = sales_value if isinstance(sales_value, list) else [sales_value]
            if any(alternative is not None and _same(alternative, value) for alternative in alternatives):
                return scm_value
        return value


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right or (left == right and type(left) is type(right))
    return bool(left == right)


@dataclass
class TableMap:
    """One validated table map."""

    id: str
    name: str
    scm_entity: str
    sales_table: str
    keys: list[FieldMap]
    fields: list[FieldMap]
    company: bool = False
    #: lines: the company is that of the row this Sales lookup points at (a quote line's quote)
    company_from: str | None = None
    scm_filter: str | None = None
    sales_filter: str | None = None
    defaults_sales: dict[str, Any] = field(default_factory=dict)
    defaults_scm: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    #: mandatory target columns the target side fills itself (exempt from DIPV1010)
    computed_sales: list[str] = field(default_factory=list)
    computed_scm: list[str] = field(default_factory=list)
    #: new Sales rows get a default price list in this SCM field's currency (products)
    price_list: PriceListRule | None = None
    source_file: str = ""
    #: filled on validation: the entity types behind the map
    scm_type: EntityType | None = None
    sales_type: EntityType | None = None

    @property
    def bidirectional(self) -> bool:
        return any(f.direction == "=" for f in self.fields) or (
            any(f.to_sales for f in self.fields) and any(f.to_scm for f in self.fields)
        )

    @property
    def syncs_to_sales(self) -> bool:
        return any(f.to_sales for f in self.fields)

    @property
    def syncs_to_scm(self) -> bool:
        return any(f.to_scm for f in self.fields)


@dataclass(frozen=True)
class PriceListRule:
    """How new products land on a Sales price list (docs/reference/dual-write.md 4.2): the alphabetically first
    active price list in the currency the SCM field ``currency`` names, or a new one called ``name``."""

    currency: str
    name: str = "{currency} price list"


# ---- loading --------------------------------------------------------------------------------------------


def load_maps(folders: Iterable[Path], scm_model: Model, sales_model: Model) -> list[TableMap]:
    """Every ``*.yaml`` map in ``folders`` (later folders override earlier ones by id), validated and ordered
    so that every map comes after the maps it depends on."""
    by_id: dict[str, TableMap] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.y*ml")):
            table_map = parse_map_file(path)
            by_id[table_map.id] = table_map
    maps = list(by_id.values())
    for table_map in maps:
        validate_map(table_map, scm_model, sales_model)
    return order_by_dependencies(maps)


#: the safe YAML loader, libyaml's where PyYAML was built with it: five times faster on the shipped maps, which
#: every bridge reads when it starts
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_map_file(path: Path) -> TableMap:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise MapValidationError(path.stem, "DIPV1000", f"{path.name} is not valid YAML: {exc}") from None
    return parse_map(data, source=str(path.name))


def parse_map(data: Any, source: str = "") -> TableMap:
    """A :class:`TableMap` from the YAML structure (shape checks only; see :func:`validate_map`)."""
    map_id = str(data.get("id", "")) if isinstance(data, dict) else ""
    map_id = map_id or Path(source).stem or "?"

    def fail(message: str, code: str = "DIPV1000") -> MapValidationError:
        return MapValidationError(map_id, code, message)

    if not isinstance(data, dict):
        raise fail("a map must be a YAML mapping")
    scm = data.get("scm") or {}
    sales = data.get("sales") or {}
    if not isinstance(scm, dict) or not scm.get("entity"):
        raise fail("'scm.entity' is required")
    if not isinstance(sales, dict) or not sales.get("table"):
        raise fail("'sales.table' is required")
    fields = [_parse_field(item, fail) for item in _as_list(data.get("fields"), "fields", fail)]
    keys_raw = _as_list(data.get("keys"), "keys", fail)
    if not keys_raw:
        raise fail("the map has no integration key ('keys')", "DIPV1003")
    keys: list[FieldMap] = []
    for item in keys_raw:
        if not isinstance(item, dict) or "scm" not in item or "sales" not in item:
            raise fail("each key needs 'scm' and 'sales'", "DIPV1003")
        matching = [f for f in fields if f.scm == item["scm"]]
        if not matching:
            raise fail(f"integration key field {item['scm']} is not mapped", "DIPV1014")
        keys.append(matching[0])
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise fail("'defaults' must be a mapping with 'sales' and/or 'scm'")
    price_list = sales.get("price_list")
    if price_list is not None:
        if not isinstance(price_list, dict) or not price_list.get("currency"):
            raise fail("'sales.price_list' needs 'currency' (the SCM field naming the currency)")
        price_list = PriceListRule(str(price_list["currency"]), str(price_list.get("name") or PriceListRule.name))
    return TableMap(
        id=map_id,
        name=str(data.get("name") or map_id),
        scm_entity=str(scm["entity"]),
        sales_table=str(sales["table"]),
        keys=keys,
        fields=fields,
        company=bool(data.get("company", False)),
        company_from=data.get("company_from"),
        scm_filter=scm.get("filter"),
        sales_filter=sales.get("filter"),
        defaults_sales=dict(defaults.get("sales") or {}),
        defaults_scm=dict(defaults.get("scm") or {}),
        depends_on=[str(d) for d in _as_list(data.get("depends_on"), "depends_on", fail)],
        computed_sales=[str(c) for c in _as_list(sales.get("computed"), "sales.computed", fail)],
        computed_scm=[str(c) for c in _as_list(scm.get("computed"), "scm.computed", fail)],
        price_list=price_list,
        source_file=source,
    )


def _as_list(value: Any, name: str, fail: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(f"'{name}' must be a list")
    return value


def _parse_field(item: Any, fail: Any) -> FieldMap:
    if not isinstance(item, dict) or "scm" not in item or "sales" not in item:
        raise fail(f"each field needs 'scm' and 'sales': {item!r}")
    direction = str(item.get("dir", "="))
    if direction not in ("=", ">", "<"):
        raise fail(f"field {item['scm']}: direction must be '=', '>' or '<', not {direction!r}")
    paths = []
    for alternative in str(item["sales"]).split("|"):
        nav, dot, column = alternative.strip().partition(".")
        paths.append(SalesPath(nav if dot else None, column if dot else nav))
    values = item.get("values") or {}
    if isinstance(values, str):
        if values not in NAMED_VALUE_MAPS:
            raise fail(
                f"field {item['scm']}: unknown value map '{values}' (known: {', '.join(sorted(NAMED_VALUE_MAPS))})"
            )
        values = NAMED_VALUE_MAPS[values]
    if not isinstance(values, dict):
        raise fail(f"field {item['scm']}: 'values' must be a mapping or the name of a shared value map")
    unknown = set(item) - {"scm", "sales", "dir", "values", "default", "scm_default"}
    if unknown:
        raise fail(f"field {item['scm']}: unknown option(s) {', '.join(sorted(unknown))}")
    return FieldMap(
        scm=str(item["scm"]),
        sales=paths,
        direction=direction,  # type: ignore[arg-type]
        values=values,
        default=item.get("default"),
        scm_default=bool(item.get("scm_default", False)),
    )


# ---- validation -------------------------------------------------------------------------------------------


def validate_map(table_map: TableMap, scm_model: Model, sales_model: Model) -> None:
    """Check a map against both services' models; raise :class:`MapValidationError` with a DIPV-style code."""

    def fail(code: str, message: str) -> MapValidationError:
        return MapValidationError(table_map.id, code, message)

    scm_type = scm_model.by_set.get(table_map.scm_entity)
    if scm_type is None:
        raise fail("DIPV1001", f"unknown SCM entity {table_map.scm_entity}")
    sales_type = sales_model.by_set.get(table_map.sales_table)
    if sales_type is None:
        raise fail("DIPV1001", f"unknown Sales table {table_map.sales_table}")
    table_map.scm_type, table_map.sales_type = scm_type, sales_type
    scm_company = scm_type.company_property is not None
    sales_company = "_msdyn_company_value" in sales_type.properties
    if table_map.company and not (scm_company and sales_company):
        raise fail(
            "DIPV1002",
            "the map is company-specific but "
            + ("the SCM entity is shared" if not scm_company else "the Sales table has no msdyn_company"),
        )
    if not table_map.company and scm_company and sales_company:
        raise fail("DIPV1002", "both sides are company-specific: set 'company: true'")
    if table_map.company_from is not None:
        nav = sales_type.navigations.get(table_map.company_from)
        if nav is None or nav.many or "_msdyn_company_value" not in sales_model.entities[nav.target].properties:
            raise fail(
                "DIPV1002", f"company_from: {table_map.company_from} is not a lookup to a company-specific table"
            )
    elif scm_company and not table_map.company:
        raise fail(
            "DIPV1002",
            "the SCM entity is company-specific but the Sales table is not: "
            "name the lookup whose row carries the company with 'company_from'",
        )

    seen_scm: set[str] = set()
    seen_sales: set[str] = set()
    for item in table_map.fields:
        scm_prop = _scm_property(scm_type, item.scm)
        if scm_prop is None:
            raise fail("DIPV1008", f"unknown SCM field {table_map.scm_entity}.{item.scm}")
        for path in item.sales:
            sales_prop = _sales_property(sales_model, sales_type, path, fail)
            _check_types(table_map.id, item, scm_prop, sales_prop)
        if item.to_scm:
            if item.scm in seen_scm:
                raise fail("DIPV1023", f"SCM field {item.scm} is the target of two mappings")
            seen_scm.add(item.scm)
        if item.to_sales:
            target = item.sales[0].text
            if target in seen_sales:
                raise fail("DIPV1029", f"Sales column {target} is the target of two mappings")
            seen_sales.add(target)
    for key in table_map.keys:
        if table_map.bidirectional and key.direction != "=":
            raise fail("DIPV1004", f"integration key field {key.scm} must be mapped both ways ('=')")
    for name in table_map.defaults_sales:
        if name not in sales_type.properties:
            raise fail("DIPV1008", f"default for unknown Sales column {name}")
    for name in table_map.defaults_scm:
        if _scm_property(scm_type, name) is None:
            raise fail("DIPV1008", f"default for unknown SCM field {name}")
    for name in table_map.computed_sales:
        if name not in sales_type.properties:
            raise fail("DIPV1008", f"computed: unknown Sales column {name}")
    for name in table_map.computed_scm:
        if _scm_property(scm_type, name) is None:
            raise fail("DIPV1008", f"computed: unknown SCM field {name}")
    if table_map.price_list is not None:
        nav = sales_type.navigations.get("pricelevelid")
        if nav is None or nav.many or nav.target != "pricelevel":
            raise fail("DIPV1008", f"price_list: {table_map.sales_table} has no pricelevelid lookup")
        if _scm_property(scm_type, table_map.price_list.currency) is None:
            raise fail("DIPV1008", f"price_list: unknown SCM field {table_map.price_list.currency}")
        if not table_map.syncs_to_sales:
            raise fail("DIPV1000", "price_list only applies to maps that write to Sales")
    if table_map.syncs_to_scm:
        _check_mandatory(
            fail,
            scm_type,
            {f.scm for f in table_map.fields if f.to_scm} | set(table_map.defaults_scm),
            "SCM",
            skip={scm_type.company_property or "", *table_map.computed_scm},
        )
    if table_map.syncs_to_sales:
        mapped = {
            f.sales[0].column if not f.is_lookup else f"_{f.sales[0].nav}_value" for f in table_map.fields if f.to_sales
        }
        _check_mandatory(
            fail,
            sales_type,
            mapped | set(table_map.defaults_sales),
            "Sales",
            skip={*sales_type.key, *table_map.computed_sales},
        )
    for text, label in ((table_map.scm_filter, "SCM"), (table_map.sales_filter, "Sales")):
        if text:
            try:
                compile_predicate(text)
            except ValueError as exc:
                raise fail("DIPV1012", f"the {label} filter is not valid: {exc}") from None


def _scm_property(entity: EntityType, name: str) -> m.Property | None:
    if name in entity.properties:
        return entity.properties[name]
    lowered = name.lower()  # dual-write writes F&O field names in upper case
    for prop_name, prop in entity.properties.items():
        if prop_name.lower() == lowered:
            return prop
    return None


def _sales_property(model: Model, entity: EntityType, path: SalesPath, fail: Any) -> m.Property:
    if path.nav is None:
        prop = entity.properties.get(path.column)
        if prop is None or prop.hidden:
            raise fail("DIPV1008", f"unknown Sales column {entity.entity_set}.{path.column}")
        return prop
    nav = entity.navigations.get(path.nav)
    if nav is None or nav.many or not nav.owns_fk:
        raise fail("DIPV1008", f"{path.nav} is not a lookup of {entity.entity_set}")
    target = model.entities[nav.target]
    prop = target.properties.get(path.column)
    if prop is None:
        raise fail("DIPV1008", f"unknown column {target.entity_set}.{path.column} behind lookup {path.nav}")
    keys = [set(k) for k in target.alternate_keys]
    if not any(path.column in k and k <= {path.column, "_msdyn_company_value"} for k in keys):
        raise fail(
            "DIPV1027",
            f"lookup {path.text}: {target.entity_set} has no alternate key on {path.column} to resolve it by",
        )
    return prop


_NUMERIC = {m.INT32, m.INT64, m.DECIMAL, m.DOUBLE}


def _check_types(map_id: str, item: FieldMap, scm_prop: m.Property, sales_prop: m.Property) -> None:
    scm_kind = "enum" if scm_prop.enum else scm_prop.type
    sales_kind = "choice" if sales_prop.enum else sales_prop.type
    compatible = (
        scm_kind == sales_kind
        or (scm_kind in _NUMERIC and sales_kind in _NUMERIC)
        or (scm_kind in (m.DATETIME, m.DATE) and sales_kind in (m.DATETIME, m.DATE))
        or bool(item.values)
        or (scm_kind == "enum" and sales_kind == m.STRING)
        or (scm_kind == m.STRING and sales_kind == m.GUID and item.is_lookup)
    )
    if not compatible:
        raise MapValidationError(
            map_id,
            "DIPV1030",
            f"type mismatch: {item.scm} ({scm_kind}) vs {item.sales[0].text} ({sales_kind}); add a value map",
        )


def _check_mandatory(fail: Any, entity: EntityType, mapped: set[str], label: str, skip: set[str]) -> None:
    for name, prop in entity.properties.items():
        if prop.required and name not in mapped and name not in skip and prop.default is None:
            raise fail("DIPV1010", f"mandatory {label} field {entity.entity_set}.{name} is not mapped")


def order_by_dependencies(maps: list[TableMap]) -> list[TableMap]:
    """Parents before children; unknown or circular dependencies are map errors."""
    by_id = {item.id: item for item in maps}
    ordered: list[TableMap] = []
    state: dict[str, str] = {}

    def visit(item: TableMap, trail: tuple[str, ...]) -> None:
        if state.get(item.id) == "done":
            return
        if state.get(item.id) == "visiting":
            raise MapValidationError(item.id, "DIPV1016", "circular dependency: " + " -> ".join((*trail, item.id)))
        state[item.id] = "visiting"
        for parent in item.depends_on:
            if parent not in by_id:
                raise MapValidationError(item.id, "DIPV1016", f"depends on unknown map '{parent}'")
            visit(by_id[parent], (*trail, item.id))
        state[item.id] = "done"
        ordered.append(item)

    for item in maps:
        visit(item, ())
    return ordered
