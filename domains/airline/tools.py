"""τ-bench's 14 airline tools over the typed tables, with τ-bench's observations.

As in retail, each write tool applies τ-bench's rules in its order to the records it loads and
writes back what changed. Quirks kept on purpose (the probe replays pin them): a missing
reservation reads "Error: user not found"; booking never takes seats off a flight; changing a
reservation's flights never changes its cabin; gift card amounts are not rounded; a one-stop
search prices the second leg with the first leg's date entry; new reservations are HATHAT,
HATHAU, HATHAV (a fourth replaces HATHAV), created 2024-05-15T15:00:00; certificates
3221322-3221324 (a fourth is refused: τ-bench's tool returns None, which its environment cannot
print).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from agentscaler.domains.tau.tools import Args, Implementation, load_tools
from agentscaler.runtime import Database, Statement, Tool, ToolError

from . import records
from .records import FLIGHT, PASSENGER, PAYMENT, Record

TOOLS_JSON = Path(__file__).parent / "data" / "tools.json"
AIRPORTS = {
    "SFO": "San Francisco",
    "JFK": "New York",
    "LAX": "Los Angeles",
    "ORD": "Chicago",
    "DFW": "Dallas",
    "DEN": "Denver",
    "SEA": "Seattle",
    "ATL": "Atlanta",
    "MIA": "Miami",
    "BOS": "Boston",
    "PHX": "Phoenix",
    "IAH": "Houston",
    "LAS": "Las Vegas",
    "MCO": "Orlando",
    "EWR": "Newark",
    "CLT": "Charlotte",
    "MSP": "Minneapolis",
    "DTW": "Detroit",
    "PHL": "Philadelphia",
    "LGA": "LaGuardia",
}
NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
CERTIFICATE_IDS = (3221322, 3221323, 3221324)

_FROM = Statement('SELECT flight_number FROM "flights" WHERE origin = ? ORDER BY rowid')
_TO = Statement('SELECT flight_number FROM "flights" WHERE destination = ? ORDER BY rowid')
_RESERVATION_EXISTS = Statement('SELECT 1 FROM "reservations" WHERE reservation_id = ?')
_INSERT_RESERVATION = Statement(
    'INSERT INTO "reservations" (reservation_id, user_id, origin, destination, flight_type, '
    "cabin, created_at, total_baggages, nonfree_baggages, insurance) VALUES (:reservation_id, "
    ":user_id, :origin, :destination, :flight_type, :cabin, :created_at, :total_baggages, "
    ":nonfree_baggages, :insurance)"
)
_DELETE_RESERVATION = Statement('DELETE FROM "reservations" WHERE reservation_id = ?')
_SET_RESERVATION = Statement(
    'UPDATE "reservations" SET total_baggages = :total_baggages, '
    "nonfree_baggages = :nonfree_baggages, status = :status WHERE reservation_id = :reservation_id"
)
_CLEAR = {
    table: Statement(f'DELETE FROM "{table}" WHERE reservation_id = ?')
    for table in ("reservation_flights", "reservation_passengers", "reservation_payments")
}
_ADD = {
    "reservation_flights": Statement(
        'INSERT INTO "reservation_flights" (reservation_id, position, origin, destination, '
        "flight_number, date, price, keys, extra) VALUES (:reservation_id, :position, :origin, "
        ":destination, :flight_number, :date, :price, :keys, :extra)"
    ),
    "reservation_passengers": Statement(
        'INSERT INTO "reservation_passengers" (reservation_id, position, first_name, last_name, '
        "dob, keys, extra) VALUES (:reservation_id, :position, :first_name, :last_name, :dob, "
        ":keys, :extra)"
    ),
    "reservation_payments": Statement(
        'INSERT INTO "reservation_payments" (reservation_id, position, payment_id, amount, keys, '
        "extra) VALUES (:reservation_id, :position, :payment_id, :amount, :keys, :extra)"
    ),
}
_SET_AMOUNT = Statement(
    'UPDATE "payment_methods" SET amount = :amount WHERE user_id = :user_id AND id = :id'
)
_DELETE_METHOD = Statement('DELETE FROM "payment_methods" WHERE user_id = ? AND id = ?')
_ADD_METHOD = Statement(
    'INSERT INTO "payment_methods" (user_id, id, position, source, amount) VALUES (:user_id, '
    ':id, (SELECT COALESCE(MAX(position) + 1, 0) FROM "payment_methods" WHERE user_id = :user_id), '
    ":source, :amount)"
)
_ADD_USER_RESERVATION = Statement(
    'INSERT INTO "user_reservations" (user_id, position, reservation_id) VALUES (:user_id, '
    '(SELECT COALESCE(MAX(position) + 1, 0) FROM "user_reservations" WHERE user_id = :user_id), '
    ":reservation_id)"
)
_CHILDREN = (
    ("reservation_flights", "flights", FLIGHT),
    ("reservation_passengers", "passengers", PASSENGER),
    ("reservation_payments", "payment_history", PAYMENT),
)


async def _reservation(db: Database, reservation_id: str) -> Record:
    found = await records.RESERVATIONS.record(db, reservation_id)
    if found is None:
        raise ToolError("Error: reservation not found")
    return found


async def _user(db: Database, user_id: str) -> Record:
    found = await records.USERS.record(db, user_id)
    if found is None:
        raise ToolError("Error: user not found")
    return found


async def _write_children(db: Database, reservation: Record, lists: tuple[str, ...]) -> None:
    """Replace the named lists of a reservation (its rows keep each dict's key order)."""
    rid = reservation["reservation_id"]
    for table, key, default in _CHILDREN:
        if key not in lists:
            continue
        await db.execute(_CLEAR[table], (rid,))
        for position, item in enumerate(reservation[key]):
            keys = None if tuple(item) == default else orjson.dumps(list(item)).decode()
            extra = {k: v for k, v in item.items() if k not in default}
            values = {k: item.get(k) for k in default}
            await db.execute(
                _ADD[table],
                {
                    "reservation_id": rid,
                    "position": position,
                    **values,
                    "keys": keys,
                    "extra": orjson.dumps(extra).decode() if extra else None,
                },
            )


async def _set_amount(db: Database, user_id: str, method: Record) -> None:
    await db.execute(
        _SET_AMOUNT, {"user_id": user_id, "id": method["id"], "amount": method["amount"]}
    )


async def _priced(db: Database, flight: Record, cabin: str, passengers: int) -> None:
    """Check one requested flight and set its price, origin and destination (τ-bench's order)."""
    number = flight["flight_number"]
    info = await records.FLIGHTS.record(db, number)
    if info is None:
        raise ToolError(f"Error: flight {number} not found")
    date = flight["date"]
    entry = info["dates"].get(date)
    if entry is None:
        raise ToolError(f"Error: flight {number} not found on date {date}")
    if entry["status"] != "available":
        raise ToolError(f"Error: flight {number} not available on date {date}")
    if entry["available_seats"][cabin] < passengers:
        raise ToolError(f"Error: not enough seats on flight {number}")
    flight["price"] = entry["prices"][cabin]
    flight["origin"] = info["origin"]
    flight["destination"] = info["destination"]


async def book_reservation(db: Database, args: Args) -> str:
    user = await _user(db, args["user_id"])
    rid = NEW_RESERVATION_IDS[-1]
    for candidate in NEW_RESERVATION_IDS[:-1]:
        if not await db.fetch_all(_RESERVATION_EXISTS, (candidate,)):
            rid = candidate
            break
    passengers, payments, cabin = args["passengers"], args["payment_methods"], args["cabin"]
    reservation: Record = {
        "reservation_id": rid,
        "user_id": args["user_id"],
        "origin": args["origin"],
        "destination": args["destination"],
        "flight_type": args["flight_type"],
        "cabin": cabin,
        "flights": [dict(f) for f in args["flights"]],
        "passengers": passengers,
        "payment_history": payments,
        "created_at": "2024-05-15T15:00:00",
        "total_baggages": args["total_baggages"],
        "nonfree_baggages": args["nonfree_baggages"],
        "insurance": args["insurance"],
    }
    total: int | float = 0
    for flight in reservation["flights"]:
        await _priced(db, flight, cabin, len(passengers))
        total += flight["price"] * len(passengers)
    if args["insurance"] == "yes":
        total += 30 * len(passengers)
    total += 50 * args["nonfree_baggages"]
    methods = user["payment_methods"]
    for payment in payments:
        pid, amount = payment["payment_id"], payment["amount"]
        if pid not in methods:
            raise ToolError(f"Error: payment method {pid} not found")
        if (
            methods[pid]["source"] in ("gift_card", "certificate")
            and methods[pid]["amount"] < amount
        ):
            raise ToolError(f"Error: not enough balance in payment method {pid}")
    paid = sum(p["amount"] for p in payments)
    if paid != total:
        raise ToolError(
            f"Error: payment amount does not add up, total price is {total}, but paid {paid}"
        )
    for payment in payments:
        method = methods[payment["payment_id"]]
        if method["source"] == "gift_card":
            method["amount"] -= payment["amount"]
            await _set_amount(db, args["user_id"], method)
        elif method["source"] == "certificate":
            await db.execute(_DELETE_METHOD, (args["user_id"], method["id"]))
    await db.execute(_DELETE_RESERVATION, (rid,))  # a fourth booking replaces HATHAV, as upstream
    await db.execute(
        _INSERT_RESERVATION, {k: v for k, v in reservation.items() if not isinstance(v, list)}
    )
    await _write_children(db, reservation, ("flights", "passengers", "payment_history"))
    await db.execute(_ADD_USER_RESERVATION, {"user_id": args["user_id"], "reservation_id": rid})
    return json.dumps(reservation)


async def cancel_reservation(db: Database, args: Args) -> str:
    reservation = await _reservation(db, args["reservation_id"])
    history = reservation["payment_history"]
    history.extend([{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in history])
    reservation["status"] = "cancelled"
    await _save(db, reservation)
    await _write_children(db, reservation, ("payment_history",))
    return json.dumps(reservation)


async def _save(db: Database, reservation: Record) -> None:
    await db.execute(
        _SET_RESERVATION,
        {
            "reservation_id": reservation["reservation_id"],
            "total_baggages": reservation["total_baggages"],
            "nonfree_baggages": reservation["nonfree_baggages"],
            "status": reservation.get("status"),
        },
    )


async def _payment_method(db: Database, reservation: Record, payment_id: str, price: Any) -> Record:
    """The user's payment method for a change: it must exist, not be a certificate, and a gift
    card must cover the price."""
    user = await _user(db, reservation["user_id"])
    method = user["payment_methods"].get(payment_id)
    if method is None:
        raise ToolError("Error: payment method not found")
    if method["source"] == "certificate":
        raise ToolError("Error: certificate cannot be used to update reservation")
    if method["source"] == "gift_card" and method["amount"] < price:
        raise ToolError("Error: gift card balance is not enough")
    return method


async def update_reservation_baggages(db: Database, args: Args) -> str:
    reservation = await _reservation(db, args["reservation_id"])
    price = 50 * max(0, args["nonfree_baggages"] - reservation["nonfree_baggages"])
    method = await _payment_method(db, reservation, args["payment_id"], price)
    reservation["total_baggages"] = args["total_baggages"]
    reservation["nonfree_baggages"] = args["nonfree_baggages"]
    if method["source"] == "gift_card":
        method["amount"] -= price
        await _set_amount(db, reservation["user_id"], method)
    await _save(db, reservation)
    if price != 0:
        reservation["payment_history"].append({"payment_id": args["payment_id"], "amount": price})
        await _write_children(db, reservation, ("payment_history",))
    return json.dumps(reservation)


async def update_reservation_flights(db: Database, args: Args) -> str:
    reservation = await _reservation(db, args["reservation_id"])
    cabin, passengers = args["cabin"], len(reservation["passengers"])
    flights = [dict(f) for f in args["flights"]]
    total: int | float = 0
    for flight in flights:
        kept = [
            f
            for f in reservation["flights"]
            if f["flight_number"] == flight["flight_number"]
            and f["date"] == flight["date"]
            and cabin == reservation["cabin"]
        ]
        if kept:  # an unchanged segment keeps its price
            total += kept[0]["price"] * passengers
            flight["price"] = kept[0]["price"]
            flight["origin"] = kept[0]["origin"]
            flight["destination"] = kept[0]["destination"]
            continue
        await _priced(db, flight, cabin, passengers)
        total += flight["price"] * passengers
    total -= sum(f["price"] for f in reservation["flights"]) * passengers
    method = await _payment_method(db, reservation, args["payment_id"], total)
    if method["source"] == "gift_card":
        method["amount"] -= total
        await _set_amount(db, reservation["user_id"], method)
    reservation["flights"] = flights
    lists: tuple[str, ...] = ("flights",)
    if total != 0:
        reservation["payment_history"].append({"payment_id": args["payment_id"], "amount": total})
        lists += ("payment_history",)
    await _write_children(db, reservation, lists)
    return json.dumps(reservation)


async def update_reservation_passengers(db: Database, args: Args) -> str:
    reservation = await _reservation(db, args["reservation_id"])
    if len(args["passengers"]) != len(reservation["passengers"]):
        raise ToolError("Error: number of passengers does not match")
    reservation["passengers"] = args["passengers"]
    await _write_children(db, reservation, ("passengers",))
    return json.dumps(reservation)


async def send_certificate(db: Database, args: Args) -> str:
    user = await _user(db, args["user_id"])
    for number in CERTIFICATE_IDS:
        pid = f"certificate_{number}"
        if pid not in user["payment_methods"]:
            await db.execute(
                _ADD_METHOD,
                {
                    "user_id": args["user_id"],
                    "id": pid,
                    "source": "certificate",
                    "amount": args["amount"],
                },
            )
            return (
                f"Certificate {pid} added to user {args['user_id']} with amount {args['amount']}."
            )
    # τ-bench's tool returns None here, which its environment cannot turn into an observation.
    raise ToolError(f"Error: user {args['user_id']} already holds certificates {CERTIFICATE_IDS}")


async def get_reservation_details(db: Database, args: Args) -> str:
    found = await records.RESERVATIONS.record(db, args["reservation_id"])
    if found is None:
        raise ToolError("Error: user not found")  # sic: τ-bench's message
    return json.dumps(found)


async def get_user_details(db: Database, args: Args) -> str:
    return json.dumps(await _user(db, args["user_id"]))


async def list_all_airports(db: Database, args: Args) -> str:
    return json.dumps(AIRPORTS)


def _leg(flight: Record, entry: Record) -> Record:
    return {**{k: v for k, v in flight.items() if k != "dates"}, **entry}


async def _flights(db: Database, statement: Statement, airport: str) -> list[Record]:
    """The flights from (or to) an airport, in τ-bench's order."""
    out = []
    for (number,) in await db.fetch_all(statement, (airport,)):
        found = await records.FLIGHTS.record(db, number)
        if found is not None:
            out.append(found)
    return out


async def search_direct_flight(db: Database, args: Args) -> str:
    date = args["date"]
    return json.dumps(
        [
            _leg(f, f["dates"][date])
            for f in await _flights(db, _FROM, args["origin"])
            if f["destination"] == args["destination"]
            and date in f["dates"]
            and f["dates"][date]["status"] == "available"
        ]
    )


async def search_onestop_flight(db: Database, args: Args) -> str:
    date, results = args["date"], []
    seconds = await _flights(db, _TO, args["destination"])
    for first in await _flights(db, _FROM, args["origin"]):
        for second in seconds:
            if first["destination"] != second["origin"]:
                continue
            overnight = "+1" in first["scheduled_arrival_time_est"]
            date2 = f"2024-05-{int(date[-2:]) + 1}" if overnight else date
            if first["scheduled_arrival_time_est"] > second["scheduled_departure_time_est"]:
                continue
            if (
                date in first["dates"]
                and date2 in second["dates"]
                and first["dates"][date]["status"] == "available"
                and second["dates"][date2]["status"] == "available"
            ):
                if date not in second["dates"]:  # τ-bench looks up the first leg's date
                    raise ToolError(f"Error: '{date}'")
                results.append(
                    [
                        {**_leg(first, first["dates"][date]), "date": date},
                        {**_leg(second, second["dates"][date]), "date": date2},
                    ]
                )
    return json.dumps(results)


IMPLEMENTATIONS: dict[str, Implementation] = {
    fn.__name__: fn
    for fn in (
        book_reservation,
        cancel_reservation,
        get_reservation_details,
        get_user_details,
        list_all_airports,
        search_direct_flight,
        search_onestop_flight,
        send_certificate,
        update_reservation_baggages,
        update_reservation_flights,
        update_reservation_passengers,
    )
}
WRITES = frozenset(
    {
        "book_reservation",
        "cancel_reservation",
        "send_certificate",
        "update_reservation_baggages",
        "update_reservation_flights",
        "update_reservation_passengers",
    }
)


def tools() -> list[Tool[Args]]:
    return load_tools(TOOLS_JSON, IMPLEMENTATIONS, WRITES)
