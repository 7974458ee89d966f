"""τ-bench airline records <-> typed rows, both ways, with τ-bench's key order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from agentscaler.domains.tau.collections import Children, Collection, Record, Row

CABINS = ("basic_economy", "economy", "business")
_ADDRESS = ("address1", "address2", "city", "country", "state", "zip")
_TIMES = (  # a flight date's optional times, in τ-bench's key order
    "actual_departure_time_est",
    "estimated_departure_time_est",
    "actual_arrival_time_est",
    "estimated_arrival_time_est",
)


def seed_rows(
    users: Mapping[str, Any], flights: Mapping[str, Any], reservations: Mapping[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table from τ-bench's three JSON objects."""
    rows: dict[str, list[dict[str, Any]]] = {t: [] for c in COLLECTIONS for t in c.tables}
    for user_id, user in users.items():
        rows["users"].append(
            {
                "user_id": user_id,
                **user["name"],
                **user["address"],
                "email": user["email"],
                "dob": user["dob"],
                "membership": user["membership"],
            }
        )
        rows["payment_methods"] += [
            {"user_id": user_id, "position": i, **pm}
            for i, pm in enumerate(user["payment_methods"].values())
        ]
        rows["saved_passengers"] += [
            {"user_id": user_id, "position": i, **p} for i, p in enumerate(user["saved_passengers"])
        ]
        rows["user_reservations"] += [
            {"user_id": user_id, "position": i, "reservation_id": r}
            for i, r in enumerate(user["reservations"])
        ]
    for number, flight in flights.items():
        rows["flights"].append({k: v for k, v in flight.items() if k != "dates"})
        for i, (date, entry) in enumerate(flight["dates"].items()):
            row: dict[str, Any] = {"flight_number": number, "date": date, "position": i}
            row["status"] = entry["status"]
            for cabin in CABINS if "available_seats" in entry else ():
                row[f"seats_{cabin}"] = entry["available_seats"][cabin]
                row[f"price_{cabin}"] = entry["prices"][cabin]
            row.update({k: entry[k] for k in _TIMES if k in entry})
            rows["flight_dates"].append(row)
    for reservation_id, res in reservations.items():
        rows["reservations"].append(
            {k: v for k, v in res.items() if k not in ("flights", "passengers", "payment_history")}
        )
        for table, key in (
            ("reservation_flights", "flights"),
            ("reservation_passengers", "passengers"),
            ("reservation_payments", "payment_history"),
        ):
            rows[table] += [
                {"reservation_id": reservation_id, "position": i, **item}
                for i, item in enumerate(res[key])
            ]
    return rows


def payment_method_record(row: Row) -> Record:
    out: Record = {"source": row["source"]}
    for key in ("brand", "last_four", "amount"):
        if row[key] is not None:
            out[key] = row[key]
    out["id"] = row["id"]
    return out


PASSENGER = ("first_name", "last_name", "dob")
FLIGHT = ("origin", "destination", "flight_number", "date", "price")
PAYMENT = ("payment_id", "amount")


def ordered(row: Row, keys: tuple[str, ...]) -> Record:
    """The row as its dict: under `keys`, or the key order recorded with it (its extra keys'
    values from `extra`)."""
    order = orjson.loads(row["keys"]) if row.get("keys") else keys
    extra = orjson.loads(row["extra"]) if row.get("extra") else {}
    return {k: row[k] if k in keys else extra[k] for k in order}


def passenger_record(row: Row) -> Record:
    return ordered(row, PASSENGER)


def _user(row: Row, children: Children) -> Record:
    return {
        "name": {"first_name": row["first_name"], "last_name": row["last_name"]},
        "address": {k: row[k] for k in _ADDRESS},
        "email": row["email"],
        "dob": row["dob"],
        "payment_methods": {m["id"]: payment_method_record(m) for m in children["payment_methods"]},
        "saved_passengers": [passenger_record(p) for p in children["saved_passengers"]],
        "membership": row["membership"],
        "reservations": [r["reservation_id"] for r in children["user_reservations"]],
    }


def date_record(row: Row) -> Record:
    out: Record = {"status": row["status"]}
    if row["seats_economy"] is not None:
        out["available_seats"] = {c: row[f"seats_{c}"] for c in CABINS}
        out["prices"] = {c: row[f"price_{c}"] for c in CABINS}
    out.update({k: row[k] for k in _TIMES if row[k] is not None})
    return out


def _flight(row: Row, children: Children) -> Record:
    return {**row, "dates": {d["date"]: date_record(d) for d in children["flight_dates"]}}


def _reservation(row: Row, children: Children) -> Record:
    out: Record = {
        "reservation_id": row["reservation_id"],
        "user_id": row["user_id"],
        "origin": row["origin"],
        "destination": row["destination"],
        "flight_type": row["flight_type"],
        "cabin": row["cabin"],
        "flights": [ordered(f, FLIGHT) for f in children["reservation_flights"]],
        "passengers": [passenger_record(p) for p in children["reservation_passengers"]],
        "payment_history": [ordered(p, PAYMENT) for p in children["reservation_payments"]],
        "created_at": row["created_at"],
        "total_baggages": row["total_baggages"],
        "nonfree_baggages": row["nonfree_baggages"],
        "insurance": row["insurance"],
    }
    if row["status"] is not None:
        out["status"] = row["status"]
    return out


USERS = Collection(
    "users",
    "users",
    "user_id",
    (
        ("payment_methods", "position"),
        ("saved_passengers", "position"),
        ("user_reservations", "position"),
    ),
    _user,
)
FLIGHTS = Collection(
    "flights", "flights", "flight_number", (("flight_dates", "position"),), _flight
)
RESERVATIONS = Collection(
    "reservations",
    "reservations",
    "reservation_id",
    (
        ("reservation_flights", "position"),
        ("reservation_passengers", "position"),
        ("reservation_payments", "position"),
    ),
    _reservation,
)
COLLECTIONS = (USERS, FLIGHTS, RESERVATIONS)
