"""TMF JSON documents: resource pools (resourcePoolManagement), logical resources (TMF639 views),
telephone numbers, number classes and blocks, resource reservations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import phonenumbers

from turnup.inventory.logical.codec import WIDTH, format_address, format_identifier, format_ip, unhex
from turnup.inventory.logical.orm import (
    LogicalSpace,
    NumberBlock,
    NumberClass,
    ResourceReservation,
    TelephoneNumber,
)
from turnup.kernel import clock
from turnup.kernel.hrefs import href, iso

POOL_API = "resourcePoolManagement"
INVENTORY_API = "resourceInventoryManagement"

POOL_TYPES = {
    ("ipv4", "aggregate"): "ipAggregate",
    ("ipv6", "aggregate"): "ipAggregate",
    ("ipv4", "pool"): "ipPool",
    ("ipv6", "pool"): "ipPool",
    ("ipv4", "subnet"): "ipSubnet",
    ("ipv6", "subnet"): "ipSubnet",
    ("ipv4", "root"): "ipRoutingDomain",
    ("ipv6", "root"): "ipRoutingDomain",
    ("vlan", "root"): "vlanDomain",
    ("vlan", "pool"): "vlanPool",
    ("asn", "root"): "asnSpace",
    ("asn", "pool"): "asnPool",
    ("identifier", "pool"): "identifierPool",
}
STATUS = {
    "free": "available",
    "reserved": "reserved",
    "allocated": "reserved",
    "quarantine": "standby",
    "container": "reserved",
    "system": "reserved",
}


class BlockLike(Protocol):
    """What ``render_block`` reads (read-only, so rows and dataclasses with narrower types fit)."""

    @property
    def id(self) -> str: ...
    @property
    def lo(self) -> Any: ...
    @property
    def k(self) -> Any: ...
    @property
    def state(self) -> str: ...
    @property
    def until(self) -> datetime | None: ...
    @property
    def reservation_id(self) -> str | None: ...
    @property
    def service_id(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def allocated_at(self) -> datetime | None: ...


def _ref(api: str, resource: str, obj_id: str | None, **extra: Any) -> dict[str, Any] | None:
    if obj_id is None:
        return None
    return {"id": obj_id, "href": href(api, resource, obj_id), **extra}


def render_pool(s: LogicalSpace) -> dict[str, Any]:
    lo, hi = unhex(s.lo), unhex(s.hi)
    is_ip = s.resource_type in WIDTH
    return {
        "id": s.id,
        "href": href(POOL_API, "resourcePool", s.id),
        "@type": "ResourcePool",
        "poolType": POOL_TYPES.get((s.resource_type, s.role), s.role),
        "name": s.name,
        "resourceType": s.resource_type,
        "routingDomain": s.domain,
        "prefix": s.prefix,
        "start": None if is_ip else lo,
        "end": None if is_ip else hi - 1,
        "size": hi - lo,
        "purpose": s.purpose,
        "site": s.site,
        "description": s.description,
        "allocationPolicy": s.policy,
        "quarantineSeconds": s.quarantine_seconds,
        "template": s.template,
        "parentPool": _ref(POOL_API, "resourcePool", s.parent_id),
        "createdAt": iso(s.created_at),
        "lastUpdate": iso(s.updated_at),
    }


def block_value(space: LogicalSpace, lo: int, k: int) -> str:
    if space.resource_type in WIDTH:
        return format_ip(space.resource_type, lo, k)
    if space.resource_type == "identifier":
        return format_identifier(space.template, lo)
    return str(lo)


def render_block(b: BlockLike, space: LogicalSpace) -> dict[str, Any]:
    lo = b.lo if isinstance(b.lo, int) else unhex(b.lo)
    k = int(b.k)
    rt = space.resource_type
    is_ip = rt in WIDTH
    if is_ip:
        kind = "IpAddress" if k == 0 else "IpPrefix"
    else:
        kind = {"vlan": "Vlan", "asn": "Asn"}.get(rt, "Identifier")
    document: dict[str, Any] = {
        "id": b.id,
        "href": href(INVENTORY_API, "logicalResource", b.id),
        "@type": kind,
        "@baseType": "LogicalResource",
        "value": block_value(space, lo, k),
        "resourceStatus": STATUS.get(b.state, "unknown"),
        "usageState": "active" if b.state == "allocated" else "idle",
        "lifecycleState": b.state,
        "resourcePool": _ref(POOL_API, "resourcePool", space.id, name=space.name),
        "routingDomain": space.domain if is_ip or rt == "vlan" else None,
        "serviceId": b.service_id,
        "description": b.description,
        "reservation": _ref(POOL_API, "resourceReservation", b.reservation_id),
        "startOperatingDate": iso(b.allocated_at),
        "validFor": {"endDateTime": iso(b.until)} if b.state == "reserved" and b.until else None,
        "quarantineUntil": iso(b.until) if b.state == "quarantine" else None,
    }
    if is_ip:
        document["prefixLength"] = WIDTH[rt] - k
        if k == 0:
            document["address"] = format_address(rt, lo)
    else:
        document["number"] = lo
    return document


def e164(digits: str) -> str:
    return "+" + digits


def render_number(n: TelephoneNumber) -> dict[str, Any]:
    try:
        parsed = phonenumbers.parse("+" + n.digits)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        international = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:  # pragma: no cover - validated on import
        national = international = "+" + n.digits
    return {
        "id": n.id,
        "href": href(INVENTORY_API, "telephoneNumber", n.id),
        "@type": "TelephoneNumber",
        "@baseType": "LogicalResource",
        "value": e164(n.digits),
        "internationalFormat": international,
        "nationalFormat": national,
        "country": n.region,
        "numberClass": n.number_class,
        "numberBlock": _ref(POOL_API, "numberBlock", n.block_id),
        "lifecycleState": n.state,
        "resourceStatus": "available" if n.state == "available" else "reserved",
        "serviceId": n.service_id,
        "reservation": _ref(POOL_API, "resourceReservation", n.reservation_id),
        "validFor": {"endDateTime": iso(n.until)} if n.state == "reserved" and n.until else None,
        "agingUntil": iso(n.until) if n.state == "aging" else None,
        "goldenNumber": n.golden,
        "maxRepeatedDigits": n.max_run,
        "createdAt": iso(n.created_at),
        "lastUpdate": iso(n.updated_at),
    }


def render_number_class(c: NumberClass) -> dict[str, Any]:
    return {
        "id": c.name,
        "href": href(POOL_API, "numberClass", c.name),
        "@type": "NumberClass",
        "name": c.name,
        "agingDays": c.aging_days,
        "description": c.description,
        "createdAt": iso(c.created_at),
        "lastUpdate": iso(c.updated_at),
    }


def render_number_block(b: NumberBlock) -> dict[str, Any]:
    return {
        "id": b.id,
        "href": href(POOL_API, "numberBlock", b.id),
        "@type": "NumberBlock",
        "prefix": "+" + b.prefix,
        "firstNumber": "+" + b.prefix + "000",
        "lastNumber": "+" + b.prefix + "999",
        "country": b.region,
        "numberClass": b.number_class,
        "size": b.size,
        "createdAt": iso(b.created_at),
    }


def reservation_state(r: ResourceReservation) -> str:
    if r.state == "reserved" and r.expires_at <= clock.now():
        return "expired"
    return r.state


def render_reservation(r: ResourceReservation) -> dict[str, Any]:
    items = []
    for item in r.items:
        resource = "telephoneNumber" if item.resource_type == "telephoneNumber" else "logicalResource"
        resource_id = item.number_id or item.block_id
        items.append(
            {
                "id": item.id,
                "lineNo": item.line_no,
                "resourceType": item.resource_type,
                "resourcePool": _ref(POOL_API, "resourcePool", item.space_id),
                "resource": {
                    "id": resource_id,
                    "href": href(INVENTORY_API, resource, resource_id or ""),
                    "value": item.value,
                    "@referredType": "LogicalResource",
                },
            }
        )
    return {
        "id": r.id,
        "href": href(POOL_API, "resourceReservation", r.id),
        "@type": "ResourceReservation",
        "reservationState": reservation_state(r),
        "validFor": {"startDateTime": iso(r.created_at), "endDateTime": iso(r.expires_at)},
        "description": r.description,
        "relatedParty": r.related_party,
        "serviceId": r.service_id,
        "reservationItem": items,
        "createdAt": iso(r.created_at),
        "lastUpdate": iso(r.updated_at),
    }
