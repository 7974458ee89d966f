"""τ²-bench telecom data <-> typed rows, both ways.

`agent_seed` / `phone_seed` turn τ²'s TOML files into rows as its pydantic models load them
(defaults filled in, TOML strings parsed as dates and datetimes, ints in float fields made
floats); `export_agent` / `Phone.dump` turn rows back into τ²'s `model_dump()`, key order
included, with dates as the text its hash preimage holds. `tau2_hash` is τ²'s hash of a dump.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean
from sqlmodel import SQLModel

from agentscaler.domains.tau.collections import Children, Collection, Record, Row
from agentscaler.runtime import Database, Statement

from . import tables as t

NETWORK_TECHNOLOGIES = ("2G", "3G", "4G", "5G")
SIGNAL_BY_TECHNOLOGY = {"2G": "poor", "3G": "fair", "4G": "good", "5G": "excellent"}
_DATETIMES = {"activation_date", "last_esim_transfer_date", "created_at"}
_DATES = {
    "contract_end_date",
    "last_plan_change_date",
    "last_sim_replacement_date",
    "suspension_start_date",
    "period_start",
    "period_end",
    "issue_date",
    "due_date",
    "date",
    "last_extension_date",
}
_FLOATS = {
    "data_limit_gb",
    "price_per_month",
    "data_refueling_price_per_gb",
    "data_used_gb",
    "data_refueling_gb",
    "total_due",
    "amount",
    "goodwill_credit_used_this_year",
}


def tau2_hash(dump: Any) -> str:
    """τ²'s hash of a database: sha256 of its dump as sorted-key JSON."""
    return hashlib.sha256(json.dumps(dump, sort_keys=True, default=str).encode()).hexdigest()


def _columns(model: type[SQLModel], *internal: str) -> list[tuple[str, bool]]:
    """(column, is_bool) of a table's public columns, in declaration order."""
    table = model.__table__  # type: ignore[attr-defined]
    return [(c.name, isinstance(c.type, Boolean)) for c in table.columns if c.name not in internal]


def plain(row: Row, columns: list[tuple[str, bool]]) -> Record:
    """A row's public columns as τ² holds them (SQLite gives bools back as ints)."""
    return {
        name: bool(row[name]) if is_bool and row[name] is not None else row[name]
        for name, is_bool in columns
    }


