"""Product: edits, price rules and the draft → published ⇄ archived lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanMutateAggregate
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from strategies import (
    blank_text,
    in_memory_application,
    money,
    padded,
    replay,
    save_and_reload,
    skus,
    state_of,
    whitespace,
)

from domain.catalogue import MAX_CATEGORY_LENGTH, Product
from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.values import MAX_QUANTITY, Money, normalise_sku

# Few distinct values, so random commands often repeat the current state (and must be no-ops).
names = st.one_of(padded(st.sampled_from(["Widget", "Gadget"])), padded(), blank_text)
descriptions = st.one_of(whitespace, padded(st.sampled_from(["Blue", "Large"])))
categories = st.one_of(st.none(), blank_text, padded(st.sampled_from(["tools", "toys"])))
# Read models index the category: the longest one allowed, in 4-byte characters, and longer.
longest_categories = st.sampled_from(
    ["\U0001f9f0" * MAX_CATEGORY_LENGTH, "x" * MAX_CATEGORY_LENGTH]
)
too_long_categories = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
    min_size=MAX_CATEGORY_LENGTH + 1,
    max_size=3 * MAX_CATEGORY_LENGTH,
)
any_categories = st.one_of(categories, padded(longest_categories), too_long_categories)
supplier_ids = st.one_of(st.none(), st.sampled_from([UUID(int=1), UUID(int=2)]))
prices = money(st.sampled_from(["EUR", "USD"]), st.sampled_from([-1, 0, 100, 250]))
reorder_numbers = st.one_of(st.integers(0, 3), st.sampled_from([-1, MAX_QUANTITY + 1]))
product_skus = st.sampled_from(["SKU-1", "SKU-2"])


def _category(category: str | None) -> str | None:
    return category.strip() or None if category else None


class ProductCommands(RuleBasedStateMachine):
    """Random edits and status changes on one product, against a model of its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.app = in_memory_application()
        self.product: Product
        self.expected: dict[str, Any] = {}
        self.saved: list[CanMutateAggregate[UUID]] = []

    @initialize(
        sku=skus,
        name=padded(),
        description=padded(),
        category=categories,
        price=money(amounts=st.integers(0, 10**6)),
        cost_amount=st.integers(0, 10**6),
        reorder_level=st.integers(0, 3),
        reorder_quantity=st.integers(0, 3),
        supplier_id=supplier_ids,
        allow_backorder=st.booleans(),
    )
    def create(
        self,
        sku: str,
        name: str,
        description: str,
        category: str | None,
        price: Money,
        cost_amount: int,
        reorder_level: int,
        reorder_quantity: int,
        supplier_id: UUID | None,
        allow_backorder: bool,
    ) -> None:
        cost = Money(cost_amount, price.currency)
        self.product = Product.create(
            sku=normalise_sku(sku),
            name=name,
            description=description,
            category=category,
            price=price,
            cost=cost,
            reorder_level=reorder_level,
            reorder_quantity=reorder_quantity,
            supplier_id=supplier_id,
            allow_backorder=allow_backorder,
        )
        self.expected = {
            "sku": sku.upper(),
            "name": name.strip(),
            "description": description.strip(),
            "category": _category(category),
            "price": price,
            "cost": cost,
            "reorder_level": reorder_level,
            "reorder_quantity": reorder_quantity,
            "supplier_id": supplier_id,
            "allow_backorder": allow_backorder,
            "status": "draft",
            "version": 1,
        }

    @property
    def archived(self) -> bool:
        return bool(self.expected["status"] == "archived")

    @rule(name=names, description=descriptions, category=any_categories, supplier_id=supplier_ids)
    def change_details(
        self, name: str, description: str, category: str | None, supplier_id: UUID | None
    ) -> None:
        def command() -> None:
            self.product.change_details(
                name=name, description=description, category=category, supplier_id=supplier_id
            )

        if self.archived:
            self.expect_refusal(command, IllegalTransition)
        elif not name.strip():
            self.expect_refusal(command, InvalidValue, "name")
        elif len((category or "").strip()) > MAX_CATEGORY_LENGTH:
            self.expect_refusal(command, InvalidValue, "category")
        else:
            new = {
                "name": name.strip(),
                "description": description.strip(),
                "category": _category(category),
                "supplier_id": supplier_id,
            }
            self.expect(command, new, [(Product.DetailsChanged, set(new))])

    @rule(before=whitespace, after=whitespace)
    def repeat_the_current_details(self, before: str, after: str) -> None:
        current = self.product
        self.expect_on_live_product(
            lambda: self.product.change_details(
                name=before + current.name + after,
                description=current.description + after,
                category=None if current.category is None else before + current.category,
                supplier_id=current.supplier_id,
            )
        )

    @rule(price=prices, cost=prices)
    def change_prices(self, price: Money, cost: Money) -> None:
        def command() -> None:
            self.product.change_prices(price=price, cost=cost)

        if self.archived:
            self.expect_refusal(command, IllegalTransition)
        elif price.amount < 0:
            self.expect_refusal(command, InvalidValue, "price")
        elif cost.amount < 0 or cost.currency != price.currency:
            self.expect_refusal(command, InvalidValue, "cost")
        else:
            self.expect(
                command,
                {"price": price, "cost": cost},
                [(Product.PriceChanged, {"price"}), (Product.CostChanged, {"cost"})],
            )

    @rule()
    def repeat_the_current_prices(self) -> None:
        price, cost = self.product.price, self.product.cost
        self.expect_on_live_product(lambda: self.product.change_prices(price=price, cost=cost))

    @rule(level=reorder_numbers, quantity=reorder_numbers)
    def change_reorder_policy(self, level: int, quantity: int) -> None:
        def command() -> None:
            self.product.change_reorder_policy(reorder_level=level, reorder_quantity=quantity)

        if self.archived:
            self.expect_refusal(command, IllegalTransition)
        elif not 0 <= level <= MAX_QUANTITY:
            self.expect_refusal(command, InvalidValue, "reorderLevel")
        elif not 0 <= quantity <= MAX_QUANTITY:
            self.expect_refusal(command, InvalidValue, "reorderQuantity")
        else:
            new = {"reorder_level": level, "reorder_quantity": quantity}
            self.expect(command, new, [(Product.ReorderPolicyChanged, set(new))])

    @rule(allow=st.booleans())
    def change_backorder_policy(self, allow: bool) -> None:
        def command() -> None:
            self.product.change_backorder_policy(allow)

        if self.archived:
            self.expect_refusal(command, IllegalTransition)
        else:
            self.expect(
                command,
                {"allow_backorder": allow},
                [(Product.BackorderPolicyChanged, {"allow_backorder"})],
            )

    @rule(sku=product_skus)
    def change_sku(self, sku: str) -> None:
        def command() -> None:
            self.product.change_sku(sku)

        if self.archived:
            self.expect_refusal(command, IllegalTransition)
        else:
            self.expect(command, {"sku": sku}, [(Product.SkuChanged, {"sku"})])

    @rule()
    def publish(self) -> None:
        # Publishing is how an archived product comes back, so it is never refused.
        self.expect(
            self.product.publish, {"status": "published"}, [(Product.Published, {"status"})]
        )

    @rule()
    def archive(self) -> None:
        self.expect(self.product.archive, {"status": "archived"}, [(Product.Archived, {"status"})])

    @rule()
    def reloading_from_the_store_gives_the_same_state(self) -> None:
        pending = list(self.product.pending_events)
        reloaded = save_and_reload(self.app, self.product)
        self.saved.extend(pending)
        assert state_of(reloaded) == state_of(self.product)

    def expect(
        self,
        command: Callable[[], None],
        new: dict[str, Any],
        events: list[tuple[type[Any], set[str]]],
    ) -> None:
        """Run `command`, which sets the fields in `new`.

        It must trigger, in order, each of `events` whose fields it changes: none if it
        changes nothing.
        """
        changed = {field for field, value in new.items() if self.expected[field] != value}
        expected_types = [event_type for event_type, fields in events if changed & fields]
        before = state_of(self.product)
        pending = len(self.product.pending_events)
        command()
        triggered = self.product.pending_events[pending:]
        assert [type(e) for e in triggered] == expected_types
        self.expected.update(new)
        self.expected["version"] += len(triggered)
        if not triggered:
            assert state_of(self.product) == before

    def expect_on_live_product(self, command: Callable[[], None]) -> None:
        """A command that repeats the current state: no event, or refused once archived."""
        if self.archived:
            self.expect_refusal(command, IllegalTransition)
        else:
            self.expect(command, {}, [])

    def expect_refusal(
        self, command: Callable[[], None], error_type: type[DomainError], field: str | None = None
    ) -> None:
        """`command` must raise `error_type` (about `field`) and change nothing."""
        before = state_of(self.product)
        pending = list(self.product.pending_events)
        with pytest.raises(error_type) as error:
            command()
        if field is not None:
            assert isinstance(error.value, InvalidValue)
            assert error.value.field_name == field
        assert state_of(self.product) == before
        assert self.product.pending_events == pending

    @invariant()
    def fields_match_the_model(self) -> None:
        actual = {field: getattr(self.product, field) for field in self.expected}
        assert actual == self.expected

    @invariant()
    def price_and_cost_are_non_negative_in_one_currency(self) -> None:
        assert self.product.price.currency == self.product.cost.currency
        assert self.product.price.amount >= 0
        assert self.product.cost.amount >= 0

    @invariant()
    def replaying_the_events_gives_the_same_state(self) -> None:
        replayed = replay(Product, [*self.saved, *self.product.pending_events])
        assert state_of(replayed) == state_of(self.product)


