"""τ²-bench telecom's agent side: its 13 tools over the agent database and the functions its
tasks call on the agent's toolkit (initialization and assertions), with τ²'s texts.

Each function loads the records it needs, applies τ²'s rules in τ²'s order (so the same check
fails first and float arithmetic rounds the same) and writes back what it changed. Failures
raise `ValueError` with τ²'s message; `calls.invoked` turns them into "Error: ..." observations.
"""

from __future__ import annotations

import uuid
from typing import Any

from agentscaler.domains.tau.collections import Record
from agentscaler.domains.tau.tools import Args
from agentscaler.runtime import Database, Statement, Tool

from . import records
from .calls import Implementation, Model, load_tools

OWNER = "TelecomTools"
TODAY = "2025-02-25"
CYCLE_END = "2025-02-28"  # the last day of the current month

_SAVE_LINE = Statement(
    'UPDATE "lines" SET '
    + ", ".join(f"{c} = :{c}" for c, _ in records.LINE_COLUMNS if c != "line_id")
    + " WHERE line_id = :line_id"
)
_SAVE_BILL = Statement(
    'UPDATE "bills" SET total_due = :total_due, status = :status WHERE bill_id = :bill_id'
)
_ADD_BILL = Statement(
    'INSERT INTO "bills" (bill_id, customer_id, period_start, period_end, issue_date, '
    "total_due, due_date, status) VALUES (:bill_id, :customer_id, :period_start, :period_end, "
    ":issue_date, :total_due, :due_date, :status)"
)
_ADD_ITEM = Statement(
    'INSERT INTO "line_items" (bill_id, position, description, amount, date, item_type) '
    "VALUES (:bill_id, :position, :description, :amount, :date, :item_type)"
)
_ADD_CUSTOMER_BILL = Statement(
    'INSERT INTO "customer_bills" (customer_id, position, bill_id) '
    "VALUES (:customer_id, :position, :bill_id)"
)


async def _found(db: Database, collection: Any, kind: str, record_id: Any) -> Record:
    found = await collection.record(db, record_id) if isinstance(record_id, str) else None
    if found is None:
        raise ValueError(f"{kind} with ID {record_id} not found")
    return found


async def customer_by_id(db: Database, customer_id: str) -> Record:
    return await _found(db, records.CUSTOMERS, "Customer", customer_id)


async def line_by_id(db: Database, line_id: str) -> Record:
    return await _found(db, records.LINES, "Line", line_id)


async def plan_by_id(db: Database, plan_id: str) -> Record:
    return await _found(db, records.PLANS, "Plan", plan_id)


async def bill_by_id(db: Database, bill_id: str) -> Record:
    return await _found(db, records.BILLS, "Bill", bill_id)


async def line_by_phone(db: Database, phone_number: str) -> Record:
    for line in (await records.LINES.export(db)).values():
        if line["phone_number"] == phone_number:
            return line
    raise ValueError(f"Line with phone number {phone_number} not found")


async def customer_by_phone(db: Database, phone_number: str) -> Record:
    """By the customer's own number, else by the number of one of its lines (τ²'s order)."""
    for customer in (await records.CUSTOMERS.export(db)).values():
        if customer["phone_number"] == phone_number:
            return customer
        for line_id in customer["line_ids"]:
            if (await line_by_id(db, line_id))["phone_number"] == phone_number:
                return customer
    raise ValueError(f"Customer with phone number {phone_number} not found")


async def _target_line(db: Database, customer_id: str, line_id: str) -> Record:
    customer = await customer_by_id(db, customer_id)
    if line_id not in customer["line_ids"]:
        raise ValueError(f"Line {line_id} not found for customer {customer_id}")
    return await line_by_id(db, line_id)


async def save_line(db: Database, line: Record) -> None:
    await db.execute(_SAVE_LINE, line)


async def save_bill(db: Database, bill: Record, items_before: int) -> None:
    """The bill's total and status, and the line items appended since it was read."""
    await db.execute(_SAVE_BILL, bill)
    for position in range(items_before, len(bill["line_items"])):
        await db.execute(
            _ADD_ITEM,
            {"bill_id": bill["bill_id"], "position": position, **bill["line_items"][position]},
        )


async def _add_bill(db: Database, customer: Record, bill: Record) -> None:
    """Appended to the bills and to the customer's bill ids."""
    await db.execute(_ADD_BILL, bill)
    await save_bill(db, bill, 0)
    position = len(customer["bill_ids"])
    customer["bill_ids"].append(bill["bill_id"])
    await db.execute(
        _ADD_CUSTOMER_BILL,
        {"customer_id": customer["customer_id"], "position": position, "bill_id": bill["bill_id"]},
    )


async def _bills(db: Database, customer: Record) -> list[Record]:
    return [await bill_by_id(db, b) for b in customer["bill_ids"]]


# -- tools ---------------------------------------------------------------------------------