def _loaded(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A TOML table's values as pydantic's lax mode loads them into τ²'s model fields."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _DATETIMES and value is not None:
            value = str(value if isinstance(value, datetime) else datetime.fromisoformat(value))
        elif key in _DATES and value is not None:
            value = str(value if isinstance(value, date) else date.fromisoformat(value))
        elif key in _FLOATS and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return out


# -- the agent's database ------------------------------------------------------------------

PLAN_COLUMNS = _columns(t.Plan)
LINE_COLUMNS = _columns(t.Line)
DEVICE_COLUMNS = _columns(t.Device)
_CUSTOMER_COLUMNS = _columns(t.Customer)
_BILL_COLUMNS = _columns(t.Bill)
_ITEM_COLUMNS = _columns(t.LineItem, "bill_id", "position")
_METHOD_COLUMNS = _columns(t.PaymentMethod, "customer_id", "position")
_ADDRESS = ("street", "city", "state", "zip_code")


def agent_seed(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of every agent table from τ²'s db.toml."""
    data = tomllib.loads(path.read_text())
    rows: dict[str, list[dict[str, Any]]] = {str(m.__table__.name): [] for m in t.AGENT_TABLES}  # type: ignore[attr-defined]
    rows["plans"] = [_loaded(p) for p in data.get("plans", [])]
    rows["lines"] = [_loaded(line) for line in data.get("lines", [])]
    rows["devices"] = [_loaded(d) for d in data.get("devices", [])]
    for c in data.get("customers", []):
        cid = c["customer_id"]
        scalars = {k: v for k, v in c.items() if k not in ("address", *_LISTS)}
        rows["customers"].append(_loaded({**scalars, **c["address"]}))
        for i, pm in enumerate(c.get("payment_methods", [])):
            rows["payment_methods"].append({"customer_id": cid, "position": i, **pm})
        for i, line_id in enumerate(c.get("line_ids", [])):
            rows["customer_lines"].append({"customer_id": cid, "position": i, "line_id": line_id})
        for i, bill_id in enumerate(c.get("bill_ids", [])):
            rows["customer_bills"].append({"customer_id": cid, "position": i, "bill_id": bill_id})
    for b in data.get("bills", []):
        rows["bills"].append(_loaded({k: v for k, v in b.items() if k != "line_items"}))
        for i, item in enumerate(b.get("line_items", [])):
            rows["line_items"].append({"bill_id": b["bill_id"], "position": i, **_loaded(item)})
    return rows


_LISTS = ("payment_methods", "line_ids", "bill_ids")


def _customer(row: Row, children: Children) -> Record:
    out = plain(row, _CUSTOMER_COLUMNS)
    address = {k: out.pop(k) for k in _ADDRESS}
    tail = {k: out.pop(k) for k in ("created_at", "last_extension_date")}
    tail["goodwill_credit_used_this_year"] = out.pop("goodwill_credit_used_this_year")
    status = out.pop("account_status")
    return {
        **out,
        "address": address,
        "account_status": status,
        "payment_methods": [plain(m, _METHOD_COLUMNS) for m in children["payment_methods"]],
        "line_ids": [r["line_id"] for r in children["customer_lines"]],
        "bill_ids": [r["bill_id"] for r in children["customer_bills"]],
        **tail,
    }


def _bill(row: Row, children: Children) -> Record:
    out = plain(row, _BILL_COLUMNS)
    status = out.pop("status")
    return {
        **out,
        "line_items": [plain(i, _ITEM_COLUMNS) for i in children["line_items"]],
        "status": status,
    }


PLANS = Collection("plans", "plans", "plan_id", (), lambda r, _: plain(r, PLAN_COLUMNS))
CUSTOMERS = Collection(
    "customers",
    "customers",
    "customer_id",
    (
        ("payment_methods", "position"),
        ("customer_lines", "position"),
        ("customer_bills", "position"),
    ),
    _customer,
)
LINES = Collection("lines", "lines", "line_id", (), lambda r, _: plain(r, LINE_COLUMNS))
BILLS = Collection("bills", "bills", "bill_id", (("line_items", "position"),), _bill)
DEVICES = Collection("devices", "devices", "device_id", (), lambda r, _: plain(r, DEVICE_COLUMNS))
AGENT_COLLECTIONS = (PLANS, CUSTOMERS, LINES, BILLS, DEVICES)


async def export_agent(db: Database) -> dict[str, list[Record]]:
    """τ²'s `TelecomDB.model_dump()`."""
    return {c.name: list((await c.export(db)).values()) for c in AGENT_COLLECTIONS}


# -- the user's phone ----------------------------------------------------------------------

_DEVICE_COLUMNS = _columns(t.PhoneDevice)
_APP_COLUMNS = _columns(t.App)
_SURROUNDINGS_COLUMNS = _columns(t.Surroundings)
_APN = ("apn_name", "reset_at_reboot", "mms_apn", "mmsc_url", "mms_proxy", "mms_port")
_VPN = ("vpn_server_address", "vpn_protocol", "vpn_performance")
PERMISSIONS = ("sms", "storage", "phone", "network")
_SELECT_DEVICE = Statement('SELECT * FROM "device"')
_SELECT_APPS = Statement('SELECT * FROM "apps" ORDER BY position')
_SELECT_SURROUNDINGS = Statement('SELECT * FROM "surroundings"')
_SELECT_SIGNAL = Statement('SELECT * FROM "signal_strengths" ORDER BY position')
_SAVE_DEVICE = Statement(
    'UPDATE "device" SET '
    + ", ".join(f"{c} = :{c}" for c, _ in _DEVICE_COLUMNS if c != "device")
    + " WHERE device = :device"
)
_SAVE_SURROUNDINGS = Statement(
    'UPDATE "surroundings" SET '
    + ", ".join(f"{c} = :{c}" for c, _ in _SURROUNDINGS_COLUMNS if c != "surroundings")
    + " WHERE surroundings = :surroundings"
)
_SAVE_APP = Statement(
    'UPDATE "apps" SET sms = :sms, storage = :storage, phone = :phone, network = :network '
    "WHERE app_name = :app_name"
)


def phone_seed(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of every phone table from τ²'s user_db.toml (the surroundings take defaults)."""
    data = tomllib.loads(path.read_text())
    device = dict(data.get("device", {}))
    apn = device.pop("active_apn_settings", {})
    apps = device.pop("app_statuses", None)
    if apps is None:  # τ²'s default apps
        apps = {
            "messaging": {"app_name": "messaging", "permissions": {"sms": True, "storage": True}},
            "browser": {"app_name": "browser", "permissions": {"network": True, "storage": True}},
        }
    vpn = device.pop("vpn_details", None)
    if vpn is not None:
        device.update(
            vpn_server_address=vpn.get("server_address"),
            vpn_protocol=vpn.get("protocol"),
            vpn_performance=vpn.get("server_performance", "unknown"),
        )
    return {
        "device": [{**device, **apn}],
        "apps": [
            {"app_name": a["app_name"], "position": i, **a.get("permissions", {})}
            for i, a in enumerate(apps.values())
        ],
        "surroundings": [{}],
        "signal_strengths": [
            {"technology": k, "position": i, "strength": v}
            for i, (k, v) in enumerate(SIGNAL_BY_TECHNOLOGY.items())
        ],
    }


@dataclass
class Phone:
    """The phone's state in memory: tools change it, `save` writes back what changed."""

    device: dict[str, Any]
    apps: dict[str, dict[str, Any]]
    surroundings: dict[str, Any]
    signal: dict[str, str]
    _before: tuple[Any, ...] = field(default=(), repr=False)

    @classmethod
    async def load(cls, db: Database) -> Phone:
        (device,) = await db.fetch_all(_SELECT_DEVICE)
        (surroundings,) = await db.fetch_all(_SELECT_SURROUNDINGS)
        phone = cls(
            plain(device, _DEVICE_COLUMNS),
            {a["app_name"]: plain(a, _APP_COLUMNS) for a in await db.fetch_all(_SELECT_APPS)},
            plain(surroundings, _SURROUNDINGS_COLUMNS),
            {r["technology"]: r["strength"] for r in await db.fetch_all(_SELECT_SIGNAL)},
        )
        phone._before = phone._snapshot()
        return phone

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            dict(self.device),
            {k: dict(v) for k, v in self.apps.items()},
            dict(self.surroundings),
        )

    async def save(self, db: Database) -> None:
        """Write back the rows that changed, and only those: a read changes nothing."""
        device, apps, surroundings = self._before
        if self.device != device:
            await db.execute(_SAVE_DEVICE, self.device)
        if self.surroundings != surroundings:
            await db.execute(_SAVE_SURROUNDINGS, self.surroundings)
        for name, app in self.apps.items():
            if app != apps[name]:
                await db.execute(_SAVE_APP, app)
        self._before = self._snapshot()

    def dump(self) -> Record:
        """τ²'s `TelecomUserDB.model_dump()`."""
        d = {k: v for k, v in self.device.items() if k not in ("device", "vpn_default_performance")}
        apn = {k: d.pop(k) for k in _APN}
        vpn = [d.pop(k) for k in _VPN]
        device: Record = {}
        for key, value in d.items():
            device[key] = value
            if key == "network_mode_preference":
                device["active_apn_settings"] = apn
            elif key == "vpn_connected":
                device["vpn_details"] = self.vpn_details(vpn)
        device["app_statuses"] = {
            name: {"app_name": name, "permissions": {p: a[p] for p in PERMISSIONS}}
            for name, a in self.apps.items()
        }
        s = self.surroundings
        request = None
        if s["payment_bill_id"] is not None:
            request = {
                "bill_id": s["payment_bill_id"],
                "amount_due": s["payment_amount_due"],
                "paid": s["payment_paid"],
            }
        surroundings = {
            "name": s["name"],
            "phone_number": s["phone_number"],
            "is_abroad": s["is_abroad"],
            "roaming_allowed": s["roaming_allowed"],
            "signal_strength": dict(self.signal),
            "mobile_data_usage_exceeded": s["mobile_data_usage_exceeded"],
            "line_active": s["line_active"],
            "payment_request": request,
        }
        return {"device": device, "surroundings": surroundings}

    @staticmethod
    def vpn_details(values: list[Any]) -> Record | None:
        server_address, protocol, performance = values
        if performance is None:
            return None
        return {
            "server_address": server_address,
            "protocol": protocol,
            "server_performance": performance,
        }
