"""τ²-bench telecom's user side: the phone's 30 tools and the functions its tasks call on the
user's toolkit (breaking the phone at initialization, asserting on it at the end).

Every function works on a `Phone` loaded from the user database, then written back; a write
tool answers with its message and the status bar computed after the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentscaler.domains.tau.tools import Args
from agentscaler.runtime import Database, Tool

from .calls import Implementation, load_tools
from .records import PERMISSIONS, Phone

OWNER = "TelecomUserTools"
MODES = ("4g_5g_preferred", "4g_only", "3g_only", "2g_only")
_SIGNAL_BARS = {
    "none": "📵 No Signal",
    "poor": "📶¹ Poor",
    "fair": "📶² Fair",
    "good": "📶³ Good",
    "excellent": "📶⁴ Excellent",
}
_RANGES = {"2G": (0.1, 0.4), "3G": (1.0, 5.0), "4G": (10.0, 100.0), "5G": (50.0, 500.0)}
_FACTORS = {"poor": 0.2, "fair": 0.5, "good": 0.8, "excellent": 1.0, "none": 0.0}
_ADVICE = {
    "Very Poor": "Connection is very slow. Basic web browsing might be difficult.",
    "Poor": "Connection is slow. Web browsing may be sluggish, streaming difficult.",
    "Fair": "Connection is okay for web browsing and some standard definition streaming.",
    "Good": "Connection is good for most activities, including HD streaming.",
    "Excellent": "Connection is very fast.",
}
_APN_DEFAULTS = {
    "apn_name": "internet",
    "reset_at_reboot": False,
    "mms_apn": "mms",
    "mmsc_url": "http://mms.carrier.com/mms/wapenc",
    "mms_proxy": None,
    "mms_port": None,
}
_SIM_TEXT = {
    "active": "Your SIM card is active and working.",
    "missing": "No SIM card detected in the phone.",
    "locked_pin": "The SIM card is locked with a PIN code.",
    "locked_puk": "The SIM card is locked with a PUK code.",
}


def _on_off(flag: bool) -> str:
    return "ON" if flag else "OFF"


def bar(phone: Phone) -> str:
    d = phone.device
    if d["airplane_mode"]:
        parts = ["✈️ Airplane Mode"]
    else:
        parts = [_SIGNAL_BARS[d["network_signal_strength"]]]
        tech = d["network_technology_connected"]
        if tech != "none":
            parts.append(tech)
        if d["data_enabled"] and tech != "none":
            parts.append("📱 Data Enabled")
            if d["data_saver_mode"]:
                parts.append("🔽 Data Saver")
        else:
            parts.append("📵 Data Disabled")
    if d["wifi_enabled"] and d["wifi_connected"]:
        parts.append(f"📡 Connected to {d['wifi_ssid']}" if d["wifi_ssid"] else "📡 Enabled")
    if d["vpn_connected"]:
        parts.append("🔒 VPN Connected")
    parts.append(f"🔋 {d['battery_level']}%")
    return " | ".join(parts)


def _with_bar(phone: Phone, message: str) -> str:
    return f"{message}\nStatus Bar: {bar(phone)}"


def _sim(phone: Phone) -> str:
    return "missing" if phone.device["sim_card_missing"] else phone.device["sim_card_status"]


def simulate_network_search(phone: Phone) -> None:
    d = phone.device
    status, tech, signal = "no_service", "none", "none"
    if _sim(phone) == "active":
        mode = d["network_mode_preference"]
        if mode == "4g_5g_preferred":
            tech = "5G" if phone.signal.get("5G", "none") != "none" else "4G"
        else:
            tech = {"3g_only": "3G", "2g_only": "2G"}.get(mode, "4G")
        status, signal = "connected", phone.signal.get(tech, "none")
    if d["airplane_mode"] or d["apn_name"] == "broken" or not phone.surroundings["line_active"]:
        status, tech, signal = "no_service", "none", "none"
    d.update(
        network_connection_status=status,
        network_technology_connected=tech,
        network_signal_strength=signal,
    )


def data_ok(phone: Phone) -> bool:
    d, s = phone.device, phone.surroundings
    if d["airplane_mode"] or d["network_signal_strength"] == "none":
        return False
    if d["network_connection_status"] == "no_service":
        return False
    if s["is_abroad"] and not (d["roaming_enabled"] and s["roaming_allowed"]):
        return False
    return bool(d["data_enabled"] and not s["mobile_data_usage_exceeded"])


def speed(phone: Phone) -> tuple[float | None, str]:
    d = phone.device
    if not data_ok(phone):
        return None, "No Connection"
    base = 0.1 if d["vpn_connected"] and d["vpn_performance"] == "poor" else 1.0
    if d["data_saver_mode"]:
        base *= 0.2
    low, high = _RANGES.get(d["network_technology_connected"], (0, 0))
    mbps = round((low + high) / 2 * _FACTORS[d["network_signal_strength"]] * base, 2)
    for limit, desc in ((1, "Very Poor"), (5, "Poor"), (25, "Fair"), (100, "Good")):
        if mbps < limit:
            return mbps, desc
    return mbps, "Excellent"


def mms_ok(phone: Phone) -> bool:
    d = phone.device
    messaging = phone.apps.get("messaging")
    return bool(
        data_ok(phone)
        and d["network_technology_connected"] != "2G"
        and not (d["wifi_calling_enabled"] and d["wifi_calling_mms_over_wifi"])
        and d["mmsc_url"] is not None
        and messaging is not None
        and messaging["sms"]
        and messaging["storage"]
    )


# -- tools ---------------------------------------------------------------------------------


def check_status_bar(phone: Phone) -> str:
    return f"Status Bar: {bar(phone)}"


def check_network_status(phone: Phone) -> str:
    d = phone.device
    lines = [
        f"Airplane Mode: {_on_off(d['airplane_mode'])}",
        f"SIM Card Status: {_sim(phone)}",
        f"Cellular Connection: {d['network_connection_status']}",
        f"Cellular Signal: {d['network_signal_strength']}",
        f"Cellular Network Type: {d['network_technology_connected']}",
        f"Mobile Data Enabled: {'Yes' if d['data_enabled'] else 'No'}",
        f"Data Roaming Enabled: {'Yes' if d['roaming_enabled'] else 'No'}",
        f"Wi-Fi Radio: {_on_off(d['wifi_enabled'])}",
        f"Wi-Fi Connected: {'Yes' if d['wifi_connected'] else 'No'}",
    ]
    if d["wifi_connected"]:
        lines.append(f"Connected Wi-Fi Network: {d['wifi_ssid']}")
    return "\n".join(lines)


def check_network_mode_preference(phone: Phone) -> str:
    return f"Network Mode Preference: {phone.device['network_mode_preference']}"


def set_network_mode_preference(phone: Phone, mode: Any) -> str:
    if isinstance(mode, str) and mode not in MODES:
        return _with_bar(
            phone,
            f"Failed to set network mode: '{mode}' is not a valid option. "
            f"Please use one of: {', '.join(MODES)}",
        )
    phone.device["network_mode_preference"] = mode
    simulate_network_search(phone)
    if not isinstance(mode, str):  # τ² formats `mode.value`
        raise AttributeError(f"'{type(mode).__name__}' object has no attribute 'value'")
    return _with_bar(phone, f"Preferred Network Mode set to: {mode}")


def run_speed_test(phone: Phone) -> str:
    mbps, desc = speed(phone)
    if mbps is None:
        return f"Speed test failed: {desc}."
    return f"Speed Test Result: {mbps:.2f} Mbps ({desc}). {_ADVICE[desc]}"


def _clear_wifi(phone: Phone) -> None:
    phone.device.update(wifi_connected=False, wifi_ssid=None, wifi_signal_strength="none")


def toggle_airplane_mode(phone: Phone) -> str:
    d = phone.device
    d["airplane_mode"] = not d["airplane_mode"]
    if not d["airplane_mode"]:
        d["network_connection_status"] = "searching"
        if d["wifi_enabled"]:
            _clear_wifi(phone)
    else:
        _clear_wifi(phone)
        if d["vpn_connected"]:
            d.update(vpn_connected=False, **_NO_VPN)
    simulate_network_search(phone)
    return _with_bar(phone, f"Airplane Mode is now {_on_off(d['airplane_mode'])}.")


_NO_VPN = {"vpn_server_address": None, "vpn_protocol": None, "vpn_performance": None}


def check_sim_status(phone: Phone) -> str:
    return _SIM_TEXT[_sim(phone)]


def reseat_sim_card(phone: Phone) -> str:
    phone.device["sim_card_missing"] = False
    simulate_network_search(phone)
    return _with_bar(phone, "SIM card re-seated successfully.")


def _toggle(phone: Phone, key: str, label: str, search: bool) -> str:
    phone.device[key] = not phone.device[key]
    if search:
        simulate_network_search(phone)
    return _with_bar(phone, f"{label} is now {_on_off(phone.device[key])}.")


def toggle_data(phone: Phone) -> str:
    return _toggle(phone, "data_enabled", "Mobile Data", search=True)


def toggle_roaming(phone: Phone) -> str:
    return _toggle(phone, "roaming_enabled", "Data Roaming", search=True)


def check_data_restriction_status(phone: Phone) -> str:
    if phone.device["data_saver_mode"]:
        return "Data Saver mode is ON (limits data usage)."
    return "Data Saver mode is OFF."


def toggle_data_saver_mode(phone: Phone) -> str:
    return _toggle(phone, "data_saver_mode", "Data Saver Mode", search=False)


def check_apn_settings(phone: Phone) -> str:
    d = phone.device
    return (
        f"Current APN Name: {d['apn_name']}\n"
        f"MMSC URL (for picture messages): {d['mmsc_url'] or 'Not Set'}\n"
        "(These are technical settings, usually best left unchanged.)"
    )


def set_apn_settings(phone: Phone, apn_settings: Any) -> str:
    if not isinstance(apn_settings, dict):
        raise ValueError("1 validation error for APNSettings")
    extra = next((k for k in apn_settings if k not in _APN_DEFAULTS), None)
    if extra is not None:
        value = apn_settings[extra]
        raise ValueError(
            f"1 validation error for APNSettings\n{extra}\n  Extra inputs are not permitted "
            f"[type=extra_forbidden, input_value={value!r}, input_type={type(value).__name__}]\n"
            "    For further information visit https://errors.pydantic.dev/2.14/v/extra_forbidden"
        )
    phone.device.update({**_APN_DEFAULTS, **apn_settings})
    simulate_network_search(phone)
    return _with_bar(phone, f"APN settings set to: {phone.device['apn_name']}")


def reset_apn_settings(phone: Phone) -> str:
    phone.device["reset_at_reboot"] = True
    simulate_network_search(phone)
    return _with_bar(phone, "APN settings will reset at reboot.")


def check_wifi_status(phone: Phone) -> str:
    d = phone.device
    if not d["wifi_enabled"]:
        return "Wi-Fi is turned OFF."
    if d["wifi_connected"]:
        return (
            f"Wi-Fi is ON and connected to '{d['wifi_ssid']}'. "
            f"Signal strength: {d['wifi_signal_strength']}."
        )
    return "Wi-Fi is ON but not connected to any network."


def toggle_wifi(phone: Phone) -> str:
    d = phone.device
    if d["airplane_mode"]:
        return _with_bar(phone, "Cannot change Wi-Fi settings while Airplane Mode is ON.")
    d["wifi_enabled"] = not d["wifi_enabled"]
    if not d["wifi_enabled"]:
        _clear_wifi(phone)
    return _with_bar(phone, f"Wi-Fi is now {_on_off(d['wifi_enabled'])}.")


def check_wifi_calling_status(phone: Phone) -> str:
    return f"Wi-Fi Calling is currently turned {_on_off(phone.device['wifi_calling_enabled'])}."


def toggle_wifi_calling(phone: Phone) -> str:
    return _toggle(phone, "wifi_calling_enabled", "Wi-Fi Calling", search=False)


def check_vpn_status(phone: Phone) -> str:
    d = phone.device
    if d["vpn_connected"] and d["vpn_performance"] is not None:
        level = d["vpn_performance"]
        return (
            "VPN is ON and connected. Details: "
            f"{{'server_address': {d['vpn_server_address']!r}, 'protocol': {d['vpn_protocol']!r}, "
            f"'server_performance': <PerformanceLevel.{level.upper()}: {level!r}>}}"
        )
    if d["vpn_connected"]:
        return "VPN is ON and connected (no specific details available)."
    if d["vpn_enabled_setting"]:
        return "VPN is turned ON in settings, but currently not connected."
    return "VPN is turned OFF."


def connect_vpn(phone: Phone) -> str:
    d = phone.device
    if d["vpn_connected"]:
        return "VPN already connected."
    d.update(
        vpn_connected=True,
        vpn_server_address="192.168.1.1",
        vpn_protocol="OpenVPN",
        vpn_performance=d["vpn_default_performance"],
    )
    return _with_bar(phone, "VPN connected successfully.")


def disconnect_vpn(phone: Phone) -> str:
    d = phone.device
    if not d["vpn_connected"]:
        return _with_bar(phone, "No active VPN connection to disconnect.")
    d.update(vpn_connected=False, **_NO_VPN)
    return _with_bar(phone, "VPN disconnected successfully.")


def check_installed_apps(phone: Phone) -> str:
    return f"The following apps are installed on the phone: {', '.join(phone.apps)}"


def _granted(phone: Phone, app_name: str) -> list[str]:
    return [p for p in PERMISSIONS if phone.apps[app_name][p]]


def check_app_status(phone: Phone, app_name: str) -> str:
    if app_name not in phone.apps:
        return f"App '{app_name}' not found on this phone."
    granted = _granted(phone, app_name)
    if not granted:
        return f"Status for App: {app_name}\n - Permissions: None granted."
    return "\n".join(
        [f"Status for App: {app_name}", " - Permissions Granted:"] + [f"   - {p}" for p in granted]
    )


def check_app_permissions(phone: Phone, app_name: str) -> str:
    if app_name not in phone.apps:
        return f"App '{app_name}' not found on this phone."
    granted = _granted(phone, app_name)
    if not granted:
        return f"App '{app_name}' currently has no permissions granted."
    return f"App '{app_name}' has permission for: {', '.join(granted)}."


def _set_permission(phone: Phone, app_name: str, permission: str, value: bool) -> str | None:
    """None when set, else why not (τ²'s words)."""
    if app_name not in phone.apps:
        return f"Error. App '{app_name}' not found. Cannot grant permission."
    permission = permission.lower()
    if permission not in PERMISSIONS:
        return (
            f"Error. Permission '{permission}' not tracked for app '{app_name}', "
            f"available permissions: {list(PERMISSIONS)}"
        )
    phone.apps[app_name][permission] = value
    return None


def grant_app_permission(phone: Phone, app_name: str, permission: str) -> str:
    refused = _set_permission(phone, app_name, permission, True)
    message = refused or (
        f"Success. Permission '{permission.lower()}' granted to app '{app_name}'."
    )
    return _with_bar(phone, message)


def can_send_mms(phone: Phone) -> str:
    if mms_ok(phone):
        return "Your messaging app can send MMS messages."
    return "Your messaging app cannot send MMS messages."


def reboot_device(phone: Phone) -> str:
    lines = []
    if phone.device["reset_at_reboot"]:
        phone.device.update(_APN_DEFAULTS)
        lines.append("Resetting APN settings...")
    lines.append("Restarting network services...")
    phone.device["network_connection_status"] = "searching"
    simulate_network_search(phone)
    return _with_bar(phone, "\n".join(lines))


def check_payment_request(phone: Phone) -> str:
    s = phone.surroundings
    if s["payment_bill_id"] is None:
        return "No payment request has been made."
    return (
        f"You have a payment request for bill {s['payment_bill_id']} "
        f"of {s['payment_amount_due']} USD."
    )


def make_payment(phone: Phone) -> str:
    s = phone.surroundings
    if s["payment_bill_id"] is None:
        return "You do not have a payment request."
    s["payment_paid"] = True
    return (
        f"Payment of {s['payment_amount_due']} USD has been made for bill {s['payment_bill_id']}."
    )


_TOOLS: tuple[Callable[..., Any], ...] = (
    check_status_bar,
    check_network_status,
    check_network_mode_preference,
    set_network_mode_preference,
    run_speed_test,
    toggle_airplane_mode,
    check_sim_status,
    reseat_sim_card,
    toggle_data,
    toggle_roaming,
    check_data_restriction_status,
    toggle_data_saver_mode,
    check_apn_settings,
    set_apn_settings,
    reset_apn_settings,
    check_wifi_status,
    toggle_wifi,
    check_wifi_calling_status,
    toggle_wifi_calling,
    check_vpn_status,
    connect_vpn,
    disconnect_vpn,
    check_installed_apps,
    check_app_status,
    check_app_permissions,
    grant_app_permission,
    can_send_mms,
    reboot_device,
    check_payment_request,
    make_payment,
)


# -- functions tasks call on the user's toolkit --------------------------------------------


def set_user_info(phone: Phone, name: str, phone_number: str) -> None:
    phone.surroundings.update(name=name, phone_number=phone_number)


def set_user_location(phone: Phone, abroad: bool) -> None:
    phone.surroundings["is_abroad"] = abroad


def _until(
    name: str, flag: str, value: bool, toggle: Callable[[Phone], str]
) -> Callable[[Phone], None]:
    """Toggle once, and once more if that did not give `value`."""

    def turn(phone: Phone) -> None:
        toggle(phone)
        if phone.device[flag] != value:
            toggle(phone)

    turn.__name__ = name
    return turn


turn_airplane_mode_on = _until("turn_airplane_mode_on", "airplane_mode", True, toggle_airplane_mode)
turn_airplane_mode_off = _until(
    "turn_airplane_mode_off", "airplane_mode", False, toggle_airplane_mode
)
turn_data_off = _until("turn_data_off", "data_enabled", False, toggle_data)
turn_roaming_on = _until("turn_roaming_on", "roaming_enabled", True, toggle_roaming)
turn_roaming_off = _until("turn_roaming_off", "roaming_enabled", False, toggle_roaming)
turn_data_saver_mode_on = _until(
    "turn_data_saver_mode_on", "data_saver_mode", True, toggle_data_saver_mode
)
turn_data_saver_mode_off = _until(
    "turn_data_saver_mode_off", "data_saver_mode", False, toggle_data_saver_mode
)


def turn_data_on(phone: Phone) -> None:
    phone.device["data_enabled"] = True


def set_wifi_calling(phone: Phone, enabled: bool, mms_over_wifi: bool | None = None) -> None:
    if phone.device["wifi_calling_enabled"] != enabled:
        toggle_wifi_calling(phone)
    if mms_over_wifi is not None:
        phone.device["wifi_calling_mms_over_wifi"] = mms_over_wifi


def break_apn_settings(phone: Phone) -> None:
    phone.device["apn_name"] = "broken"
    simulate_network_search(phone)
    assert phone.device["network_connection_status"] == "no_service"


def break_apn_mms_setting(phone: Phone) -> None:
    phone.device["mmsc_url"] = None
    assert not mms_ok(phone)


def break_vpn(phone: Phone) -> None:
    """Degrades τ²'s shared default VPN details: a later connect gets them poor too."""
    connect_vpn(phone)
    phone.device.update(vpn_performance="poor", vpn_default_performance="poor")


def lock_sim_card(phone: Phone, mode: str) -> None:
    phone.device["sim_card_status"] = {"pin": "locked_pin", "puk": "locked_puk"}[mode]
    simulate_network_search(phone)


def unseat_sim_card(phone: Phone) -> None:
    phone.device["sim_card_missing"] = True
    simulate_network_search(phone)


def remove_app_permission(phone: Phone, app_name: str, permission: str) -> None:
    _set_permission(phone, app_name, permission, False)


def assert_mobile_data_status(phone: Phone, expected_status: bool) -> bool:
    return data_ok(phone) == expected_status


def assert_internet_speed(
    phone: Phone, expected_speed: float, expected_desc: str | None = None
) -> bool:
    mbps, desc = speed(phone)
    fast = (mbps or 0.0) >= expected_speed
    return fast if expected_desc is None else fast and desc.lower() == expected_desc.lower()


def assert_service_status(phone: Phone, expected_status: str) -> bool:
    statuses = ("connected", "searching", "no_service", "emergency_only")
    if expected_status not in statuses:
        raise ValueError(f"'{expected_status}' is not a valid NetworkStatus")
    return bool(phone.device["network_connection_status"] == expected_status)


def assert_can_send_mms(phone: Phone, expected_status: bool) -> bool:
    return mms_ok(phone) == expected_status


def assert_airplane_mode_status(phone: Phone, expected_status: bool) -> bool:
    return bool(phone.device["airplane_mode"] == expected_status)


def assert_mobile_roaming_status(phone: Phone, expected_status: bool) -> bool:
    return bool(phone.device["roaming_enabled"] == expected_status)


def assert_mobile_data_saver_mode_status(phone: Phone, expected_status: bool) -> bool:
    return bool(phone.device["data_saver_mode"] == expected_status)


def assert_mobile_data_usage_exceeded(phone: Phone, expected_status: bool) -> bool:
    return bool(phone.surroundings["mobile_data_usage_exceeded"] == expected_status)


def assert_internet_not_excellent(phone: Phone) -> bool:
    return speed(phone)[1].lower() != "excellent"


_FUNCTIONS: tuple[Callable[..., Any], ...] = (
    set_user_info,
    set_user_location,
    turn_airplane_mode_on,
    turn_airplane_mode_off,
    turn_data_off,
    turn_data_on,
    turn_roaming_on,
    turn_roaming_off,
    turn_data_saver_mode_on,
    turn_data_saver_mode_off,
    set_wifi_calling,
    break_apn_settings,
    break_apn_mms_setting,
    break_vpn,
    lock_sim_card,
    unseat_sim_card,
    remove_app_permission,
    simulate_network_search,
    assert_mobile_data_status,
    assert_internet_speed,
    assert_service_status,
    assert_can_send_mms,
    assert_airplane_mode_status,
    assert_mobile_roaming_status,
    assert_mobile_data_saver_mode_status,
    assert_mobile_data_usage_exceeded,
    assert_internet_not_excellent,
)


def on_phone(fn: Callable[..., Any]) -> Implementation:
    """`fn(phone, **arguments)` as a call on the user database: load, run, write back."""

    async def run(db: Database, **arguments: Any) -> Any:
        phone = await Phone.load(db)
        result = fn(phone, **arguments)
        await phone.save(db)
        return result

    run.__name__ = fn.__name__
    return run


TOOLS: dict[str, Implementation] = {f.__name__: on_phone(f) for f in _TOOLS}
FUNCTIONS: dict[str, Implementation] = {**TOOLS, **{f.__name__: on_phone(f) for f in _FUNCTIONS}}


def tools() -> list[Tool[Args]]:
    return load_tools("user", OWNER, TOOLS)