async def get_customer_by_phone(db: Database, phone_number: str) -> Model:
    return Model(await customer_by_phone(db, phone_number))


async def get_customer_by_id(db: Database, customer_id: str) -> Model:
    return Model(await customer_by_id(db, customer_id))


async def get_customer_by_name(db: Database, full_name: str, dob: str) -> list[Model]:
    return [
        Model(c)
        for c in (await records.CUSTOMERS.export(db)).values()
        if c["full_name"].lower() == full_name.lower() and c["date_of_birth"] == dob
    ]


async def get_details_by_id(db: Database, id: str) -> Model:
    lookups = {
        "L": line_by_id,
        "D": lambda db, i: _found(db, records.DEVICES, "Device", i),
        "B": bill_by_id,
        "C": customer_by_id,
        "P": plan_by_id,
    }
    lookup = next((f for prefix, f in lookups.items() if id.startswith(prefix)), None)
    if lookup is None:
        raise ValueError(f"Unknown ID format or type: {id}")
    return Model(await lookup(db, id))


async def suspend_line(db: Database, customer_id: str, line_id: str, reason: str) -> dict[str, Any]:
    line = await _target_line(db, customer_id, line_id)
    if line["status"] != "Active":
        raise ValueError("Line must be active to suspend")
    line.update(status="Suspended", suspension_start_date=TODAY)
    await save_line(db, line)
    return {
        "message": "Line suspended successfully. $5/month holding fee will apply.",
        "line": Model(line),
    }


async def resume_line(db: Database, customer_id: str, line_id: str) -> dict[str, Any]:
    line = await _target_line(db, customer_id, line_id)
    if line["status"] not in ("Suspended", "Pending Activation"):
        raise ValueError("Line must be suspended to resume")
    line.update(status="Active", suspension_start_date=None)
    await save_line(db, line)
    return {"message": "Line resumed successfully", "line": Model(line)}


async def get_bills_for_customer(db: Database, customer_id: str, limit: int = 12) -> list[Model]:
    bills = await _bills(db, await customer_by_id(db, customer_id))
    bills.sort(key=lambda b: b["issue_date"], reverse=True)  # stable: ties keep their order
    return [Model(b) for b in bills[:limit]]


async def send_payment_request(db: Database, customer_id: str, bill_id: str) -> str:
    customer = await customer_by_id(db, customer_id)
    if any(b["status"] == "Awaiting Payment" for b in await _bills(db, customer)):
        raise ValueError("A bill is already awaiting payment for this customer")
    if bill_id not in customer["bill_ids"]:
        raise ValueError(f"Bill {bill_id} not found for customer {customer_id}")
    bill = await bill_by_id(db, bill_id)
    bill["status"] = "Awaiting Payment"
    await save_bill(db, bill, len(bill["line_items"]))
    return f"Payment request sent to the customer for bill {bill_id}"


async def get_data_usage(db: Database, customer_id: str, line_id: str) -> dict[str, Any]:
    line = await _target_line(db, customer_id, line_id)
    plan = await plan_by_id(db, line["plan_id"])
    return {
        "line_id": line_id,
        "data_used_gb": line["data_used_gb"],
        "data_limit_gb": plan["data_limit_gb"],
        "data_refueling_gb": line["data_refueling_gb"],
        "cycle_end_date": CYCLE_END,
    }


async def _set_roaming(db: Database, customer_id: str, line_id: str, enabled: bool) -> str:
    line = await _target_line(db, customer_id, line_id)
    word = "enabled" if enabled else "disabled"
    if line["roaming_enabled"] == enabled:
        return f"Roaming was already {word}"
    line["roaming_enabled"] = enabled
    await save_line(db, line)
    return f"Roaming {word} successfully"


async def enable_roaming(db: Database, customer_id: str, line_id: str) -> str:
    return await _set_roaming(db, customer_id, line_id, True)


async def disable_roaming(db: Database, customer_id: str, line_id: str) -> str:
    return await _set_roaming(db, customer_id, line_id, False)


async def transfer_to_human_agents(db: Database, summary: str) -> str:
    return "Transfer successful"


