"""τ-bench retail data as typed tables, one row per record of every nested collection.

Each child table's primary key starts with its parent's id (a user's payment methods, an order's
items), so a changed row names the user, order or product it belongs to. Lists keep their order
in a `position` column. Option dicts and id lists are JSON text (τ-bench shows them verbatim);
numbers that τ-bench may hold as int or float are `Number` columns.
"""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from agentscaler.domains.tau.columns import Number


class RetailTable(SQLModel, registry=registry()):
    """The retail tables' own registry: table names are the domain's, not global."""


class User(RetailTable, table=True):
    __tablename__ = "users"
    user_id: str = Field(primary_key=True)
    first_name: str
    last_name: str
    # Address fields hold what a caller sent (τ-bench stores tool arguments unvalidated).
    address1: str | None = Field(default=None, sa_type=Number)
    address2: str | None = Field(default=None, sa_type=Number)
    city: str | None = Field(default=None, sa_type=Number)
    country: str | None = Field(default=None, sa_type=Number)
    state: str | None = Field(default=None, sa_type=Number)
    zip: str | None = Field(default=None, sa_type=Number)
    # τ-bench's data lists country before state; its address-changing tools write state first.
    address_state_first: bool = False
    email: str


class PaymentMethod(RetailTable, table=True):
    __tablename__ = "payment_methods"
    user_id: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    position: int
    source: str  # credit_card, gift_card, paypal
    brand: str | None = None
    last_four: str | None = None
    balance: int | float | None = Field(default=None, sa_type=Number)


class UserOrder(RetailTable, table=True):
    __tablename__ = "user_orders"
    user_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    order_id: str


class Order(RetailTable, table=True):
    __tablename__ = "orders"
    order_id: str = Field(primary_key=True)
    user_id: str
    # Address fields hold what a caller sent (τ-bench stores tool arguments unvalidated).
    address1: str | None = Field(default=None, sa_type=Number)
    address2: str | None = Field(default=None, sa_type=Number)
    city: str | None = Field(default=None, sa_type=Number)
    country: str | None = Field(default=None, sa_type=Number)
    state: str | None = Field(default=None, sa_type=Number)
    zip: str | None = Field(default=None, sa_type=Number)
    address_state_first: bool = False
    status: str
    # Set by the tools, in this order after payment_history, when they apply.
    cancel_reason: str | None = None
    exchange_items: str | None = None  # JSON list
    exchange_new_items: str | None = None  # JSON list
    exchange_payment_method_id: str | None = None
    exchange_price_difference: int | float | None = Field(default=None, sa_type=Number)
    return_items: str | None = None  # JSON list
    return_payment_method_id: str | None = None


class OrderItem(RetailTable, table=True):
    __tablename__ = "order_items"
    order_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    name: str
    product_id: str
    item_id: str
    price: int | float = Field(sa_type=Number)
    options: str  # JSON object


class Fulfillment(RetailTable, table=True):
    __tablename__ = "fulfillments"
    order_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    tracking_id: str  # JSON list
    item_ids: str  # JSON list


class Payment(RetailTable, table=True):
    __tablename__ = "payments"
    order_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    transaction_type: str
    amount: int | float = Field(sa_type=Number)
    payment_method_id: str


class Product(RetailTable, table=True):
    __tablename__ = "products"
    product_id: str = Field(primary_key=True)
    name: str


class Variant(RetailTable, table=True):
    __tablename__ = "variants"
    product_id: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    position: int
    options: str  # JSON object
    available: bool
    price: int | float = Field(sa_type=Number)


TABLES: list[type[RetailTable]] = [
    User,
    PaymentMethod,
    UserOrder,
    Order,
    OrderItem,
    Fulfillment,
    Payment,
    Product,
    Variant,
]