ProductCommands.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestRandomProductCommandsFollowTheModel = ProductCommands.TestCase


def _draft(**overrides: Any) -> Product:
    fields: dict[str, Any] = {
        "sku": "SKU-1",
        "name": "Widget",
        "price": Money(1000, "EUR"),
        "cost": Money(400, "EUR"),
    }
    return Product.create(**{**fields, **overrides})


def test_a_new_product_is_a_draft_with_trimmed_text() -> None:
    product = _draft(name="  Widget ", description=" blue\n", category="  ")
    assert (product.status, product.name, product.description) == ("draft", "Widget", "blue")
    assert product.category is None
    assert (product.reorder_level, product.reorder_quantity) == (0, 0)
    assert product.allow_backorder is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": Money(-1, "EUR")}, "price"),
        ({"cost": Money(-1, "EUR")}, "cost"),
        ({"cost": Money(400, "USD")}, "cost"),
        ({"name": " \t"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"category": "x" * (MAX_CATEGORY_LENGTH + 1)}, "category"),
        ({"reorder_level": -1}, "reorderLevel"),
        ({"reorder_quantity": MAX_QUANTITY + 1}, "reorderQuantity"),
    ],
)
def test_a_product_cannot_be_created_with_invalid_values(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidValue) as error:
        _draft(**overrides)
    assert error.value.field_name == field


