"""Webhook safety: where hub callbacks may point (no SSRF), and how deliveries are signed.

**Destinations.** A callback whose host is, or resolves to, an address that is not globally routable
(loopback, link-local, RFC 1918 and other private ranges, IPv6 ULA, unspecified, multicast, reserved, shared
CGNAT space, IPv4-mapped forms of these) is refused, unless the address lies in one of the networks of
``TURNUP_WEBHOOK_ALLOWED_NETWORKS`` (comma-separated CIDRs, e.g. ``10.20.0.0/16,127.0.0.1/32``). It is
checked when the subscription is made (``POST …/hub``: 400) **and** on every delivery, where the delivery
worker's HTTP client connects only to the very addresses it has just checked (``GuardedBackend``), so a
name that later resolves elsewhere (DNS rebinding) cannot reach an internal service. A name that does not
resolve at subscription time is accepted (it may be registered later) and checked at each delivery.

**Signatures.** Every delivery carries ``X-Turnup-Timestamp`` (Unix seconds) and
``X-Turnup-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``. The per-subscription
``secret`` is returned once, in the answer to ``POST …/hub``; it is derived, not stored:
``secret = hex HMAC-SHA256(TURNUP_WEBHOOK_SIGNING_KEY, "turnup-webhook-v1:" + subscription id)``, so the
database holds nothing that lets anyone forge a delivery. Receivers: docs/security.md, "Webhooks".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

import httpcore
import httpx
import structlog

log = structlog.get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

TIMESTAMP_HEADER = "X-Turnup-Timestamp"
SIGNATURE_HEADER = "X-Turnup-Signature"
SIGNATURE_VERSION = "v1"

_PROCESS_KEY = secrets.token_bytes(32)  # used only when TURNUP_WEBHOOK_SIGNING_KEY is not set (warned)
_warned = False


class CallbackRefused(Exception):
    """The callback's host is (or resolves to) an address deliveries must not go to."""


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """The networks of a comma- or space-separated CIDR list (``ValueError`` names a bad entry)."""
    networks: list[IPNetwork] = []
    for item in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"TURNUP_WEBHOOK_ALLOWED_NETWORKS: {item!r} is not a CIDR network") from None
    return tuple(networks)


def _kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _kind(address.ipv4_mapped)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved or non-public address"
    return None


def address_problem(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why a delivery must not go to ``address`` (None: it may), given the configured allowed networks."""
    kind = _kind(address)
    if kind is None:
        return None
    plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    for network in allowed:
        if address in network or (plain is not None and plain in network):
            return None
    return (
        f"{address} is {kind}; webhooks may only go to public addresses "
        "(or to networks listed in TURNUP_WEBHOOK_ALLOWED_NETWORKS)"
    )


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (raises ``OSError`` when it does not resolve)."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def checked_addresses(host: str, port: int, allowed: Sequence[IPNetwork]) -> list[IPAddress]:
    """The addresses of ``host``, all of them permitted; ``CallbackRefused`` if any is not."""
    addresses = resolve(host, port)
    for address in addresses:
        problem = address_problem(address, allowed)
        if problem is not None:
            shown = "" if literal_address(host) is not None else f"{host} resolves to "
            raise CallbackRefused(f"callback refused: {shown}{problem}")
    return addresses


def check_callback(url: str, allowed: Sequence[IPNetwork], *, unresolved_ok: bool) -> None:
    """Refuse (``CallbackRefused``) a callback URL whose host is or resolves to a forbidden address.

    ``unresolved_ok``: a host name that does not resolve passes (subscription time); otherwise it is refused.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CallbackRefused("callback refused: the port is not a number from 0 to 65535") from None
    if not host:
        raise CallbackRefused("callback refused: the URL has no host")
    try:
        checked_addresses(host, port, allowed)
    except OSError as exc:
        if not unresolved_ok:
            raise CallbackRefused(f"callback refused: {host} does not resolve ({exc})") from None


class GuardedBackend(httpcore.SyncBackend):
    """A network backend that connects only to checked addresses: resolve, check all, connect to those."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self.allowed = tuple(allowed)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port, self.allowed)
        except CallbackRefused as exc:
            raise httpcore.ConnectError(str(exc)) from None
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({exc})") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last


def guarded_client(allowed: Sequence[IPNetwork], timeout: float, headers: dict[str, str]) -> httpx.Client:
    """An HTTP client for deliveries: no redirects, no proxies from the environment, checked connections."""
    transport = httpx.HTTPTransport(retries=0, trust_env=False)
    # Same pool as httpx builds, with the checking backend (httpx has no public option for it).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(allowed),
    )
    return httpx.Client(
        transport=transport, follow_redirects=False, trust_env=False, headers=headers, timeout=timeout
    )


# -- signatures ---------------------------------------------------------------------------------------


def signing_key(configured: str) -> bytes:
    """The server's webhook key: ``TURNUP_WEBHOOK_SIGNING_KEY``, else a per-process random key (warned)."""
    global _warned
    if configured:
        return configured.encode()
    if not _warned:
        _warned = True
        log.warning(
            "webhook_signing_key_unset",
            detail="TURNUP_WEBHOOK_SIGNING_KEY is not set: subscription secrets change when the process "
            "restarts and differ between processes",
        )
    return _PROCESS_KEY


def subscription_secret(key: bytes, subscription_id: str) -> str:
    """The secret a subscriber verifies deliveries with, derived from the server key (never stored)."""
    return hmac.new(key, f"turnup-webhook-v1:{subscription_id}".encode(), hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``, the value of ``X-Turnup-Signature``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


def verify(secret: str, timestamp: str, body: bytes, header: str, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: the timestamp is recent and one ``v1=`` signature matches (constant time)."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    expected = signature(secret, sent_at, body)
    return any(
        hmac.compare_digest(part.strip().encode(), expected.encode()) for part in header.split(",") if part
    )
