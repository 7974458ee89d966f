"""τ-bench retail records <-> typed rows, both ways, with τ-bench's key order.

`seed_rows` turns τ-bench's JSON (users, orders, products) into rows of `tables`; the record
builders turn rows back into exactly the JSON τ-bench holds (and prints), so that exporting a
loaded database gives back the same data, key order included (tested for every table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from agentscaler.domains.tau.collections import Children, Collection, Record, Row

_ADDRESS = ("address1", "address2", "city", "country", "state", "zip")
_ADDRESS_STATE_FIRST = ("address1", "address2", "city", "state", "country", "zip")
# Set by the tools, appended after payment_history in this order.
ORDER_EXTRAS = (
    "cancel_reason",
    "exchange_items",
    "exchange_new_items",
    "exchange_payment_method_id",
    "exchange_price_difference",
    "return_items",
    "return_payment_method_id",
)
JSON_LISTS = frozenset({"exchange_items", "exchange_new_items", "return_items"})


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def address_columns(address: Mapping[str, str], owner: str = "") -> dict[str, Any]:
    keys = tuple(address)
    if keys not in (_ADDRESS, _ADDRESS_STATE_FIRST):
        raise ValueError(f"{owner}: address keys {keys} are not τ-bench's")
    return {**address, "address_state_first": keys == _ADDRESS_STATE_FIRST}


def address_record(row: Row) -> Record:
    keys = _ADDRESS_STATE_FIRST if row["address_state_first"] else _ADDRESS
    return {k: row[k] for k in keys}


def seed_rows(
    users: Mapping[str, Any], orders: Mapping[str, Any], products: Mapping[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table from τ-bench's three JSON objects."""
    rows: dict[str, list[dict[str, Any]]] = {t: [] for c in COLLECTIONS for t in c.tables}
    for user_id, user in users.items():
        rows["users"].append(
            {
                "user_id": user_id,
                **user["name"],
                **address_columns(user["address"], f"user {user_id}"),
                "email": user["email"],
            }
        )
        for i, (pm_id, pm) in enumerate(user["payment_methods"].items()):
            if pm["id"] != pm_id:
                raise ValueError(f"user {user_id}: payment method {pm_id} has id {pm['id']}")
            rows["payment_methods"].append({"user_id": user_id, "position": i, **pm})
        rows["user_orders"] += [
            {"user_id": user_id, "position": i, "order_id": o} for i, o in enumerate(user["orders"])
        ]
    for order_id, order in orders.items():
        extras = {k: order[k] for k in ORDER_EXTRAS if k in order}
        rows["orders"].append(
            {
                "order_id": order_id,
                "user_id": order["user_id"],
                **address_columns(order["address"], f"order {order_id}"),
                "status": order["status"],
                **{k: _json(v) if k in JSON_LISTS else v for k, v in extras.items()},
            }
        )
        for i, item in enumerate(order["items"]):
            rows["order_items"].append(
                {"order_id": order_id, "position": i, **item, "options": _json(item["options"])}
            )
        for i, f in enumerate(order["fulfillments"]):
            rows["fulfillments"].append(
                {
                    "order_id": order_id,
                    "position": i,
                    "tracking_id": _json(f["tracking_id"]),
                    "item_ids": _json(f["item_ids"]),
                }
            )
        for i, p in enumerate(order["payment_history"]):
            rows["payments"].append({"order_id": order_id, "position": i, **p})
    for product_id, product in products.items():
        rows["products"].append({"product_id": product_id, "name": product["name"]})
        for i, (item_id, v) in enumerate(product["variants"].items()):
            rows["variants"].append(
                {
                    "product_id": product_id,
                    "item_id": item_id,
                    "position": i,
                    "options": _json(v["options"]),
                    "available": v["available"],
                    "price": v["price"],
                }
            )
    return rows


def payment_method_record(row: Row) -> Record:
    out: Record = {"source": row["source"]}
    if row["brand"] is not None:
        out["brand"] = row["brand"]
    if row["last_four"] is not None:
        out["last_four"] = row["last_four"]
    if row["balance"] is not None:
        out["balance"] = row["balance"]
    out["id"] = row["id"]
    return out


def user_record(user: Row, methods: Sequence[Row], orders: Sequence[Row]) -> Record:
    return {
        "name": {"first_name": user["first_name"], "last_name": user["last_name"]},
        "address": address_record(user),
        "email": user["email"],
        "payment_methods": {m["id"]: payment_method_record(m) for m in methods},
        "orders": [o["order_id"] for o in orders],
    }


def item_record(row: Row) -> Record:
    return {
        "name": row["name"],
        "product_id": row["product_id"],
        "item_id": row["item_id"],
        "price": row["price"],
        "options": orjson.loads(row["options"]),
    }


def order_record(
    order: Row, items: Sequence[Row], fulfillments: Sequence[Row], payments: Sequence[Row]
) -> Record:
    out: Record = {
        "order_id": order["order_id"],
        "user_id": order["user_id"],
        "address": address_record(order),
        "items": [item_record(i) for i in items],
        "fulfillments": [
            {"tracking_id": orjson.loads(f["tracking_id"]), "item_ids": orjson.loads(f["item_ids"])}
            for f in fulfillments
        ],
        "status": order["status"],
        "payment_history": [
            {
                "transaction_type": p["transaction_type"],
                "amount": p["amount"],
                "payment_method_id": p["payment_method_id"],
            }
            for p in payments
        ],
    }
    for key in ORDER_EXTRAS:
        if order[key] is not None:
            out[key] = orjson.loads(order[key]) if key in JSON_LISTS else order[key]
    return out


def product_record(product: Row, variants: Sequence[Row]) -> Record:
    return {
        "name": product["name"],
        "product_id": product["product_id"],
        "variants": {
            v["item_id"]: {
                "item_id": v["item_id"],
                "options": orjson.loads(v["options"]),
                "available": bool(v["available"]),
                "price": v["price"],
            }
            for v in variants
        },
    }


def _user(row: Row, children: Children) -> Record:
    return user_record(row, children["payment_methods"], children["user_orders"])


def _order(row: Row, children: Children) -> Record:
    return order_record(
        row, children["order_items"], children["fulfillments"], children["payments"]
    )


def _product(row: Row, children: Children) -> Record:
    return product_record(row, children["variants"])


USERS = Collection(
    "users",
    "users",
    "user_id",
    (("payment_methods", "position"), ("user_orders", "position")),
    _user,
)
ORDERS = Collection(
    "orders",
    "orders",
    "order_id",
    (("order_items", "position"), ("fulfillments", "position"), ("payments", "position")),
    _order,
)
PRODUCTS = Collection("products", "products", "product_id", (("variants", "position"),), _product)
COLLECTIONS = (USERS, ORDERS, PRODUCTS)
