"""τ-bench's 16 retail tools over the typed tables, with τ-bench's observations.

Each write tool loads the records it touches, applies τ-bench's documented rules to them in
the same order (so the same checks fail first, duplicate item ids resolve the same way and
float arithmetic rounds the same), then writes back only what changed. Observations are
`json.dumps` of the records (τ-bench's format: standard separators, ASCII escapes) or its
exact error strings, raised as `ToolError` so that trajectories mark them as errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from agentscaler.domains.tau.tools import Args, Implementation, load_tools
from agentscaler.runtime import Database, Statement, Tool, ToolError

from . import records
from .records import JSON_LISTS, ORDER_EXTRAS, Record

TOOLS_JSON = Path(__file__).parent / "data" / "tools.json"
CANCEL_REASONS = ("no longer needed", "ordered by mistake")

_USER_IDS = Statement(
    'SELECT user_id, email, first_name, last_name, zip FROM "users" ORDER BY rowid'
)
_PRODUCT_NAMES = Statement('SELECT name, product_id FROM "products" ORDER BY rowid')
_SET_BALANCE = Statement(
    'UPDATE "payment_methods" SET balance = :balance WHERE user_id = :user_id AND id = :id'
)
_SET_USER_ADDRESS = Statement(
    'UPDATE "users" SET address1 = :address1, address2 = :address2, city = :city, '
    "state = :state, country = :country, zip = :zip, address_state_first = 1 "
    "WHERE user_id = :user_id"
)
_SET_ORDER = Statement(
    'UPDATE "orders" SET address1 = :address1, address2 = :address2, city = :city, '
    "country = :country, state = :state, zip = :zip, address_state_first = :address_state_first, "
    "status = :status, "
    + ", ".join(f"{k} = :{k}" for k in ORDER_EXTRAS)
    + " WHERE order_id = :order_id"
)
_SET_ITEM = Statement(
    'UPDATE "order_items" SET item_id = :item_id, price = :price, options = :options '
    "WHERE order_id = :order_id AND position = :position"
)
_ADD_PAYMENT = Statement(
    'INSERT INTO "payments" (order_id, position, transaction_type, amount, payment_method_id) '
    "VALUES (:order_id, :position, :transaction_type, :amount, :payment_method_id)"
)


def _dumps(record: Any) -> str:
    return json.dumps(record)


async def _order(db: Database, order_id: str) -> Record:
    found = await records.ORDERS.record(db, order_id)
    if found is None:
        raise ToolError("Error: order not found")
    return found


async def _user(db: Database, user_id: str) -> Record:
    found = await records.USERS.record(db, user_id)
    if found is None:
        raise ToolError("Error: user not found")
    return found


async def _save_order(db: Database, before: Record, after: Record) -> None:
    """Write back what a tool changed: the order's own fields, items, new payments."""
    columns = records.address_columns(after["address"])
    extras = {
        k: (orjson.dumps(after[k]).decode() if k in JSON_LISTS else after[k])
        if k in after
        else None
        for k in ORDER_EXTRAS
    }
    await db.execute(
        _SET_ORDER, {"order_id": after["order_id"], "status": after["status"], **columns, **extras}
    )
    for position, (old, new) in enumerate(zip(before["items"], after["items"], strict=True)):
        if old != new:
            await db.execute(
                _SET_ITEM,
                {
                    "order_id": after["order_id"],
                    "position": position,
                    "item_id": new["item_id"],
                    "price": new["price"],
                    "options": orjson.dumps(new["options"]).decode(),
                },
            )
    for position in range(len(before["payment_history"]), len(after["payment_history"])):
        await db.execute(
            _ADD_PAYMENT,
            {
                "order_id": after["order_id"],
                "position": position,
                **after["payment_history"][position],
            },
        )


async def _set_balance(db: Database, user_id: str, method: Record) -> None:
    await db.execute(
        _SET_BALANCE, {"user_id": user_id, "id": method["id"], "balance": method["balance"]}
    )


def _copy(record: Record) -> Record:
    return orjson.loads(orjson.dumps(record))  # a deep copy; numbers keep int/float


