"""The reports: what each one selects from the read models, its columns and its order.

Each `select` names its output columns as they appear on the wire, plus hidden key columns
(`_k1`, `_k2`, ...) that order the rows uniquely; pages continue after the last row's keys.
`{where}` takes the filters a request gives, as `AND ...` conditions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from projections.valuation_queries import VALUE_SQL


@dataclass(frozen=True)
class Report:
    """One report: its rows, in a unique ascending order of its keys."""

    name: str
    select: str
    columns: tuple[str, ...]
    keys: tuple[str, ...] = ("_k1",)
    money: dict[str, str] = field(default_factory=dict)  # amount column -> currency column
    filters: dict[str, str] = field(default_factory=dict)  # parameter -> SQL column
    dated: str | None = None  # the timestamp column startDate/endDate select on
    currency: str | None = None  # the currency column, when figures are in one currency


_STOCK_JOINS = (
    " LEFT JOIN products p ON p.id = s.product_id LEFT JOIN locations l ON l.id = s.location_id"
)

STOCK_BALANCE = Report(
    name="stock-balance",
    select='SELECT s.product_id AS "productId", p.sku, p.name, s.location_id AS "locationId",'
    ' l.code AS "locationCode", s.on_hand AS "onHand", s.reserved,'
    " s.on_hand - s.reserved AS available, s.backordered,"
    " COALESCE(p.sku, '') AS _k1, COALESCE(l.code, '') AS _k2, s.stock_item_id::text AS _k3"
    f" FROM stock_levels s{_STOCK_JOINS} WHERE TRUE {{where}}",
    columns=(
        *("productId", "sku", "name", "locationId", "locationCode"),
        *("onHand", "reserved", "available", "backordered"),
    ),
    keys=("_k1", "_k2", "_k3"),
    filters={"product_id": "s.product_id", "location_id": "s.location_id"},
)

STOCK_LEDGER = Report(
    name="stock-ledger",
    select='SELECT m.position, m.at, m.product_id AS "productId", p.sku,'
    ' m.location_id AS "locationId", l.code AS "locationCode", m.kind, m.quantity,'
    ' m.on_hand_after AS "onHandAfter", m.unit_cost AS "unitCost", m.currency, m.reason,'
    " m.document, m.actor, m.position AS _k1 FROM stock_moves m"
    " LEFT JOIN products p ON p.id = m.product_id LEFT JOIN locations l ON l.id = m.location_id"
    " WHERE TRUE {where}",
    columns=(
        *("position", "at", "productId", "sku", "locationId", "locationCode", "kind"),
        *("quantity", "onHandAfter", "unitCost", "currency", "reason", "document", "actor"),
    ),
    money={"unitCost": "currency"},
    filters={"product_id": "m.product_id", "location_id": "m.location_id"},
    dated="m.at",
)

VALUATION = Report(
    name="valuation",
    select='SELECT s.product_id AS "productId", p.sku, p.name, s.location_id AS "locationId",'
    ' l.code AS "locationCode", s.on_hand AS "onHand", c.unit_cost AS "unitCost",'
    f" {VALUE_SQL} AS value, c.currency,"
    " COALESCE(p.sku, '') AS _k1, COALESCE(l.code, '') AS _k2, s.stock_item_id::text AS _k3"
    f" FROM stock_levels s JOIN product_costs c ON c.product_id = s.product_id{_STOCK_JOINS}"
    " WHERE s.on_hand <> 0 {where}",
    columns=(
        *("productId", "sku", "name", "locationId", "locationCode", "onHand"),
        *("unitCost", "value", "currency"),
    ),
    keys=("_k1", "_k2", "_k3"),
    money={"unitCost": "currency", "value": "currency"},
    filters={"product_id": "s.product_id", "location_id": "s.location_id"},
)

# Sums of amounts are numeric (past a bigint's range over enough lines); units stay a number
# on the wire: a product's lines would need billions of the largest quantity to leave bigint.
_SALES_FIGURES = (
    " count(DISTINCT sl.order_id) AS orders, sum(sl.quantity)::bigint AS units,"
    " sum(sl.revenue) AS revenue, sum(sl.tax) AS tax,"
    " sum(sl.cost) AS cost, sum(sl.revenue - sl.cost) AS margin, sl.currency"
)
_SALES_WHERE = " WHERE NOT sl.cancelled {where}"
_SALES_COLUMNS = ("orders", "units", "revenue", "tax", "cost", "margin", "currency")
_SALES_MONEY = {name: "currency" for name in ("revenue", "tax", "cost", "margin")}
_SALES_FILTERS = {
    "product_id": "sl.product_id",
    "location_id": "sl.location_id",
    "customer_id": "sl.customer_id",
}
_BY_PRODUCT = (
    f'SELECT sl.product_id AS "productId", p.sku, p.name,{_SALES_FIGURES}'
    " FROM sales_lines sl LEFT JOIN products p ON p.id = sl.product_id"
    f"{_SALES_WHERE} GROUP BY sl.product_id, p.sku, p.name, sl.currency"
)

SALES_BY_PRODUCT = Report(
    name="sales-by-product",
    select=f"SELECT *, COALESCE(sku, '') AS _k1, \"productId\"::text AS _k2 FROM ({_BY_PRODUCT}) x",
    columns=("productId", "sku", "name", *_SALES_COLUMNS),
    keys=("_k1", "_k2"),
    money=_SALES_MONEY,
    filters=_SALES_FILTERS,
    dated="sl.placed_at",
    currency="sl.currency",
)

SALES_BY_CUSTOMER = Report(
    name="sales-by-customer",
    select="SELECT *, COALESCE(name, '') AS _k1, \"customerId\"::text AS _k2 FROM ("
    f'SELECT sl.customer_id AS "customerId", c.name, c.email,{_SALES_FIGURES}'
    " FROM sales_lines sl LEFT JOIN customers c ON c.id = sl.customer_id"
    f"{_SALES_WHERE} GROUP BY sl.customer_id, c.name, c.email, sl.currency) x",
    columns=("customerId", "name", "email", *_SALES_COLUMNS),
    keys=("_k1", "_k2"),
    money=_SALES_MONEY,
    filters=_SALES_FILTERS,
    dated="sl.placed_at",
    currency="sl.currency",
)

TOP_PRODUCTS = Report(
    name="top-products",
    select='SELECT row_number() OVER (ORDER BY revenue DESC, units DESC, "productId")'
    f' AS rank, *, row_number() OVER (ORDER BY revenue DESC, units DESC, "productId") AS _k1'
    f" FROM ({_BY_PRODUCT}) x",
    columns=("rank", "productId", "sku", "name", *_SALES_COLUMNS),
    money=_SALES_MONEY,
    filters=_SALES_FILTERS,
    dated="sl.placed_at",
    currency="sl.currency",
)

REPORTS: dict[str, Report] = {
    report.name: report
    for report in (
        STOCK_BALANCE,
        STOCK_LEDGER,
        VALUATION,
        SALES_BY_PRODUCT,
        SALES_BY_CUSTOMER,
        TOP_PRODUCTS,
    )
}
