"""τ-bench airline data as typed tables, one row per record of every nested collection.

As in retail: child keys start with the parent's id, lists keep their order in `position`,
int-or-float numbers are `Number` columns. A flight's per-date entry has one of five key sets in
τ-bench's data (available: seats and prices; landed, flying, on time, delayed: actual and
estimated times; cancelled: status only); absent keys are NULL columns, and the record builder
writes the present ones in τ-bench's order.
"""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from agentscaler.domains.tau.columns import Number


class AirlineTable(SQLModel, registry=registry()):
    """The airline tables' own registry: table names are the domain's, not global."""


class User(AirlineTable, table=True):
    __tablename__ = "users"
    user_id: str = Field(primary_key=True)
    first_name: str
    last_name: str
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str
    email: str
    dob: str
    membership: str  # regular, silver, gold


class PaymentMethod(AirlineTable, table=True):
    __tablename__ = "payment_methods"
    user_id: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    position: int
    source: str  # credit_card, gift_card, certificate
    brand: str | None = None
    last_four: str | None = None
    amount: int | float | None = Field(default=None, sa_type=Number)


class SavedPassenger(AirlineTable, table=True):
    __tablename__ = "saved_passengers"
    user_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    first_name: str
    last_name: str
    dob: str


class UserReservation(AirlineTable, table=True):
    __tablename__ = "user_reservations"
    user_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    reservation_id: str


class Flight(AirlineTable, table=True):
    __tablename__ = "flights"
    flight_number: str = Field(primary_key=True)
    origin: str
    destination: str
    scheduled_departure_time_est: str
    scheduled_arrival_time_est: str


class FlightDate(AirlineTable, table=True):
    __tablename__ = "flight_dates"
    flight_number: str = Field(primary_key=True)
    date: str = Field(primary_key=True)
    position: int
    status: str
    seats_basic_economy: int | None = None
    seats_economy: int | None = None
    seats_business: int | None = None
    price_basic_economy: int | float | None = Field(default=None, sa_type=Number)
    price_economy: int | float | None = Field(default=None, sa_type=Number)
    price_business: int | float | None = Field(default=None, sa_type=Number)
    actual_departure_time_est: str | None = None
    estimated_departure_time_est: str | None = None
    actual_arrival_time_est: str | None = None
    estimated_arrival_time_est: str | None = None


class Reservation(AirlineTable, table=True):
    __tablename__ = "reservations"
    reservation_id: str = Field(primary_key=True)
    user_id: str
    origin: str
    destination: str
    flight_type: str  # one_way, round_trip
    cabin: str  # basic_economy, economy, business
    created_at: str
    total_baggages: int
    nonfree_baggages: int
    insurance: str  # yes, no
    status: str | None = None  # set by cancel_reservation, after every other key


# A reservation's flights, passengers and payments: rows written by a tool hold the caller's
# dicts as they came (τ-bench stores them unvalidated): `keys` is their key order (JSON list)
# when it is not τ-bench's data order, `extra` their keys beyond the known ones (JSON object),
# and a known key the caller left out is NULL and absent from `keys`.


class ReservationFlight(AirlineTable, table=True):
    __tablename__ = "reservation_flights"
    reservation_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    origin: str | None = Field(default=None, sa_type=Number)
    destination: str | None = Field(default=None, sa_type=Number)
    flight_number: str | None = Field(default=None, sa_type=Number)
    date: str | None = Field(default=None, sa_type=Number)
    price: int | float | None = Field(default=None, sa_type=Number)
    keys: str | None = None
    extra: str | None = None


class ReservationPassenger(AirlineTable, table=True):
    __tablename__ = "reservation_passengers"
    reservation_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    first_name: str | None = Field(default=None, sa_type=Number)
    last_name: str | None = Field(default=None, sa_type=Number)
    dob: str | None = Field(default=None, sa_type=Number)
    keys: str | None = None
    extra: str | None = None


class ReservationPayment(AirlineTable, table=True):
    __tablename__ = "reservation_payments"
    reservation_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    payment_id: str | None = Field(default=None, sa_type=Number)
    amount: int | float | None = Field(default=None, sa_type=Number)
    keys: str | None = None
    extra: str | None = None


TABLES: list[type[AirlineTable]] = [
    User,
    PaymentMethod,
    SavedPassenger,
    UserReservation,
    Flight,
    FlightDate,
    Reservation,
    ReservationFlight,
    ReservationPassenger,
    ReservationPayment,
]
