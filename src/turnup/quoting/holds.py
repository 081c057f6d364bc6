"""Inventory holds for a quote: every physical and logical resource its lines need, all or nothing.

One stock hold (``turnup.inventory.physical.hold_stock``) and one logical hold
(``turnup.inventory.logical.hold_resources``) per quote, both taken inside the quote's transaction through
the inventories' own commands; the caller commits once. A refusal from either inventory is re-worded to
name the quote line. Each unit of a line is held on its own request lines, and each hold entry names its
reservation ``line``, the ``unit`` and the ``specificationId`` needing it (stock also its
``fulfilmentMethod``): the order made from the quote assigns each line to that component's service.

Where a line's resources come from (docs/adr/0005-quote-holds.md):

- stock: any stock-holding location in the region of the line's site: the site's ``region``, else its
  ``city``, else its ``country`` (the first that names a stock region);
- IPv4/IPv6 prefixes, VLANs, ASNs, circuit ids: the pool of that type whose ``site`` names the site (its
  name, city or region) before pools without a site, and whose ``purpose`` is the line's ``ipPoolPurpose``
  characteristic (default ``customer``; ``private`` for private ASNs; the circuit type for circuit ids)
  before pools without a purpose; ties by pool name;
- phone numbers "in the buyer's area": an available number in the site's country whose national digits start
  with the area code (characteristic ``numberArea``, else the site's ``region`` when it is an area code);
  with no area code, any available number in the site's country.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from turnup.accounts import SiteInfo
from turnup.inventory import logical, physical
from turnup.inventory.logical import ReserveLine
from turnup.inventory.physical import LineRequest
from turnup.kernel import clock
from turnup.kernel.errors import Conflict, TurnupError
from turnup.kernel.hrefs import iso
from turnup.quoting.orm import Quote, QuoteItem
from turnup.quoting.pricing import PricedLine, Requirement

LOGICAL = {
    "ipv4Prefix": ("ipPrefix", "ipv4"),
    "ipv6Prefix": ("ipPrefix", "ipv6"),
    "vlan": ("vlan", "vlan"),
    "asn": ("asn", "asn"),
    "circuitId": ("identifier", "identifier"),
    "phoneNumber": ("telephoneNumber", None),
}
_ITEM_REF = re.compile(r"reservationItem\[(\d+)\]\.?")


@dataclass
class _Planned:
    line: PricedLine
    requirement: Requirement
    unit: int = 1  # which unit of the line (1-based) needs it: each unit is delivered by its own services


@dataclass
class HoldPlan:
    physical: list[tuple[_Planned, LineRequest]]
    logical: list[tuple[_Planned, ReserveLine]]


def _what(line: PricedLine) -> str:
    return f"quoteItem[{line.index}] ({line.offering.name})"


def _stock_region(site: SiteInfo, regions: set[str]) -> str | None:
    for candidate in (site.region, site.city, site.country):
        if candidate and candidate in regions:
            return candidate
    return None


def _logical_line(session: Session, line: PricedLine, need: Requirement) -> ReserveLine:
    kind, resource_type = LOGICAL[need.kind]
    site = line.site
    if kind == "telephoneNumber":
        area = need.parameters.get("area", "buyer")
        if area == "buyer":
            area = line.characteristics.get("numberArea") or (
                site.region if (site.region or "").isdigit() else None
            )
        params: dict[str, Any] = {"country": site.country}
        if area:
            params["pattern"] = str(area).lstrip("0") + "*"
        return ReserveLine(kind, params)
    assert resource_type is not None
    purpose: str | None
    if need.kind in ("ipv4Prefix", "ipv6Prefix"):
        purpose = str(line.characteristics.get("ipPoolPurpose", "customer"))
    elif need.kind == "asn":
        purpose = "private" if need.parameters.get("private") else None
    elif need.kind == "circuitId":
        purpose = str(need.parameters.get("circuitType", "crossConnect"))
    else:
        purpose = None
    length = need.parameters.get("prefixLength")
    pool = logical.pool_for_site(session, resource_type, (site.name, site.city, site.region), purpose, length)
    if pool is None:
        wanted = f" with purpose {purpose!r}" if purpose else ""
        raise Conflict(
            f"{_what(line)}: no {resource_type} pool{wanted} serves site {site.name!r} "
            f"(needed for {need.kind} of {need.specification!r}): a pool serves a site when its `site` "
            f"is the site's name, city or region ({site.city!r}, {site.region!r}) or it has no site, and "
            "its `purpose` is the line's (characteristic ipPoolPurpose for IP, default 'customer') or it "
            "has none — create one with `turnup ip pool`, `turnup pools vlan|asn|identifier` or "
            "`POST /tmf-api/resourcePoolManagement/v4/resourcePool`, or see README § Site matching",
            reason="No resource pool",
        )
    params = {"poolId": pool.id}
    if length is not None:
        params["prefixLength"] = int(length)
    return ReserveLine(kind, params)


def plan(session: Session, lines: list[PricedLine]) -> HoldPlan:
    """Turn every line's requirements into reservation lines (nothing is reserved yet)."""
    regions = physical.stock_regions(session)
    result = HoldPlan([], [])
    for line in lines:
        for need in line.requirements:
            if need.kind == "physical":
                region = _stock_region(line.site, regions)
                if region is None:
                    raise Conflict(
                        f"{_what(line)}: no stock location serves site {line.site.name!r} "
                        f"(region {line.site.region!r}, city {line.site.city!r}, country "
                        f"{line.site.country!r}) for SKU {need.sku!r}: a stock location matches a site "
                        "when its region equals the site's region, else city, else country — create one "
                        "with `turnup stock location-add CODE NAME --type warehouse --region REGION` "
                        "or see README § Site matching",
                        reason="No stock location",
                    )
                # one request line per unit of the line, so that each unit's service gets its own stock
                for unit in range(1, line.quantity + 1):
                    result.physical.append(
                        (
                            _Planned(line, need, unit),
                            LineRequest(sku=need.sku or "", quantity=need.quantity, region=region),
                        )
                    )
            else:
                reserve_line = _logical_line(session, line, need)
                for unit in range(1, line.quantity + 1):
                    for _ in range(need.quantity):
                        result.logical.append((_Planned(line, need, unit), reserve_line))
    return result


