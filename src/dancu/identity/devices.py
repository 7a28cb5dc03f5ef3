"""What a device is called in the citizen's device list and login history: a short summary
of the browser's User-Agent ("Chrome · Android") and the network it came from, masked to its
/24 (IPv4) or /48 (IPv6) so the history shows where without pinpointing anyone.

The device itself is named by a random cookie (``DEVICE_COOKIE``, HttpOnly, long-lived);
only its SHA-256 digest is stored, so the database cannot be used to impersonate a device.
"""

from __future__ import annotations

import hashlib
import ipaddress

DEVICE_COOKIE = "dancu_device"
DEVICE_COOKIE_DAYS = 400  # the longest browsers keep a cookie

_BROWSERS = (
    ("Edg", "Edge"),
    ("OPR/", "Opera"),
    ("coc_coc_browser", "Cốc Cốc"),
    ("Zalo", "Zalo"),
    ("SamsungBrowser", "Samsung Internet"),
    ("FxiOS", "Firefox"),
    ("Firefox/", "Firefox"),
    ("CriOS", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_agent(user_agent: str) -> str:
    """A short, language-neutral name for the browser: "Chrome · Android", or the first
    product token of an unknown agent; empty when there is none."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    if not browser:
        browser = user_agent.split("/", 1)[0].split(" ", 1)[0].strip()[:40]
    return " · ".join(part for part in (browser, system) if part)[:80]


def mask_ip(address: str) -> str:
    """The network of an address: 203.0.113.0/24, 2001:db8:1::/48; empty when unknown."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def cookie_digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()
