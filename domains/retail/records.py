"""τ-bench retail records <-> typed rows, both ways, with τ-bench's key order.

`seed_rows` turns τ-bench's JSON (users, orders, products) into rows of `tables`; the record
builders turn rows back into exactly the JSON τ-bench holds (and prints), so that exporting a
loaded database gives back the same data, key order included (tested for every table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from agentscaler.runtime import Database, Statement

Row = Mapping[str, Any]
Record = dict[str, Any]
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


def address_columns(address: Mapping[str, str]) -> dict[str, Any]:
    keys = tuple(address)
    if keys not in (_ADDRESS, _ADDRESS_STATE_FIRST):
        raise ValueError(f"address keys {keys} are not τ-bench's")
    return {**address, "address_state_first": keys == _ADDRESS_STATE_FIRST}


def address_record(row: Row) -> Record:
    keys = _ADDRESS_STATE_FIRST if row["address_state_first"] else _ADDRESS
    return {k: row[k] for k in keys}


def seed_rows(
    users: Mapping[str, Any], orders: Mapping[str, Any], products: Mapping[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table from τ-bench's three JSON objects."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in _SELECT_ALL}
    for user_id, user in users.items():
        rows["users"].append(
            {
                "user_id": user_id,
                **user["name"],
                **address_columns(user["address"]),
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
                **address_columns(order["address"]),
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


_SELECT_ALL = {  # in the order τ-bench's JSON lists records (insertion order = rowid order)
    "users": Statement('SELECT * FROM "users" ORDER BY rowid'),
    "payment_methods": Statement('SELECT * FROM "payment_methods" ORDER BY user_id, position'),
    "user_orders": Statement('SELECT * FROM "user_orders" ORDER BY user_id, position'),
    "orders": Statement('SELECT * FROM "orders" ORDER BY rowid'),
    "order_items": Statement('SELECT * FROM "order_items" ORDER BY order_id, position'),
    "fulfillments": Statement('SELECT * FROM "fulfillments" ORDER BY order_id, position'),
    "payments": Statement('SELECT * FROM "payments" ORDER BY order_id, position'),
    "products": Statement('SELECT * FROM "products" ORDER BY rowid'),
    "variants": Statement('SELECT * FROM "variants" ORDER BY product_id, position'),
}


def _group(rows: Sequence[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row[key], []).append(row)
    return out


async def export(db: Database) -> dict[str, dict[str, Record]]:
    """The whole database in τ-bench's structure: {"users": ..., "orders": ..., "products": ...}."""
    rows = {name: [dict(r) for r in await db.fetch_all(stmt)] for name, stmt in _SELECT_ALL.items()}
    methods, user_orders = (
        _group(rows["payment_methods"], "user_id"),
        _group(rows["user_orders"], "user_id"),
    )
    items, fulfillments = (
        _group(rows["order_items"], "order_id"),
        _group(rows["fulfillments"], "order_id"),
    )
    payments, variants = (
        _group(rows["payments"], "order_id"),
        _group(rows["variants"], "product_id"),
    )
    return {
        "users": {
            u["user_id"]: user_record(
                u, methods.get(u["user_id"], []), user_orders.get(u["user_id"], [])
            )
            for u in rows["users"]
        },
        "orders": {
            o["order_id"]: order_record(
                o,
                items.get(o["order_id"], []),
                fulfillments.get(o["order_id"], []),
                payments.get(o["order_id"], []),
            )
            for o in rows["orders"]
        },
        "products": {
            p["product_id"]: product_record(p, variants.get(p["product_id"], []))
            for p in rows["products"]
        },
    }


_ONE = {
    name: Statement(f'SELECT * FROM "{name}" WHERE {key} = ? ORDER BY {order}')
    for name, key, order in [
        ("users", "user_id", "rowid"),
        ("payment_methods", "user_id", "position"),
        ("user_orders", "user_id", "position"),
        ("orders", "order_id", "rowid"),
        ("order_items", "order_id", "position"),
        ("fulfillments", "order_id", "position"),
        ("payments", "order_id", "position"),
        ("products", "product_id", "rowid"),
        ("variants", "product_id", "position"),
    ]
}


async def _rows(db: Database, table: str, key: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch_all(_ONE[table], (key,))]


async def user(db: Database, user_id: str) -> Record | None:
    found = await _rows(db, "users", user_id)
    if not found:
        return None
    return user_record(
        found[0],
        await _rows(db, "payment_methods", user_id),
        await _rows(db, "user_orders", user_id),
    )


async def order(db: Database, order_id: str) -> Record | None:
    found = await _rows(db, "orders", order_id)
    if not found:
        return None
    return order_record(
        found[0],
        await _rows(db, "order_items", order_id),
        await _rows(db, "fulfillments", order_id),
        await _rows(db, "payments", order_id),
    )


async def product(db: Database, product_id: str) -> Record | None:
    found = await _rows(db, "products", product_id)
    if not found:
        return None
    return product_record(found[0], await _rows(db, "variants", product_id))


RECORD = {"users": user, "orders": order, "products": product}