async def cancel_pending_order(db: Database, args: Args) -> str:
    order = await _order(db, args["order_id"])
    if order["status"] != "pending":
        raise ToolError("Error: non-pending order cannot be cancelled")
    if args["reason"] not in CANCEL_REASONS:
        raise ToolError("Error: invalid reason")
    user = await _user(db, order["user_id"])
    before, refunds = _copy(order), []
    for payment in order["payment_history"]:
        method_id = payment["payment_method_id"]
        refunds.append(
            {
                "transaction_type": "refund",
                "amount": payment["amount"],
                "payment_method_id": method_id,
            }
        )
        if "gift_card" in method_id:  # refunded to the gift card at once
            method = user["payment_methods"][method_id]
            method["balance"] = round(method["balance"] + payment["amount"], 2)
            await _set_balance(db, order["user_id"], method)
    order["status"] = "cancelled"
    order["cancel_reason"] = args["reason"]
    order["payment_history"].extend(refunds)
    await _save_order(db, before, order)
    return _dumps(order)


def _check_items(order: Record, item_ids: list[str]) -> str | None:
    """The first requested item id the order holds fewer times than requested."""
    held = [item["item_id"] for item in order["items"]]
    return next((i for i in item_ids if item_ids.count(i) > held.count(i)), None)


async def _price_difference(
    db: Database, order: Record, item_ids: list[str], new_item_ids: list[str]
) -> int | float:
    if len(item_ids) != len(new_item_ids):
        raise ToolError("Error: the number of items to be exchanged should match")
    diff: int | float = 0
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        item = next(i for i in order["items"] if i["item_id"] == item_id)
        product = await records.PRODUCTS.record(db, item["product_id"])
        variant = (product or {"variants": {}})["variants"].get(new_item_id)
        if not (variant and variant["available"]):
            raise ToolError(f"Error: new item {new_item_id} not found or available")
        diff += variant["price"] - item["price"]
    return diff


async def exchange_delivered_order_items(db: Database, args: Args) -> str:
    order = await _order(db, args["order_id"])
    if order["status"] != "delivered":
        raise ToolError("Error: non-delivered order cannot be exchanged")
    item_ids, new_item_ids = args["item_ids"], args["new_item_ids"]
    if (missing := _check_items(order, item_ids)) is not None:
        raise ToolError(f"Error: {missing} not found")
    diff = round(await _price_difference(db, order, item_ids, new_item_ids), 2)
    user = await _user(db, order["user_id"])
    method = user["payment_methods"].get(args["payment_method_id"])
    if method is None:
        raise ToolError("Error: payment method not found")
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise ToolError("Error: insufficient gift card balance to pay for the price difference")
    before = _copy(order)
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = args["payment_method_id"]
    order["exchange_price_difference"] = diff
    await _save_order(db, before, order)
    return _dumps(order)


async def modify_pending_order_items(db: Database, args: Args) -> str:
    order = await _order(db, args["order_id"])
    if order["status"] != "pending":
        raise ToolError("Error: non-pending order cannot be modified")
    item_ids, new_item_ids = args["item_ids"], args["new_item_ids"]
    if (missing := _check_items(order, item_ids)) is not None:
        raise ToolError(f"Error: {missing} not found")
    diff = await _price_difference(db, order, item_ids, new_item_ids)
    user = await _user(db, order["user_id"])
    method = user["payment_methods"].get(args["payment_method_id"])
    if method is None:
        raise ToolError("Error: payment method not found")
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise ToolError("Error: insufficient gift card balance to pay for the new item")
    before = _copy(order)
    order["payment_history"].append(
        {
            "transaction_type": "payment" if diff > 0 else "refund",
            "amount": abs(diff),
            "payment_method_id": args["payment_method_id"],
        }
    )
    if method["source"] == "gift_card":
        method["balance"] = round(method["balance"] - diff, 2)
        await _set_balance(db, order["user_id"], method)
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        item = next(i for i in order["items"] if i["item_id"] == item_id)
        variant = (await records.PRODUCTS.record(db, item["product_id"]) or {})["variants"][
            new_item_id
        ]
        item["item_id"] = new_item_id
        item["price"] = variant["price"]
        item["options"] = variant["options"]
    order["status"] = "pending (item modified)"
    await _save_order(db, before, order)
    return _dumps(order)


async def modify_pending_order_payment(db: Database, args: Args) -> str:
    order = await _order(db, args["order_id"])
    if order["status"] != "pending":
        raise ToolError("Error: non-pending order cannot be modified")
    user = await _user(db, order["user_id"])
    method = user["payment_methods"].get(args["payment_method_id"])
    if method is None:
        raise ToolError("Error: payment method not found")
    history = order["payment_history"]
    if len(history) > 1 or history[0]["transaction_type"] != "payment":
        raise ToolError("Error: there should be exactly one payment for a pending order")
    old_id = history[0]["payment_method_id"]
    if old_id == args["payment_method_id"]:
        raise ToolError("Error: the new payment method should be different from the current one")
    amount = history[0]["amount"]
    if method["source"] == "gift_card" and method["balance"] < amount:
        raise ToolError("Error: insufficient gift card balance to pay for the order")
    before = _copy(order)
    history.extend(
        [
            {"transaction_type": "payment", "amount": amount, "payment_method_id": method["id"]},
            {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id},
        ]
    )
    if method["source"] == "gift_card":
        method["balance"] = round(method["balance"] - amount, 2)
        await _set_balance(db, order["user_id"], method)
    if "gift_card" in old_id:
        old = user["payment_methods"][old_id]
        old["balance"] = round(old["balance"] + amount, 2)
        await _set_balance(db, order["user_id"], old)
    await _save_order(db, before, order)
    return _dumps(order)


