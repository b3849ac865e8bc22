"""Command answers built from the aggregate a command returned (not from the read side)."""

from __future__ import annotations

from domain.catalogue import Product
from domain.customers import Customer
from domain.inventory import StockItem
from domain.locations import Location
from domain.orders import Order
from domain.payments import Payment
from projections.customer_queries import CustomerView
from projections.locations_queries import LocationView
from projections.order_queries import OrderLineView, OrderView
from projections.payment_queries import PaymentView, RefundView
from projections.product_queries import ProductView
from projections.stock_queries import StockItemView


def product_view(product: Product) -> ProductView:
    """The wire shape of a product."""
    return ProductView(
        id=product.id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        category=product.category,
        price=product.price,
        cost=product.cost,
        reorder_level=product.reorder_level,
        reorder_quantity=product.reorder_quantity,
        supplier_id=product.supplier_id,
        allow_backorder=product.allow_backorder,
        status=product.status,
        version=product.version,
        created_at=product.created_on,
        updated_at=product.modified_on,
    )


def location_view(location: Location) -> LocationView:
    """The wire shape of a location."""
    return LocationView(
        id=location.id,
        code=location.code,
        name=location.name,
        kind=location.kind,
        address=location.address,
        active=location.active,
        version=location.version,
    )


def stock_item_view(item: StockItem) -> StockItemView:
    """The wire shape of one product's stock at one location."""
    return StockItemView(
        product_id=item.product_id,
        location_id=item.location_id,
        on_hand=item.on_hand,
        reserved=item.reserved,
        available=item.available,
        version=item.version,
    )


def customer_view(customer: Customer) -> CustomerView:
    """The wire shape of a customer."""
    return CustomerView(
        id=customer.id,
        email=customer.email,
        name=customer.name,
        phone=customer.phone,
        address=customer.address,
        active=customer.active,
        version=customer.version,
        created_at=customer.created_on,
        updated_at=customer.modified_on,
    )


def order_view(order: Order) -> OrderView:
    """The wire shape of an order, computed by the aggregate itself."""
    return OrderView(
        id=order.id,
        order_number=order.order_number,
        customer_id=order.customer_id,
        location_id=order.location_id,
        status=order.status,
        payment_status=order.payment_status,
        fulfilment_status=order.fulfilment_status,
        currency=order.currency,
        lines=[
            OrderLineView(
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                shipped=order.shipped.get(line.product_id, 0),
                backordered=line.backordered,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in order.lines
        ],
        subtotal=order.subtotal,
        tax=order.tax,
        total=order.total,
        shipping_address=order.shipping_address,
        version=order.version,
        placed_at=order.created_on,
        updated_at=order.modified_on,
    )


def payment_view(payment: Payment, *, with_secret: bool = False) -> PaymentView:
    """The wire shape of a payment; the client secret only when the payment is started."""
    return PaymentView(
        id=payment.id,
        order_id=payment.order_id,
        amount=payment.amount,
        method=payment.method,
        provider=payment.provider,
        status=payment.status,
        provider_reference=payment.provider_reference,
        authorized=payment.authorized,
        captured=payment.captured,
        refunded=payment.refunded,
        refunds=[
            RefundView(refund_id=r.refund_id, amount=r.amount, reason=r.reason)
            for r in payment.refunds
        ],
        failure_reason=payment.failure_reason,
        version=payment.version,
        created_at=payment.created_on,
        updated_at=payment.modified_on,
        client_secret=payment.client_secret if with_secret else None,
    )