def place(
    session: Session, quote: Quote, items: list[QuoteItem], lines: list[PricedLine], actor: str
) -> None:
    """Hold everything the lines need until the quote expires, or raise naming the line (the caller rolls
    back)."""
    holds = plan(session, lines)
    per_item: dict[int, list[dict[str, Any]]] = {line.index: [] for line in lines}
    expires = quote.valid_until
    quote.stock_reservation_id = quote.logical_reservation_id = None
    if holds.physical:
        try:
            stock = physical.hold_stock(
                session,
                [r for _, r in holds.physical],
                expires_at=expires,
                customer_id=quote.customer_id,
                quote_id=quote.id,
                actor=actor,
            )
        except TurnupError as exc:
            raise _physical_refusal(exc, holds) from None
        quote.stock_reservation_id = stock.id
        for held in stock.lines:
            planned = holds.physical[held.line_no][0]
            per_item[planned.line.index].append(
                {
                    "resource": "stock",
                    "sku": held.sku,
                    "quantity": held.quantity,
                    "location": held.location,
                    "expiresAt": iso(expires),
                    "specification": planned.requirement.specification,
                    "reservation": {"id": stock.id, "@referredType": "ReserveProductStock"},
                    # which line of the reservation, for which unit and specification (an order assigns
                    # it to that component's service) and how it reaches the customer
                    "line": held.line_no,
                    "unit": planned.unit,
                    "specificationId": planned.requirement.specification_id,
                    "fulfilmentMethod": planned.requirement.parameters.get("fulfilmentMethod"),
                }
            )
    if holds.logical:
        try:
            resources = logical.hold_resources(
                session,
                [r for _, r in holds.logical],
                expires,
                actor,
                description=f"quote {quote.id}",
                related_party=quote.customer_id,
            )
        except TurnupError as exc:
            raise _logical_refusal(exc, holds) from None
        quote.logical_reservation_id = resources.id
        for resource in resources.items:
            planned = holds.logical[resource.line_no][0]
            per_item[planned.line.index].append(
                {
                    "resource": planned.requirement.kind,
                    "value": resource.value,
                    "quantity": 1,
                    "expiresAt": iso(expires),
                    "specification": planned.requirement.specification,
                    "reservation": {"id": resources.id, "@referredType": "ResourceReservation"},
                    "line": resource.line_no,
                    "unit": planned.unit,
                    "specificationId": planned.requirement.specification_id,
                }
            )
    for item in items:
        item.holds = per_item.get(item.position, [])
    quote.holds_state = "held" if (holds.physical or holds.logical) else None