def test_prices_can_move_to_another_currency_together() -> None:
    product = _draft()
    product.change_prices(price=Money(1200, "USD"), cost=Money(500, "USD"))
    assert (product.price, product.cost) == (Money(1200, "USD"), Money(500, "USD"))
    assert [type(e) for e in product.pending_events[1:]] == [
        Product.PriceChanged,
        Product.CostChanged,
    ]


def test_price_and_cost_must_share_a_currency() -> None:
    product = _draft()
    with pytest.raises(InvalidValue) as error:
        product.change_prices(price=Money(1200, "USD"), cost=Money(400, "EUR"))
    assert error.value.field_name == "cost"
    assert product.price == Money(1000, "EUR")
    assert product.version == 1


def _rename(product: Product) -> None:
    product.change_details(name="New", description="", category=None, supplier_id=None)


@pytest.mark.parametrize(
    "edit",
    [
        _rename,
        lambda product: product.change_sku("SKU-2"),
        lambda product: product.change_prices(price=Money(1, "EUR"), cost=Money(400, "EUR")),
        lambda product: product.change_reorder_policy(reorder_level=1, reorder_quantity=1),
        lambda product: product.change_backorder_policy(True),
    ],
    ids=["details", "sku", "prices", "reorder-policy", "backorder-policy"],
)
def test_an_archived_product_refuses_edits_until_published_again(
    edit: Callable[[Product], None],
) -> None:
    product = _draft()
    product.archive()
    with pytest.raises(IllegalTransition):
        edit(product)
    assert product.version == 2
    product.publish()
    edit(product)
    assert product.status == "published"
    assert product.version == 4


def test_archiving_twice_or_publishing_twice_records_one_event() -> None:
    product = _draft()
    product.publish()
    product.publish()
    product.archive()
    product.archive()
    assert [type(e).__name__ for e in product.pending_events] == [
        "Created",
        "Published",
        "Archived",
    ]


@given(category=st.one_of(longest_categories, too_long_categories), padding=whitespace)
def test_a_category_is_at_most_the_longest_a_read_model_can_index(
    category: str, padding: str
) -> None:
    if len(category.strip()) > MAX_CATEGORY_LENGTH:
        with pytest.raises(InvalidValue) as error:
            _draft(category=padding + category)
        assert error.value.field_name == "category"
        with pytest.raises(InvalidValue) as error:
            _draft().change_details(name="W", description="", category=category, supplier_id=None)
        assert error.value.field_name == "category"
        return
    product = _draft(category=padding + category + padding)
    assert product.category == category
    # Far below PostgreSQL's btree entry limit (2704 bytes) whatever the characters.
    assert len(category.encode()) <= 4 * MAX_CATEGORY_LENGTH <= 2704 // 2


def test_the_reviewers_category_of_3000_characters_is_refused() -> None:
    with pytest.raises(InvalidValue) as error:
        _draft(category="".join(chr(0x4E00 + (n * 7919) % 20000) for n in range(3000)))
    assert error.value.field_name == "category"


@settings(max_examples=50, deadline=None)
@given(price=money(amounts=st.integers(0, 10**9)), cost_amount=st.integers(0, 10**9))
def test_a_product_survives_the_round_trip_through_the_store(
    price: Money, cost_amount: int
) -> None:
    product = _draft(price=price, cost=Money(cost_amount, price.currency), supplier_id=UUID(int=7))
    product.change_details(name="Renamed", description="d", category="c", supplier_id=None)
    product.publish()
    reloaded = save_and_reload(in_memory_application(), product)
    assert reloaded == product
