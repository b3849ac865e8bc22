"""The products read model follows the catalogue's events."""

from __future__ import annotations

from datetime import UTC, datetime

from scratch import project, scratch_schema

from application.settings import Settings
from domain.catalogue import Product
from domain.values import Money

AT = datetime(2026, 3, 1, tzinfo=UTC)


async def test_a_product_priced_in_another_currency_is_listed_in_it(settings: Settings) -> None:
    product = Product.create(
        sku="CUR-1", name="Thing", price=Money(1000, "EUR"), cost=Money(400, "EUR")
    )
    product.change_prices(price=Money(1200, "USD"), cost=Money(500, "USD"))
    async with scratch_schema(settings.database_url) as connection:
        await project(connection, [(event, AT) for event in product.collect_events()])
        cursor = await connection.execute(
            "SELECT price_amount, cost_amount, currency FROM products WHERE id = %s",
            (product.id,),
        )
        assert await cursor.fetchall() == [(1200, 500, "USD")]