def _physical_refusal(exc: TurnupError, holds: HoldPlan) -> TurnupError:
    if not isinstance(exc, Conflict) or not isinstance(exc.details, list):
        first = holds.physical[0][0].line
        return type(exc)(f"{_what(first)}: {exc.message}", reason=exc.reason, details=exc.details)
    parts, details = [], []
    for short in exc.details:
        planned = holds.physical[int(short["line"])][0]
        where = f"in region {short['region']}" if short.get("region") else f"at {short.get('location')}"
        parts.append(
            f"{_what(planned.line)}: SKU {short['sku']} {where}: requested {short['requested']}, "
            f"available {short['available']}"
        )
        details.append({**short, "quoteItem": planned.line.index, "offering": planned.line.offering.name})
    return Conflict(
        "insufficient stock to hold the quote: " + "; ".join(parts),
        reason="Insufficient stock",
        details=details,
    )


def _logical_refusal(exc: TurnupError, holds: HoldPlan) -> TurnupError:
    found = _ITEM_REF.search(exc.message)
    planned = holds.logical[int(found.group(1)) if found else 0][0]
    message = (
        _ITEM_REF.sub(_what(planned.line) + ": ", exc.message, count=1)
        if found
        else f"{_what(planned.line)}: {exc.message}"
    )
    error = Conflict(
        f"{message} ({planned.requirement.kind} for {planned.requirement.specification!r})",
        reason=exc.reason if isinstance(exc, Conflict) else "Resource unavailable",
        details={"quoteItem": planned.line.index, "resource": planned.requirement.kind},
    )
    return error


def release(session: Session, quote: Quote, actor: str) -> None:
    """Give back whatever the quote still holds (expired holds are released as expired)."""
    if quote.stock_reservation_id:
        physical.release_stock_if_held(session, quote.stock_reservation_id, actor)
    if quote.logical_reservation_id:
        logical.release_reservation_if_held(session, quote.logical_reservation_id, actor)
    if quote.holds_state == "held":
        quote.holds_state = "released"


def lost(session: Session, quote: Quote, now: datetime | None = None) -> str | None:
    """Why the quote's holds can no longer be converted, or None when they are all live."""
    now = now or clock.now()
    if quote.stock_reservation_id:
        status = physical.stock_hold_status(session, quote.stock_reservation_id, now)
        if status != "held":
            return f"the stock hold {quote.stock_reservation_id} is {status}"
    if quote.logical_reservation_id:
        res = logical.resource_hold_state(session, quote.logical_reservation_id)
        if res is None or res.state != "reserved":
            return f"the resource hold {quote.logical_reservation_id} is {res.state if res else 'missing'}"
        if res.expires_at <= now:
            return f"the resource hold {quote.logical_reservation_id} has expired"
    return None


def commit(
    session: Session, quote: Quote, items: list[QuoteItem], order_id: str, actor: str
) -> list[dict[str, Any]]:
    """Convert the holds into allocations for ``order_id``; raise naming the line when a hold was lost."""
    refs: list[dict[str, Any]] = []
    try:
        if quote.stock_reservation_id:
            physical.commit_reservation(session, quote.stock_reservation_id, order_id, actor, commit=False)
            refs.append({"id": quote.stock_reservation_id, "@referredType": "ReserveProductStock"})
        if quote.logical_reservation_id:
            logical.commit_resource_hold(
                session, quote.logical_reservation_id, actor, service_id=f"order:{order_id}"
            )
            refs.append({"id": quote.logical_reservation_id, "@referredType": "ResourceReservation"})
    except TurnupError as exc:
        raise Conflict(
            f"{first_held_line(items)}: holds were lost: {exc.message}; re-price the quote",
            reason="Holds lost",
        ) from None
    quote.holds_state = "committed"
    return refs


def first_held_line(items: list[QuoteItem]) -> str:
    for item in items:
        if item.holds:
            return f"quoteItem[{item.position}] ({item.offering_name})"
    return "quote"
