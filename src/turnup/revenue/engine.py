"""Revenue recognition arithmetic (ASC 606 / IFRS 15), with no database: segmentation of a contract into
performance obligations, allocation of the transaction price by relative standalone selling price (SSP),
recognition schedules, the contract position (asset / liability) and contract modifications.

The rules are written out in ``docs/revenue.md``; every amount is a ``Decimal`` of the currency's minor
unit (two places) and every split uses the largest-remainder method, so the parts always sum exactly to
the whole.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
PERMILLE = Decimal("0.001")

# obligation kinds and how each is satisfied
HARDWARE = "hardware"  # point in time, at hand-over (shipmentDelivered / pickedUp / technicianCompleted)
SERVICE = "service"  # connectivity and other services: over time, ratably from activation
INSTALLATION = "installation"  # point in time, at completion of the field visit
PROFESSIONAL = "professionalServices"  # percent complete: accepted milestones or hours
USAGE = "usage"  # variable consideration, recognised as used
KINDS = (HARDWARE, SERVICE, INSTALLATION, PROFESSIONAL, USAGE)
PATTERN = {
    HARDWARE: "pointInTime",
    INSTALLATION: "pointInTime",
    SERVICE: "overTime",
    PROFESSIONAL: "percentComplete",
    USAGE: "asUsed",
}


class RevenueError(ValueError):
    """A rule of the standard cannot be applied to the figures given (the message names what is wrong)."""


class MissingSSP(RevenueError):
    """An obligation has no standalone selling price and the residual approach is not allowed for it."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)
        super().__init__(
            "standaloneSellingPrice: missing for " + ", ".join(self.keys) + " (no residual approach allowed)"
        )


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def cents(value: Decimal) -> int:
    """An amount of whole cents as an int (raises on a fraction of a cent)."""
    scaled = value * 100
    if scaled != scaled.to_integral_value():
        raise RevenueError(f"amount {value} has a fraction of a cent")
    return int(scaled)


# --- largest remainder --------------------------------------------------------------------------------