async def refuel_data(
    db: Database, customer_id: str, line_id: str, gb_amount: float
) -> dict[str, Any]:
    line = await _target_line(db, customer_id, line_id)
    if gb_amount <= 0:
        raise ValueError("Refuel amount must be positive")
    plan = await plan_by_id(db, line["plan_id"])
    price = plan["data_refueling_price_per_gb"]
    charge = gb_amount * price
    line["data_refueling_gb"] += gb_amount
    await save_line(db, line)
    customer = await customer_by_id(db, customer_id)
    bill = next((b for b in await _bills(db, customer) if b["status"] == "Draft"), None)
    if bill is None:  # τ²'s id is random
        bill = {
            "bill_id": f"B{uuid.uuid4().hex[:8]}",
            "customer_id": customer_id,
            "period_start": "2025-03-01",
            "period_end": "2025-03-31",
            "issue_date": "2025-03-01",
            "total_due": 0.0,
            "due_date": "2025-03-15",
            "line_items": [],
            "status": "Draft",
        }
        await _add_bill(db, customer, bill)
    items_before = len(bill["line_items"])
    bill["line_items"].append(
        {
            "description": f"Data refueling: {gb_amount} GB at ${price}/GB",
            "amount": charge,
            "date": TODAY,
            "item_type": "Credit" if charge < 0 else "Charge",
        }
    )
    bill["total_due"] += charge
    await save_bill(db, bill, items_before)
    return {
        "message": f"Successfully added {gb_amount} GB of data for line {line_id} for ${charge:.2f}",
        "new_data_refueling_gb": line["data_refueling_gb"],
        "charge": charge,
    }


TOOLS: dict[str, Implementation] = {
    f.__name__: f
    for f in (
        get_customer_by_phone,
        get_customer_by_id,
        get_customer_by_name,
        get_details_by_id,
        suspend_line,
        resume_line,
        get_bills_for_customer,
        send_payment_request,
        get_data_usage,
        enable_roaming,
        disable_roaming,
        transfer_to_human_agents,
        refuel_data,
    )
}


# -- functions tasks call on the agent's toolkit -------------------------------------------


async def set_data_usage(db: Database, customer_id: str, line_id: str, data_used_gb: float) -> str:
    line = await _target_line(db, customer_id, line_id)
    line["data_used_gb"] = data_used_gb  # unvalidated: an int stays an int
    await save_line(db, line)
    return f"Data usage set to {data_used_gb} GB"


async def suspend_line_for_overdue_bill(
    db: Database, customer_id: str, line_id: str, new_bill_id: str, contract_ended: bool
) -> str:
    """An overdue bill for the line's plan price and the line suspended (no ownership check)."""
    line = await line_by_id(db, line_id)
    if line["status"] != "Active":
        raise ValueError("Line must be active to suspend for unpaid bill")
    amount = (await plan_by_id(db, line["plan_id"]))["price_per_month"]
    if amount <= 0:
        raise ValueError("Amount must be positive for overdue bill")
    customer = await customer_by_id(db, customer_id)
    if any(b["status"] == "Overdue" for b in await _bills(db, customer)):
        raise ValueError("Customer already has an overdue bill")
    bill = {
        "bill_id": new_bill_id,
        "customer_id": customer_id,
        "period_start": "2025-01-01",
        "period_end": "2025-01-31",
        "issue_date": "2025-01-01",
        "total_due": 0.0 + amount,
        "due_date": "2025-01-15",
        "line_items": [
            {
                "description": f"Charge for line {line_id}",
                "amount": amount,
                "date": TODAY,
                "item_type": "Charge",
            }
        ],
        "status": "Overdue",
    }
    await _add_bill(db, customer, bill)
    line.update(status="Suspended", suspension_start_date=TODAY)
    if contract_ended:
        line["contract_end_date"] = "2025-01-31"
    await save_line(db, line)
    return f"Line {line_id} suspended for unpaid bill {new_bill_id}"


async def get_available_plan_ids(db: Database) -> list[str]:
    return list(await records.PLANS.export(db))


async def assert_data_refueling_amount(
    db: Database, customer_id: str, line_id: str, expected_amount: float
) -> bool:
    line = await _target_line(db, customer_id, line_id)
    return bool(abs(line["data_refueling_gb"] - expected_amount) < 1e-6)


async def assert_no_overdue_bill(db: Database, overdue_bill_id: str) -> bool:
    bill = await records.BILLS.record(db, overdue_bill_id)
    return bill is None or bill["status"] == "Paid"


async def assert_line_status(
    db: Database, customer_id: str, line_id: str, expected_status: str
) -> bool:
    return bool((await _target_line(db, customer_id, line_id))["status"] == expected_status)


async def assert_overdue_bill_exists(db: Database, customer_id: str, overdue_bill_id: str) -> bool:
    customer = await customer_by_id(db, customer_id)
    if overdue_bill_id not in customer["bill_ids"]:
        raise ValueError(f"Overdue bill {overdue_bill_id} not found")
    if (await bill_by_id(db, overdue_bill_id))["status"] != "Overdue":
        raise ValueError(f"Overdue bill {overdue_bill_id} is not overdue")
    return True


FUNCTIONS: dict[str, Implementation] = {
    **TOOLS,
    **{
        f.__name__: f
        for f in (
            set_data_usage,
            suspend_line_for_overdue_bill,
            get_available_plan_ids,
            assert_data_refueling_amount,
            assert_no_overdue_bill,
            assert_line_status,
            assert_overdue_bill_exists,
        )
    },
}


def tools() -> list[Tool[Args]]:
    return load_tools("agent", OWNER, TOOLS)
