"""The product catalogue."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidValue
from domain.values import Money, non_negative_money, non_negative_quantity, required_text

ProductStatus = Literal["draft", "published", "archived"]

MAX_CATEGORY_LENGTH = 100  # read models index it: a btree entry must stay well under 2704 bytes


def _check_prices(price: Money, cost: Money) -> None:
    non_negative_money(price, "price")
    non_negative_money(cost, "cost")
    if price.currency != cost.currency:
        raise InvalidValue("cost", "price and cost must be in the same currency")


def _category(category: str | None) -> str | None:
    """A trimmed category of bounded length, or None for none (or only blanks)."""
    if category is None or not category.strip():
        return None
    return required_text(category, "category", MAX_CATEGORY_LENGTH)


class Product(Aggregate):
    """A sellable item, identified by a unique SKU."""

    class Created(Aggregate.Created):
        sku: str
        name: str
        description: str
        category: str | None
        price: Money
        cost: Money
        reorder_level: int
        reorder_quantity: int
        supplier_id: UUID | None
        allow_backorder: bool

    @event(Created)
    def __init__(
        self,
        sku: str,
        name: str,
        description: str,
        category: str | None,
        price: Money,
        cost: Money,
        reorder_level: int,
        reorder_quantity: int,
        supplier_id: UUID | None,
        allow_backorder: bool,
    ) -> None:
        self.sku = sku
        self.name = name
        self.description = description
        self.category = category
        self.price = price
        self.cost = cost
        self.reorder_level = reorder_level
        self.reorder_quantity = reorder_quantity
        self.supplier_id = supplier_id
        self.allow_backorder = allow_backorder
        self.status: ProductStatus = "draft"

    @classmethod
    def create(
        cls,
        *,
        sku: str,
        name: str,
        price: Money,
        cost: Money,
        description: str = "",
        category: str | None = None,
        reorder_level: int = 0,
        reorder_quantity: int = 0,
        supplier_id: UUID | None = None,
        allow_backorder: bool = False,
    ) -> Product:
        """A new draft product; `sku` must already be normalised and claimed."""
        _check_prices(price, cost)
        return cls(
            sku=sku,
            name=required_text(name, "name"),
            description=description.strip(),
            category=_category(category),
            price=price,
            cost=cost,
            reorder_level=non_negative_quantity(reorder_level, "reorderLevel"),
            reorder_quantity=non_negative_quantity(reorder_quantity, "reorderQuantity"),
            supplier_id=supplier_id,
            allow_backorder=allow_backorder,
        )

    class DetailsChanged(Aggregate.Event):
        name: str
        description: str
        category: str | None
        supplier_id: UUID | None

        def apply(self, product: Product) -> None:
            product.name = self.name
            product.description = self.description
            product.category = self.category
            product.supplier_id = self.supplier_id

    class SkuChanged(Aggregate.Event):
        sku: str

        def apply(self, product: Product) -> None:
            product.sku = self.sku

    class PriceChanged(Aggregate.Event):
        price: Money

        def apply(self, product: Product) -> None:
            product.price = self.price

    class CostChanged(Aggregate.Event):
        cost: Money

        def apply(self, product: Product) -> None:
            product.cost = self.cost

    class ReorderPolicyChanged(Aggregate.Event):
        reorder_level: int
        reorder_quantity: int

        def apply(self, product: Product) -> None:
            product.reorder_level = self.reorder_level
            product.reorder_quantity = self.reorder_quantity

    class BackorderPolicyChanged(Aggregate.Event):
        allow_backorder: bool

        def apply(self, product: Product) -> None:
            product.allow_backorder = self.allow_backorder

    class Published(Aggregate.Event):
        def apply(self, product: Product) -> None:
            product.status = "published"

    class Archived(Aggregate.Event):
        def apply(self, product: Product) -> None:
            product.status = "archived"

    def change_details(
        self, *, name: str, description: str, category: str | None, supplier_id: UUID | None
    ) -> None:
        """Rename, re-describe, re-categorise or change the supplier; no event if unchanged."""
        self._check_editable()
        name = required_text(name, "name")
        category = _category(category)
        new = (name, description.strip(), category, supplier_id)
        if new != (self.name, self.description, self.category, self.supplier_id):
            self.trigger_event(
                self.DetailsChanged,
                name=new[0],
                description=new[1],
                category=new[2],
                supplier_id=new[3],
            )

    def change_sku(self, sku: str) -> None:
        """Record a new SKU (already normalised and claimed)."""
        self._check_editable()
        if sku != self.sku:
            self.trigger_event(self.SkuChanged, sku=sku)

    def change_prices(self, *, price: Money, cost: Money) -> None:
        """Set a new selling price and/or cost."""
        self._check_editable()
        _check_prices(price, cost)
        if price != self.price:
            self.trigger_event(self.PriceChanged, price=price)
        if cost != self.cost:
            self.trigger_event(self.CostChanged, cost=cost)

    def change_reorder_policy(self, *, reorder_level: int, reorder_quantity: int) -> None:
        """When to reorder and how much."""
        self._check_editable()
        level = non_negative_quantity(reorder_level, "reorderLevel")
        quantity = non_negative_quantity(reorder_quantity, "reorderQuantity")
        if (level, quantity) != (self.reorder_level, self.reorder_quantity):
            self.trigger_event(
                self.ReorderPolicyChanged, reorder_level=level, reorder_quantity=quantity
            )

    def change_backorder_policy(self, allow_backorder: bool) -> None:
        """Whether orders may reserve beyond available stock."""
        self._check_editable()
        if allow_backorder != self.allow_backorder:
            self.trigger_event(self.BackorderPolicyChanged, allow_backorder=allow_backorder)

    def publish(self) -> None:
        """Make the product visible for sale (also restores an archived one)."""
        if self.status != "published":
            self.trigger_event(self.Published)

    def archive(self) -> None:
        """Withdraw the product: it can no longer be ordered or edited."""
        if self.status != "archived":
            self.trigger_event(self.Archived)

    def _check_editable(self) -> None:
        if self.status == "archived":
            raise IllegalTransition("an archived product cannot be changed; publish it first")