def split_cents(total: int, weights: Sequence[int | Decimal]) -> list[int]:
    """Split ``total`` cents over ``weights`` in proportion; the parts sum exactly to ``total``.

    Each part is the floor of its exact share; the cents left go one each to the largest remainders (ties:
    the earlier weight). A negative total is split as its absolute value, then negated. Weights must be
    non-negative with a positive sum (all-zero weights: an equal split)."""
    if not weights:
        if total:
            raise RevenueError("cannot split a non-zero amount over nothing")
        return []
    if any(w < 0 for w in weights):
        raise RevenueError("weights must not be negative")
    sign = -1 if total < 0 else 1
    amount = abs(total)
    ws = [Decimal(w) for w in weights]
    whole = sum(ws, Decimal(0))
    if whole == 0:
        ws, whole = [Decimal(1)] * len(ws), Decimal(len(ws))
    shares = [amount * w / whole for w in ws]
    floors = [int(s) for s in shares]  # shares are non-negative: int() is the floor
    left = amount - sum(floors)
    order = sorted(range(len(ws)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [sign * f for f in floors]


def split_amount(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``split_cents`` in money: parts of ``total`` (two places) in proportion to ``weights``."""
    return [Decimal(c) / 100 for c in split_cents(cents(total), weights)]


# --- segmentation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One priced component of a contract line as agreed: ``amount`` is the net price per period
    (recurring) or once (oneTime); usage components carry no fixed amount."""

    name: str
    price_type: str  # recurring | oneTime | usage
    amount: Decimal
    list_amount: Decimal = ZERO


@dataclass(frozen=True)
class LineSpec:
    """A contract line (an order item) with what the catalog says about how it is delivered.

    ``ssp`` is the standalone selling price of the line's main obligation: per recurring period for a
    service (``method`` overTime), for the whole project for professional services (percentComplete), per
    unit for hardware (pointInTime). ``delivery`` names what the offering's delivery needs: ``fieldVisit``,
    ``project``, ``shipped`` (hardware shipped or picked up and kept by the customer). ``members`` are the
    member lines of a bundle (their own ``ssp`` and delivery); the bundle's own components are its price.
    ``install_ssp`` is the observable standalone price of the line's installation (its list price when the
    offering sells one), used when a bundle's installation is allocated."""

    ref: str
    product: str
    offering_id: str
    components: tuple[Component, ...] = ()
    method: str | None = None  # overTime | pointInTime | percentComplete
    ssp: Decimal | None = None
    delivery: frozenset[str] = frozenset()
    members: tuple[LineSpec, ...] = ()
    quantity: int = 1
    residual_allowed: bool = False
    install_ssp: Decimal | None = None
    milestones: tuple[tuple[str, Decimal], ...] = ()  # (name, percent of the project) for percentComplete
    recurring_ssp: Decimal | None = None  # a project line's recurring service (per period), if it has one


@dataclass(frozen=True)
class Obligation:
    """A performance obligation: what is promised, how it is satisfied, its SSP for the whole term and the
    consideration its own price components bring (``billed``: what the customer is charged for it)."""

    key: str
    ref: str  # the contract line (order item ref)
    product: str
    offering_id: str
    kind: str
    ssp: Decimal | None
    billed: Decimal
    months: int = 0  # over time: the term in months
    residual_allowed: bool = False
    milestones: tuple[tuple[str, Decimal], ...] = ()

    @property
    def pattern(self) -> str:
        return PATTERN[self.kind]


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


def _of_type(line: LineSpec, price_type: str) -> Decimal:
    return _sum(c.amount for c in line.components if c.price_type == price_type)


def _main_kind(line: LineSpec) -> str:
    if line.method == "percentComplete" or "project" in line.delivery:
        return PROFESSIONAL
    if line.method == "pointInTime":
        return HARDWARE
    return SERVICE


def segment(line: LineSpec, term_months: int) -> list[Obligation]:
    """The performance obligations of one contract line (rules in docs/revenue.md):

    1. A bundle is split into its members: each member is its own obligation (each is sold on its own, so
       distinct); the bundle's price is consideration for all of them.
    2. A line's recurring price is a service obligation over the contract term (connectivity, voice…):
       a series of distinct periods with the same pattern of transfer, so one obligation.
    3. A one-time price: an installation obligation when the line (or, for a bundle, a member) has a field
       visit — a distinct service the customer benefits from, satisfied at completion; part of the
       professional services obligation when the line is a project; otherwise (an activation or set-up fee
       that transfers nothing distinct) combined with the line's main obligation.
    4. A percentComplete line is one professional services obligation (project), by milestones or hours.
    5. A pointInTime line (hardware sold) is a hardware obligation, satisfied at hand-over.
    6. Usage prices are variable consideration allocated wholly to a usage obligation (ASC 606-10-32-40).
    """
    recurring, once = _of_type(line, "recurring"), _of_type(line, "oneTime")
    has_usage = any(c.price_type == "usage" for c in line.components)
    obligations: list[Obligation] = []
    parts = line.members or (line,)
    months = term_months if recurring or any(_main_kind(p) == SERVICE for p in parts) else 0
    for part in parts:
        kind = _main_kind(part)
        unit_ssp = part.ssp
        if kind == SERVICE:
            ssp = None if unit_ssp is None else q2(unit_ssp * part.quantity * line.quantity * term_months)
        else:
            ssp = None if unit_ssp is None else q2(unit_ssp * part.quantity * line.quantity)
        obligations.append(
            Obligation(
                key=f"{line.ref}/{part.product}/{kind}",
                ref=line.ref,
                product=part.product,
                offering_id=part.offering_id,
                kind=kind,
                ssp=ssp,
                billed=ZERO,
                months=term_months if kind == SERVICE else 0,
                residual_allowed=part.residual_allowed,
                milestones=part.milestones,
            )
        )
    if recurring and not any(o.kind == SERVICE for o in obligations):
        # a project (or hardware) line that also charges every period: the periodic service is its own
        # obligation over the term, its SSP the line's recurring standalone price
        main = parts[0]
        obligations.append(
            Obligation(
                key=f"{line.ref}/{main.product}/{SERVICE}",
                ref=line.ref,
                product=main.product,
                offering_id=main.offering_id,
                kind=SERVICE,
                ssp=None
                if main.recurring_ssp is None
                else q2(main.recurring_ssp * line.quantity * term_months),
                billed=ZERO,
                months=term_months,
            )
        )
    installer = next((p for p in parts if "fieldVisit" in p.delivery and _main_kind(p) == SERVICE), None)
    if once and installer is not None:
        ssp = installer.install_ssp if installer.install_ssp is not None else (None if line.members else once)
        obligations.append(
            Obligation(
                key=f"{line.ref}/{installer.product}/{INSTALLATION}",
                ref=line.ref,
                product=installer.product,
                offering_id=installer.offering_id,
                kind=INSTALLATION,
                ssp=None if ssp is None else q2(ssp * line.quantity),
                billed=ZERO,
            )
        )
    # what the line's own prices bill, by obligation (for the contract position): recurring over the term
    # to the service obligations, one-time to the installation (else the main obligation)
    billed: dict[str, Decimal] = {o.key: ZERO for o in obligations}
    over_time = [o for o in obligations if o.kind == SERVICE]
    total_recurring = q2(recurring * months)
    if over_time:
        shares = split_amount(total_recurring, [o.ssp or ZERO for o in over_time])
        for o, share in zip(over_time, shares, strict=True):
            billed[o.key] += share
    elif total_recurring:
        billed[obligations[0].key] += total_recurring
    install = next((o for o in obligations if o.kind == INSTALLATION), None)
    billed[(install or obligations[0]).key] += once
    result = [replace(o, billed=billed[o.key]) for o in obligations]
    if has_usage:
        first = parts[0]
        result.append(
            Obligation(
                key=f"{line.ref}/{line.product}/{USAGE}",
                ref=line.ref,
                product=line.product,
                offering_id=first.offering_id if not line.members else line.offering_id,
                kind=USAGE,
                ssp=None,
                billed=ZERO,
            )
        )
    return result


def segment_contract(lines: Sequence[LineSpec], term_months: int) -> list[Obligation]:
    out: list[Obligation] = []
    for line in lines:
        out.extend(segment(line, term_months))
    return out


# --- allocation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocable:
    key: str
    ssp: Decimal | None
    residual_allowed: bool = False
    ssp_range: tuple[Decimal, Decimal] | None = None  # observed selling prices (residual must fall within)


@dataclass(frozen=True)
class SubsetEvidence:
    """Observable evidence (ASC 606-10-32-37): the entity regularly sells ``keys`` together for ``price``."""

    keys: frozenset[str]
    price: Decimal


@dataclass(frozen=True)
class Allocation:
    amounts: dict[str, Decimal]
    method: str  # relative | subsetDiscount | residual | subsetDiscount+residual
    notes: tuple[str, ...] = ()


SUBSTANTIALLY_THE_SAME = Decimal("0.05")  # the evidence's discount within 5% of the contract's


def _relative(total: Decimal, items: Sequence[Allocable]) -> dict[str, Decimal]:
    parts = split_amount(total, [i.ssp or ZERO for i in items])
    return {i.key: p for i, p in zip(items, parts, strict=True)}


def allocate(
    price: Decimal, items: Sequence[Allocable], evidence: Sequence[SubsetEvidence] = ()
) -> Allocation:
    """Allocate the transaction price ``price`` over ``items`` (amounts sum exactly to ``price``).

    - Every SSP known, no applicable evidence: by relative SSP (the discount, or premium, proportionally).
    - Evidence that a subset is regularly sold together at a price whose discount is substantially the same
      (within 5%) as the contract's whole discount: the items outside the subset get their SSP, the subset
      gets the rest, split by relative SSP (the discount is allocated to the subset only).
    - One item without an SSP for which the residual approach is allowed (highly variable or uncertain SSP):
      its SSP is the price less the others' observable prices (after applying subset evidence, if any); the
      residual must be positive and within its observed range when one is given. A missing SSP that may not
      be estimated that way raises ``MissingSSP``.
    """
    if price < 0:
        raise RevenueError(f"transaction price {price} is negative")
    if not items:
        raise RevenueError("no performance obligation to allocate to")
    missing = [i for i in items if i.ssp is None]
    if any(not i.residual_allowed for i in missing):
        raise MissingSSP([i.key for i in missing if not i.residual_allowed])
    if len(missing) > 1:
        raise RevenueError(
            "standaloneSellingPrice: the residual approach estimates one obligation only; missing for "
            + ", ".join(i.key for i in missing)
        )
    if any(i.ssp is not None and i.ssp < 0 for i in items):
        raise RevenueError("standaloneSellingPrice: must not be negative")
    observed = [i for i in items if i.ssp is not None]
    keys = {i.key for i in observed}
    usable = [e for e in evidence if e.keys and e.keys <= keys and len(e.keys) < len(observed) + len(missing)]
    if missing:
        residual_item = missing[0]
        subset = usable[0] if usable else None
        observed_value = _sum(i.ssp or ZERO for i in observed)
        if subset is not None:
            observed_value = observed_value - _sum(i.ssp or ZERO for i in observed if i.key in subset.keys)
            observed_value += subset.price
        residual = price - observed_value
        if residual <= 0:
            raise RevenueError(
                f"standaloneSellingPrice: the residual approach leaves {residual} for {residual_item.key}; "
                "not appropriate"
            )
        if residual_item.ssp_range and not (
            residual_item.ssp_range[0] <= residual <= residual_item.ssp_range[1]
        ):
            low, high = residual_item.ssp_range
            raise RevenueError(
                f"standaloneSellingPrice: residual {residual} for {residual_item.key} is outside its "
                f"observed "
                f"selling prices {low}-{high}; the residual approach is not appropriate"
            )
        amounts = {residual_item.key: residual}
        if subset is not None:
            inside = [i for i in observed if i.key in subset.keys]
            amounts |= {i.key: i.ssp or ZERO for i in observed if i.key not in subset.keys}
            amounts |= _relative(subset.price, inside)
            method = "subsetDiscount+residual"
        else:
            amounts |= {i.key: i.ssp or ZERO for i in observed}
            method = "residual"
        return Allocation({i.key: amounts[i.key] for i in items}, method)
    total_ssp = _sum(i.ssp or ZERO for i in items)
    discount = total_ssp - price
    for e in usable:
        subset_discount = _sum(i.ssp or ZERO for i in items if i.key in e.keys) - e.price
        if discount > 0 and abs(subset_discount - discount) <= discount * SUBSTANTIALLY_THE_SAME:
            outside = [i for i in items if i.key not in e.keys]
            inside = [i for i in items if i.key in e.keys]
            amounts = {i.key: i.ssp or ZERO for i in outside}
            amounts |= _relative(price - _sum(amounts.values()), inside)
            return Allocation({i.key: amounts[i.key] for i in items}, "subsetDiscount")
    return Allocation(_relative(price, items), "relative")


# --- schedules ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Revenue of one calendar month (``month`` = its first day): ``days`` of service in it."""

    month: date
    days: int
    amount: Decimal


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months (clamped to the month's last day: 31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_days(start: date, end: date) -> list[tuple[date, int]]:
    """The calendar months of [start, end) with the days of the interval in each."""
    out: list[tuple[date, int]] = []
    cursor = start
    while cursor < end:
        nxt = add_months(month_start(cursor), 1)
        stop = min(nxt, end)
        out.append((month_start(cursor), (stop - cursor).days))
        cursor = stop
    return out


def ratable(amount: Decimal, start: date, months: int) -> list[Period]:
    """An over-time obligation's schedule: ``amount`` earned evenly per day from ``start`` (the activation
    date) for ``months`` months (end exclusive), reported by calendar month. Daily proration: a month's
    share is its days over the term's days, by largest remainder (the periods sum exactly to ``amount``)."""
    if months <= 0:
        raise RevenueError("an over-time obligation needs a term of at least one month")
    spans = month_days(start, add_months(start, months))
    parts = split_amount(amount, [Decimal(d) for _, d in spans])
    return [Period(m, d, p) for (m, d), p in zip(spans, parts, strict=True)]


def stop_schedule(schedule: Sequence[Period], amount: Decimal, start: date, stop: date) -> list[Period]:
    """The schedule after the obligation stops on ``stop`` (termination: no service from that day): the
    periods before are kept as they are, the month of ``stop`` earns only its days before ``stop`` (at the
    schedule's daily rate, rounded to the cent), later months nothing."""
    if stop <= start:
        return []
    total_days = sum(p.days for p in schedule)
    out: list[Period] = []
    for p in schedule:
        period_end = add_months(p.month, 1)
        if period_end <= stop:
            out.append(p)
            continue
        first = max(p.month, start)
        days = (stop - first).days
        if days > 0:
            out.append(Period(p.month, days, q2(amount * days / total_days)))
        break
    return out


def point_in_time(amount: Decimal, day: date) -> list[Period]:
    return [Period(month_start(day), 0, amount)]


def progress_ratio(done: Decimal, estimate: Decimal) -> Decimal:
    """Percent complete as a fraction, measured to 0.1% (the measure the illustrations use)."""
    if estimate <= 0:
        raise RevenueError("percent complete needs a positive estimate")
    ratio = min(done / estimate, Decimal(1))
    return (ratio * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) / 100


def percent_complete(allocated: Decimal, progress: Decimal, recognised: Decimal) -> Decimal:
    """Revenue to recognise now so that the total recognised is ``progress`` of ``allocated`` (a cumulative
    catch-up: negative when progress falls)."""
    return q2(allocated * progress) - recognised


def milestone_progress(milestones: Sequence[tuple[str, Decimal]], accepted: Iterable[str]) -> Decimal:
    """Progress from accepted milestones, each weighted by its revenue percent (equal weights if none)."""
    done = set(accepted)
    if not milestones:
        return Decimal(0)
    weights = [pct for _, pct in milestones]
    if not any(weights):
        weights = [Decimal(1)] * len(milestones)
    total = _sum(weights)
    reached = _sum(w for (name, _), w in zip(milestones, weights, strict=True) if name in done)
    return reached / total


# --- contract position --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """A contract's net position: revenue recognised ahead of billing is a contract asset, billing ahead of
    revenue a contract liability (deferred revenue); one contract shows one or the other (net)."""

    recognised: Decimal
    billed: Decimal

    @property
    def contract_asset(self) -> Decimal:
        return max(self.recognised - self.billed, ZERO)

    @property
    def contract_liability(self) -> Decimal:
        return max(self.billed - self.recognised, ZERO)


@dataclass(frozen=True)
class Posting:
    """A balanced journal entry's lines: (account, debit, credit)."""

    lines: tuple[tuple[str, Decimal, Decimal], ...]

    def balanced(self) -> bool:
        return _sum(d for _, d, _ in self.lines) == _sum(c for _, _, c in self.lines)


def recognise_posting(position: Position, amount: Decimal, revenue_account: str) -> Posting:
    """Journal lines for recognising ``amount`` on a contract in ``position``: the contract liability is
    released first; what exceeds it becomes (or adds to) a contract asset. A negative amount (a catch-up
    down) reverses the other way."""
    if amount == 0:
        return Posting(())
    if amount < 0:
        back = -amount
        from_asset = min(position.contract_asset, back)
        lines = [(revenue_account, back, ZERO)]
        if from_asset:
            lines.append(("contractAsset", ZERO, from_asset))
        if back - from_asset:
            lines.append(("contractLiability", ZERO, back - from_asset))
        return Posting(tuple(lines))
    from_liability = min(position.contract_liability, amount)
    lines = []
    if from_liability:
        lines.append(("contractLiability", from_liability, ZERO))
    if amount - from_liability:
        lines.append(("contractAsset", amount - from_liability, ZERO))
    lines.append((revenue_account, ZERO, amount))
    return Posting(tuple(lines))


def billing_posting(position: Position, amount: Decimal) -> Posting:
    """Journal lines for billing ``amount``: a receivable; the contract asset is settled first, the rest is
    a contract liability (billed ahead of revenue)."""
    if amount <= 0:
        raise RevenueError("a billed amount must be positive")
    to_asset = min(position.contract_asset, amount)
    lines = [("receivable", amount, ZERO)]
    if to_asset:
        lines.append(("contractAsset", ZERO, to_asset))
    if amount - to_asset:
        lines.append(("contractLiability", ZERO, amount - to_asset))
    return Posting(tuple(lines))


def revenue_account(kind: str) -> str:
    return f"revenue:{kind}"


# --- modifications ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Remaining:
    """An existing obligation at the modification date: what is left to recognise and its SSP for the rest."""

    key: str
    unrecognised: Decimal
    ssp: Decimal


@dataclass(frozen=True)
class Added:
    key: str
    price: Decimal
    ssp: Decimal


@dataclass(frozen=True)
class ModificationResult:
    treatment: str  # separateContract | prospective | cumulativeCatchUp
    amounts: dict[str, Decimal]  # separate / prospective: allocation of what is left to recognise
    catch_up: Decimal = ZERO  # cumulative catch-up: revenue adjustment on the modification date
    notes: tuple[str, ...] = field(default=())


def modification_treatment(*, adds_distinct: bool, priced_at_ssp: bool, remaining_distinct: bool) -> str:
    """Which of the three treatments a modification gets (ASC 606-10-25-12/13):

    - it adds distinct goods or services at their standalone selling prices: a separate contract;
    - otherwise, if what remains is distinct from what was transferred: prospectively (as if the old
      contract ended and a new one began);
    - otherwise (what remains is part of a partly satisfied single obligation): cumulative catch-up."""
    if adds_distinct and priced_at_ssp:
        return "separateContract"
    if remaining_distinct:
        return "prospective"
    return "cumulativeCatchUp"


def separate_contract(added: Sequence[Added]) -> ModificationResult:
    price = _sum(a.price for a in added)
    alloc = allocate(price, [Allocable(a.key, a.ssp) for a in added])
    return ModificationResult("separateContract", alloc.amounts)


def prospective(remaining: Sequence[Remaining], added: Sequence[Added]) -> ModificationResult:
    """The consideration not yet recognised plus the new consideration, allocated over the remaining and
    added obligations by relative SSP (ASC 606-10-25-13(a))."""
    total = _sum(r.unrecognised for r in remaining) + _sum(a.price for a in added)
    items = [Allocable(r.key, r.ssp) for r in remaining] + [Allocable(a.key, a.ssp) for a in added]
    return ModificationResult("prospective", allocate(total, items).amounts)


def cumulative_catch_up(
    *, new_price: Decimal, progress: Decimal, recognised: Decimal, key: str
) -> ModificationResult:
    """The single, partly satisfied obligation's new transaction price times the new measure of progress,
    less what was recognised: the adjustment recognised on the modification date (ASC 606-10-25-13(b))."""
    adjustment = percent_complete(new_price, progress, recognised)
    return ModificationResult("cumulativeCatchUp", {key: new_price}, catch_up=adjustment)


def obligation_totals(amounts: Mapping[str, Decimal]) -> Decimal:
    return _sum(amounts.values())


def days_between(start: date, end: date) -> int:
    return (end - start).days


def day_after(day: date) -> date:
    return day + timedelta(days=1)
