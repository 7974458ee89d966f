"""τ²-bench telecom's sync: after every successful call, the phone learns what the agent's
database says of its line (active, roaming allowed, data exhausted) and of its bills (a payment
request for a bill awaiting payment; a paid request marks the bill Paid). It never runs a
network search, so the phone's radio state stays stale until a user action searches."""

from __future__ import annotations

from agentscaler.runtime import Fork

from .records import Phone
from .tools import bill_by_id, customer_by_phone, line_by_phone, plan_by_id, save_bill


async def sync(agent: Fork, user: Fork) -> None:
    async with user.database() as phone_db:
        phone = await Phone.load(phone_db)
        s = phone.surroundings
        number = s["phone_number"]
        if number is None:  # before set_user_info
            return
        async with agent.database() as db:
            line = await line_by_phone(db, number)
            plan = await plan_by_id(db, line["plan_id"])
            s["line_active"] = line["status"] == "Active"
            s["roaming_allowed"] = line["roaming_enabled"]
            s["mobile_data_usage_exceeded"] = (
                line["data_used_gb"] >= plan["data_limit_gb"] + line["data_refueling_gb"]
            )
            if s["payment_bill_id"] is not None and s["payment_paid"]:
                bill = await bill_by_id(db, s["payment_bill_id"])
                bill["status"] = "Paid"
                await save_bill(db, bill, len(bill["line_items"]))
                s.update(payment_bill_id=None, payment_amount_due=None, payment_paid=None)
            if s["payment_bill_id"] is None:
                customer = await customer_by_phone(db, number)
                for bill_id in customer["bill_ids"]:
                    bill = await bill_by_id(db, bill_id)
                    if bill["status"] == "Awaiting Payment":
                        s.update(
                            payment_bill_id=bill_id,
                            payment_amount_due=bill["total_due"],
                            payment_paid=False,
                        )
                        break
        await phone.save(phone_db)
