"""τ²-bench telecom data as typed tables: the agent's database (`TelecomTable`) and the user's
phone (`PhoneTable`), each in its own registry since they are separate databases.

Columns follow τ²'s model fields in declaration order, so a row read back in column order is
the model's dump. Nested lists are child tables keyed by their parent's id and a `position`;
nested objects (an address, APN settings) are flattened into their parent's row. Dates and
datetimes are text as τ² dumps them (`2025-01-20 14:30:00`). Numbers the tools may write
unvalidated (an int data usage stays an int in τ²) are `Number` columns.
"""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from agentscaler.domains.tau.columns import Number


class TelecomTable(SQLModel, registry=registry()):
    """The agent database's tables."""


class Plan(TelecomTable, table=True):
    __tablename__ = "plans"
    plan_id: str = Field(primary_key=True)
    name: str
    data_limit_gb: float
    price_per_month: float
    data_refueling_price_per_gb: float


class Customer(TelecomTable, table=True):
    __tablename__ = "customers"
    customer_id: str = Field(primary_key=True)
    full_name: str
    date_of_birth: str
    email: str
    phone_number: str
    street: str  # address
    city: str
    state: str
    zip_code: str
    account_status: str = "Pending Verification"
    created_at: str = "2025-01-01"  # τ²'s default is a date, not a datetime
    last_extension_date: str | None = None
    goodwill_credit_used_this_year: float = 0.0


class PaymentMethod(TelecomTable, table=True):
    __tablename__ = "payment_methods"
    customer_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    method_type: str
    account_number_last_4: str
    expiration_date: str


class CustomerLine(TelecomTable, table=True):
    __tablename__ = "customer_lines"
    customer_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    line_id: str


class CustomerBill(TelecomTable, table=True):
    __tablename__ = "customer_bills"
    customer_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    bill_id: str


class Line(TelecomTable, table=True):
    __tablename__ = "lines"
    line_id: str = Field(primary_key=True)
    phone_number: str
    status: str = "Pending Activation"
    plan_id: str
    device_id: str | None = None
    data_used_gb: int | float = Field(default=0.0, sa_type=Number)
    data_refueling_gb: int | float = Field(default=0.0, sa_type=Number)
    roaming_enabled: bool = False
    contract_end_date: str | None = None
    last_plan_change_date: str | None = None
    last_sim_replacement_date: str | None = None
    suspension_start_date: str | None = None


class Bill(TelecomTable, table=True):
    __tablename__ = "bills"
    bill_id: str = Field(primary_key=True)
    customer_id: str
    period_start: str
    period_end: str
    issue_date: str
    total_due: int | float = Field(sa_type=Number)
    due_date: str
    status: str = "Draft"  # after line_items in τ²'s dump


class LineItem(TelecomTable, table=True):
    __tablename__ = "line_items"
    bill_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    description: str
    amount: int | float = Field(sa_type=Number)
    date: str
    item_type: str


class Device(TelecomTable, table=True):
    __tablename__ = "devices"
    device_id: str = Field(primary_key=True)
    device_type: str
    model: str
    imei: str | None = None
    is_esim_capable: bool
    activated: bool = False
    activation_date: str | None = None
    last_esim_transfer_date: str | None = None


AGENT_TABLES: list[type[TelecomTable]] = [
    Plan,
    Customer,
    PaymentMethod,
    CustomerLine,
    CustomerBill,
    Line,
    Bill,
    LineItem,
    Device,
]


class PhoneTable(SQLModel, registry=registry()):
    """The user's phone: its device and its surroundings."""


class PhoneDevice(PhoneTable, table=True):
    """τ²'s `MockPhoneAttributes`, one row; APN settings and VPN details flattened in."""

    __tablename__ = "device"
    device: int = Field(default=1, primary_key=True)
    sim_card_status: str = "active"
    sim_card_missing: bool = False
    airplane_mode: bool = False
    network_signal_strength: str = "good"
    network_technology_connected: str = "5G"
    network_connection_status: str = "connected"
    battery_level: int = 80
    data_enabled: bool = True
    roaming_enabled: bool = False
    network_mode_preference: str = "4g_5g_preferred"
    apn_name: str = "internet"  # active_apn_settings
    reset_at_reboot: bool = False
    mms_apn: str | None = "mms"
    mmsc_url: str | None = "http://mms.carrier.com/mms/wapenc"
    mms_proxy: str | None = None
    mms_port: int | None = None
    wifi_enabled: bool = False
    wifi_connected: bool = False
    wifi_ssid: str | None = None
    wifi_signal_strength: str = "none"
    wifi_calling_enabled: bool = False
    wifi_calling_mms_over_wifi: bool = False
    data_saver_mode: bool = False
    vpn_enabled_setting: bool = False
    vpn_connected: bool = False
    vpn_server_address: str | None = None  # vpn_details, null when vpn_performance is
    vpn_protocol: str | None = None
    vpn_performance: str | None = None
    # τ² hands out one shared default VpnDetails object that break_vpn degrades: what a
    # later connect_vpn gets. Not part of τ²'s dump.
    vpn_default_performance: str = "excellent"


class App(PhoneTable, table=True):
    __tablename__ = "apps"
    app_name: str = Field(primary_key=True)
    position: int
    sms: bool = False
    storage: bool = False
    phone: bool = False
    network: bool = False


class Surroundings(PhoneTable, table=True):
    """τ²'s `UserSurroundings`, one row; the payment request flattened in."""

    __tablename__ = "surroundings"
    surroundings: int = Field(default=1, primary_key=True)
    name: str | None = None
    phone_number: str | None = None
    is_abroad: bool = False
    roaming_allowed: bool = False
    mobile_data_usage_exceeded: bool = False
    line_active: bool = True
    payment_bill_id: str | None = None  # payment_request, null when this is
    payment_amount_due: int | float | None = Field(default=None, sa_type=Number)
    payment_paid: bool | None = None


class SignalStrength(PhoneTable, table=True):
    """The surroundings' signal strength by network technology."""

    __tablename__ = "signal_strengths"
    technology: str = Field(primary_key=True)
    position: int
    strength: str


PHONE_TABLES: list[type[PhoneTable]] = [PhoneDevice, App, Surroundings, SignalStrength]
