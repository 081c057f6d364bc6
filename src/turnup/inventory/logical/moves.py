"""Site-dependent resources when a service moves to another site (orders' moves).

A service carries IP prefixes and telephone numbers that belong to its site: a prefix from the pool serving
the site, a number in the site's area. ``site_resource_needs`` says, for each of those a service carries,
what to reserve at the new site; the caller then holds them (``hold_resources``) in its own transaction and
later assigns them (``assign_reservation_to_service``) and gives the old ones back (``release_block``,
``age_number``). Nothing here writes.

Matching a site (the rules quote holds use, docs/adr/0005-quote-holds.md):

- an IP prefix: a pool of the same family (ipv4/ipv6) whose ``site`` names the site (its name, city or region)
  before pools without a site, whose ``purpose`` is the old prefix's pool's purpose before pools without one,
  large enough for a prefix of the old length; ties by pool name;
- a telephone number: an available number in the site's country, in the site's area when its ``region`` is
  an area code (digits), else anywhere in the country.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from turnup.inventory.logical.holds import PoolInfo, resource_pools
from turnup.inventory.logical.orm import LogicalBlock
from turnup.inventory.logical.reservations import ReserveLine
from turnup.kernel.errors import Conflict


@dataclass(frozen=True)
class SitePlace:
    """What resource matching needs to know of a site."""

    name: str
    city: str | None
    region: str | None
    country: str


@dataclass(frozen=True)
class SiteResourceNeed:
    """One resource the service carries (``entry``, a ``service.resources`` entry) and the reservation line
    that gets its equivalent at the new site; ``what`` names it for people (``ipv4 prefix 10.0.0.8/29``)."""

    entry: dict[str, Any]
    line: ReserveLine
    what: str


def pool_for_site(
    session: Session,
    resource_type: str,
    site_names: tuple[str | None, ...],
    purpose: str | None,
    prefix_length: int | None,
) -> PoolInfo | None:
    """The pool of ``resource_type`` that serves a site (its name, city and region in ``site_names``): pools
    naming the site before pools without one, then pools of the wanted ``purpose`` before pools without a
    purpose (pools of another purpose never), large enough for ``prefix_length``; ties by pool name.
    Quote holds and moves both choose pools this way (README § Site matching)."""
    names = {n.lower() for n in site_names if n}
    best: tuple[tuple[int, int, str], PoolInfo] | None = None
    for space in resource_pools(session, resource_type):
        if space.site and space.site.lower() not in names:
            continue
        if purpose and space.purpose and space.purpose != purpose:
            continue
        prefix = space.prefix or ""
        if prefix_length is not None and "/" in prefix and int(prefix.rsplit("/", 1)[1]) > prefix_length:
            continue
        key = (0 if space.site else 1, 0 if (purpose and space.purpose == purpose) else 1, space.name)
        if best is None or key < best[0]:
            best = (key, space)
    return best[1] if best else None


def site_resource_needs(
    session: Session, entries: list[dict[str, Any]], site: SitePlace
) -> list[SiteResourceNeed]:
    """For each IP prefix and telephone number among ``entries``, what to reserve at ``site``. Raises
    ``Conflict`` naming the resource and the site when no pool serves it there."""
    needs: list[SiteResourceNeed] = []
    for entry in entries:
        kind, rid, value = entry.get("resourceType"), entry.get("id"), str(entry.get("value") or "")
        if kind == "telephoneNumber" and rid:
            params: dict[str, Any] = {"country": site.country}
            area = site.region if (site.region or "").isdigit() else None
            if area:
                params["pattern"] = area.lstrip("0") + "*"
            what = f"telephone number {value or rid}"
            needs.append(SiteResourceNeed(entry, ReserveLine("telephoneNumber", params), what))
        elif kind == "logicalResource" and rid and entry.get("kind") == "ipPrefix":
            block = session.get(LogicalBlock, rid)
            if block is None:
                continue
            family = block.space.resource_type
            length = int(value.rsplit("/", 1)[1]) if "/" in value else None
            purpose = block.space.purpose
            pool = pool_for_site(session, family, (site.name, site.city, site.region), purpose, length)
            what = f"{family} prefix {value or rid}"
            if pool is None:
                wanted = f" with purpose {purpose!r}" if purpose else ""
                raise Conflict(
                    f"no {family} pool{wanted} serves site {site.name!r} (needed to move {what})",
                    reason="No resource pool",
                )
            line_params: dict[str, Any] = {"poolId": pool.id}
            if length is not None:
                line_params["prefixLength"] = length
            needs.append(SiteResourceNeed(entry, ReserveLine("ipPrefix", line_params), what))
    return needs
