"""The projection groups this system runs."""

from __future__ import annotations

from projections.alerts import LowStockAlertsProjection
from projections.base import ProjectionGroup
from projections.catalogue import ProductsProjection
from projections.company_settings import CompanySettingsProjection
from projections.customers import CustomersProjection
from projections.locations import LocationsProjection
from projections.order_timeline import OrderTimelineProjection
from projections.orders import OrdersProjection
from projections.payments import PaymentsProjection
from projections.returns import ReturnsProjection
from projections.sales import SalesProjection
from projections.stock_ledger import StockLedgerProjection
from projections.stock_levels import StockLevelsProjection
from projections.users import ApiKeysProjection, UsersProjection
from projections.valuation import ProductCostsProjection


def projection_groups() -> tuple[ProjectionGroup, ...]:
    """Every group, each with its own durable consumer and tracked position."""
    return (
        ProjectionGroup(
            name="main",
            projections=(
                ProductsProjection(),
                LocationsProjection(),
                StockLevelsProjection(),
                StockLedgerProjection(),  # after stock levels: it records the new balance
                LowStockAlertsProjection(),  # after products and stock levels
                ProductCostsProjection(),  # after products and stock levels
                OrdersProjection(),
                OrderTimelineProjection(),
                CustomersProjection(),  # after orders: it recounts a customer's orders
                SalesProjection(),  # after orders and product costs
                CompanySettingsProjection(),
                UsersProjection(),
                ApiKeysProjection(),
                PaymentsProjection(),
                ReturnsProjection(),
            ),
        ),
    )