def _address(args: Args) -> Record:
    """An address as τ-bench's tools write it: state before country."""
    return {k: args[k] for k in ("address1", "address2", "city", "state", "country", "zip")}


async def modify_pending_order_address(db: Database, args: Args) -> str:
    order = await _order(db, args["order_id"])
    if order["status"] != "pending":
        raise ToolError("Error: non-pending order cannot be modified")
    before = _copy(order)
    order["address"] = _address(args)
    await _save_order(db, before, order)
    return _dumps(order)


async def modify_user_address(db: Database, args: Args) -> str:
    user = await _user(db, args["user_id"])
    user["address"] = _address(args)
    await db.execute(_SET_USER_ADDRESS, {"user_id": args["user_id"], **user["address"]})
    return _dumps(user)


async def return_delivered_order_items(db: Database, args: Args) -> str:
    order = await _order(db, args["order_id"])
    if order["status"] != "delivered":
        raise ToolError("Error: non-delivered order cannot be returned")
    user = await _user(db, order["user_id"])
    method_id = args["payment_method_id"]
    if method_id not in user["payment_methods"]:
        raise ToolError("Error: payment method not found")
    if (
        "gift_card" not in method_id
        and method_id != order["payment_history"][0]["payment_method_id"]
    ):
        raise ToolError(
            "Error: payment method should be either the original payment method or a gift card"
        )
    if _check_items(order, args["item_ids"]) is not None:
        raise ToolError("Error: some item not found")
    before = _copy(order)
    order["status"] = "return requested"
    order["return_items"] = sorted(args["item_ids"])
    order["return_payment_method_id"] = method_id
    await _save_order(db, before, order)
    return _dumps(order)


async def get_order_details(db: Database, args: Args) -> str:
    return _dumps(await _order(db, args["order_id"]))


async def get_user_details(db: Database, args: Args) -> str:
    return _dumps(await _user(db, args["user_id"]))


async def get_product_details(db: Database, args: Args) -> str:
    found = await records.PRODUCTS.record(db, args["product_id"])
    if found is None:
        raise ToolError("Error: product not found")
    return _dumps(found)


async def find_user_id_by_email(db: Database, args: Args) -> str:
    email = args["email"].lower()
    for row in await db.fetch_all(_USER_IDS):
        if row["email"].lower() == email:
            return str(row["user_id"])
    raise ToolError("Error: user not found")


async def find_user_id_by_name_zip(db: Database, args: Args) -> str:
    first, last = args["first_name"].lower(), args["last_name"].lower()
    for row in await db.fetch_all(_USER_IDS):
        if (
            row["first_name"].lower() == first
            and row["last_name"].lower() == last
            and row["zip"] == args["zip"]
        ):
            return str(row["user_id"])
    raise ToolError("Error: user not found")


async def list_all_product_types(db: Database, args: Args) -> str:
    names = {row["name"]: row["product_id"] for row in await db.fetch_all(_PRODUCT_NAMES)}
    return _dumps(dict(sorted(names.items())))


IMPLEMENTATIONS: dict[str, Implementation] = {
    fn.__name__: fn
    for fn in (
        cancel_pending_order,
        exchange_delivered_order_items,
        find_user_id_by_email,
        find_user_id_by_name_zip,
        get_order_details,
        get_product_details,
        get_user_details,
        list_all_product_types,
        modify_pending_order_address,
        modify_pending_order_items,
        modify_pending_order_payment,
        modify_user_address,
        return_delivered_order_items,
    )
}
WRITES = frozenset(
    {
        "cancel_pending_order",
        "exchange_delivered_order_items",
        "modify_pending_order_address",
        "modify_pending_order_items",
        "modify_pending_order_payment",
        "modify_user_address",
        "return_delivered_order_items",
    }
)


def tools() -> list[Tool[Args]]:
    return load_tools(TOOLS_JSON, IMPLEMENTATIONS, WRITES)
