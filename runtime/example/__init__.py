"""A small built-in bookstore domain: three tables, read and write tools, a handful of tasks.

It exists so tests and the README can exercise the runtime before generated and vertical
domains exist. Data lives in `data.json` and `tasks.json`, checked against the models below.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from ..environment import Domain
from ..errors import ToolError
from ..sql import Database, Statement
from ..task import Task, load_tasks
from ..tools import tool


class Customer(SQLModel, table=True):
    __tablename__ = "customer"
    id: str = Column(primary_key=True)
    name: str
    email: str
    balance_cents: int = Column(ge=0)


class Book(SQLModel, table=True):
    __tablename__ = "book"
    isbn: str = Column(primary_key=True)
    title: str
    author: str = Column(index=True)
    price_cents: int = Column(gt=0)
    stock: int = Column(ge=0)


class Order(SQLModel, table=True):
    __tablename__ = "book_order"
    id: int = Column(primary_key=True)
    customer_id: str = Column(foreign_key="customer.id")
    isbn: str = Column(foreign_key="book.isbn")
    quantity: int = Column(gt=0)
    status: str  # "placed" | "cancelled"


class CustomerId(BaseModel):
    customer_id: str = Field(description="The customer's id, such as 'cus_ada'.")


class AuthorQuery(BaseModel):
    author: str = Field(description="The author's full name.")


class OrderId(BaseModel):
    order_id: int = Field(description="The numeric order id.")


class PlaceOrder(BaseModel):
    customer_id: str = Field(description="The customer's id.")
    isbn: str = Field(description="The book's ISBN.")
    quantity: int = Field(ge=1, le=10, description="How many copies (1-10).")


class UpdateEmail(BaseModel):
    customer_id: str = Field(description="The customer's id.")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="The new e-mail address.")


_GET_CUSTOMER = Statement("SELECT id, name, email, balance_cents FROM customer WHERE id = ?")
_FIND_BOOKS = Statement(
    "SELECT isbn, title, author, price_cents, stock FROM book WHERE author = ? ORDER BY isbn"
)
_GET_BOOK = Statement("SELECT isbn, price_cents, stock FROM book WHERE isbn = ?")
_GET_ORDER = Statement(
    "SELECT id, customer_id, isbn, quantity, status FROM book_order WHERE id = ?"
)
_NEXT_ORDER_ID = Statement("SELECT COALESCE(MAX(id), 0) + 1 FROM book_order")
_INSERT_ORDER = Statement(
    "INSERT INTO book_order (id, customer_id, isbn, quantity, status) VALUES (?, ?, ?, ?, 'placed')"
)
_TAKE_STOCK = Statement("UPDATE book SET stock = stock - ? WHERE isbn = ?")
_CHARGE = Statement("UPDATE customer SET balance_cents = balance_cents - ? WHERE id = ?")
_CANCEL = Statement("UPDATE book_order SET status = 'cancelled' WHERE id = ?")
_SET_EMAIL = Statement("UPDATE customer SET email = ? WHERE id = ?")


async def _customer(db: Database, customer_id: str) -> dict[str, Any]:
    row = await db.fetch_one(_GET_CUSTOMER, (customer_id,))
    if row is None:
        raise ToolError(f"Error: customer {customer_id} not found")
    return dict(row)


@tool("read")
async def get_customer(db: Database, args: CustomerId) -> dict[str, Any]:
    """Get a customer's profile and store-credit balance (in cents)."""
    return await _customer(db, args.customer_id)


@tool("read")
async def find_books(db: Database, args: AuthorQuery) -> list[dict[str, Any]]:
    """List the books by an author, with price (in cents) and stock."""
    return [dict(r) for r in await db.fetch_all(_FIND_BOOKS, (args.author,))]


@tool("read")
async def get_order(db: Database, args: OrderId) -> dict[str, Any]:
    """Get an order's details and status."""
    row = await db.fetch_one(_GET_ORDER, (args.order_id,))
    if row is None:
        raise ToolError(f"Error: order {args.order_id} not found")
    return dict(row)


@tool("write")
async def place_order(db: Database, args: PlaceOrder) -> dict[str, Any]:
    """Buy copies of a book with the customer's store credit."""
    customer = await _customer(db, args.customer_id)
    book = await db.fetch_one(_GET_BOOK, (args.isbn,))
    if book is None:
        raise ToolError(f"Error: book {args.isbn} not found")
    if book["stock"] < args.quantity:
        raise ToolError(f"Error: only {book['stock']} copies of {args.isbn} in stock")
    total = book["price_cents"] * args.quantity
    if customer["balance_cents"] < total:
        raise ToolError("Error: insufficient store credit")
    row = await db.fetch_one(_NEXT_ORDER_ID)
    order_id = int(row[0]) if row else 1
    await db.execute(_INSERT_ORDER, (order_id, args.customer_id, args.isbn, args.quantity))
    await db.execute(_TAKE_STOCK, (args.quantity, args.isbn))
    await db.execute(_CHARGE, (total, args.customer_id))
    return {"order_id": order_id, "total_cents": total, "status": "placed"}


@tool("write")
async def cancel_order(db: Database, args: OrderId) -> dict[str, Any]:
    """Cancel a placed order: restock the books and refund the store credit."""
    order = await db.fetch_one(_GET_ORDER, (args.order_id,))
    if order is None:
        raise ToolError(f"Error: order {args.order_id} not found")
    if order["status"] != "placed":
        raise ToolError(f"Error: order {args.order_id} is already {order['status']}")
    book = await db.fetch_one(_GET_BOOK, (order["isbn"],))
    refund = (book["price_cents"] if book else 0) * order["quantity"]
    await db.execute(_CANCEL, (args.order_id,))
    await db.execute(_TAKE_STOCK, (-order["quantity"], order["isbn"]))
    await db.execute(_CHARGE, (-refund, order["customer_id"]))
    return {"order_id": args.order_id, "status": "cancelled", "refund_cents": refund}


@tool("write")
async def update_email(db: Database, args: UpdateEmail) -> dict[str, Any]:
    """Change a customer's e-mail address."""
    await _customer(db, args.customer_id)
    await db.execute(_SET_EMAIL, (args.email, args.customer_id))
    return {"customer_id": args.customer_id, "email": args.email}


POLICY = """You are the bookstore's support agent. Identify the customer by id before acting.
Only act on the customer's explicit request; confirm orders and cancellations in your reply."""


def bookstore() -> Domain:
    """The example domain with its seed data."""
    data = json.loads(resources.files(__package__).joinpath("data.json").read_text())
    return Domain(
        name="bookstore",
        tables=[Customer, Book, Order],
        tools=[get_customer, find_books, get_order, place_order, cancel_order, update_email],
        policy=POLICY,
        seed=data,
    )


def bookstore_tasks() -> list[Task]:
    """The example domain's tasks (gold calls; gold hashes are computed by replay)."""
    return load_tasks(resources.files(__package__).joinpath("tasks.json").read_text(), "tasks.json")
