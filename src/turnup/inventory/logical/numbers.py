"""Telephone numbers: E.164 validation (phonenumbers), range/thousands-block import, lifecycle with aging,
pattern search (prefix/suffix indexes, keypad words, repeated and golden numbers), block-pooling report.

Lifecycle: ``available -> reserved -> assigned (in service) -> aging -> available``, plus
``port_in_pending`` (ported in, not yet live), ``ported_out`` and ``disconnected``. Aging is per number
class and never below 45 days (a CHECK in the database); a number leaves aging only when it has ended.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from turnup.inventory.logical.codec import next_prefix, number_features, vanity_to_digits
from turnup.inventory.logical.orm import NumberBlock, NumberClass, TelephoneNumber
from turnup.inventory.logical.render import (
    INVENTORY_API,
    POOL_API,
    render_number,
    render_number_block,
    render_number_class,
)
from turnup.inventory.logical.schemas import (
    NumberClassCreate,
    NumberClassUpdate,
    NumberImport,
    NumberSearch,
    NumberUpdate,
    ReservationItemIn,
)
from turnup.kernel import audit, clock
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

N = TelephoneNumber
DEFAULT_CLASSES = {"residential": 90, "business": 365}
MAX_IMPORT = 100_000
TRANSITIONS: dict[str, set[str]] = {
    "available": {"reserved", "assigned", "disconnected"},
    "reserved": {"available", "assigned"},
    "assigned": {"aging", "ported_out", "disconnected"},
    "aging": set(),  # aging ends only when its period has passed (then the number is available)
    "port_in_pending": {"assigned", "disconnected"},
    "ported_out": {"aging"},
    "disconnected": {"aging"},
}


# ---------------------------------------------------------------------------------------- parsing


def parse_number(text: str, country: str | None, field: str) -> tuple[str, str]:
    """(E.164 digits without '+', ISO region) or InvalidInput naming ``field``."""
    region = country.upper() if country else None
    if not text.strip().startswith("+") and region is None:
        raise InvalidInput(f"{field}: {text!r} is a national number; give country (the default region)")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"{field}: {text!r} is not a telephone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"{field}: {text!r} is not a valid E.164 number")
    digits = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    return digits, phonenumbers.region_code_for_number(parsed) or (region or "ZZ")


def _country_code(country: str, field: str = "country") -> int:
    code = phonenumbers.country_code_for_region(country.upper())
    if not code:
        raise InvalidInput(f"{field}: {country!r} is not a known ISO 3166 region")
    return code


def _trunk(country: str) -> str | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(country.upper())
    return metadata.national_prefix if metadata else None


def _national_digits(country: str, text: str, field: str) -> str:
    """National leading digits (e.g. UK '020') as E.164 digits ('4420')."""
    raw = "".join(ch for ch in text if ch.isdigit())
    if not raw or raw != text.replace(" ", "").replace("-", "").lstrip("+"):
        raise InvalidInput(f"{field}: {text!r} must be digits")
    if text.strip().startswith("+"):
        return raw
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(country.upper())
    trunk = metadata.national_prefix if metadata else None
    if trunk and raw.startswith(trunk):
        raw = raw[len(trunk) :]
    return f"{_country_code(country)}{raw}"


# ---------------------------------------------------------------------------------------- classes


def get_class(session: Session, name: str, field: str = "numberClass") -> NumberClass:
    cls = session.get(NumberClass, name)
    if cls is None and name in DEFAULT_CLASSES:
        now = clock.now()
        cls = NumberClass(
            name=name, aging_days=DEFAULT_CLASSES[name], description="default", created_at=now, updated_at=now
        )
        session.add(cls)
        session.flush()
    if cls is None:
        raise NotFound(f"{field}: number class {name!r} not found")
    return cls


def create_number_class(session: Session, data: NumberClassCreate, actor: str) -> NumberClass:
    if session.get(NumberClass, data.name) is not None:
        raise Conflict(f"name: number class {data.name!r} already exists")
    now = clock.now()
    cls = NumberClass(
        name=data.name,
        aging_days=data.agingDays,
        description=data.description,
        created_at=now,
        updated_at=now,
    )
    session.add(cls)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="numberClass.create",
        resource_type="numberClass",
        resource_id=cls.name,
        details={"agingDays": data.agingDays},
    )
    publish(
        session,
        api=POOL_API,
        event_type="NumberClassCreateEvent",
        resource_type="numberClass",
        resource=render_number_class(cls),
    )
    session.commit()
    return cls


def update_number_class(session: Session, name: str, data: NumberClassUpdate, actor: str) -> NumberClass:
    cls = session.get(NumberClass, name)
    if cls is None:
        raise NotFound(f"number class {name!r} not found")
    changes = data.model_dump(exclude_unset=True)
    if "agingDays" in changes:
        if changes["agingDays"] is None:
            raise InvalidInput("agingDays: cannot be removed")
        cls.aging_days = changes["agingDays"]
    if "description" in changes:
        cls.description = changes["description"]
    cls.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="numberClass.update",
        resource_type="numberClass",
        resource_id=name,
        details=changes,
    )
    publish(
        session,
        api=POOL_API,
        event_type="NumberClassAttributeValueChangeEvent",
        resource_type="numberClass",
        resource=render_number_class(cls),
    )
    session.commit()
    return cls


# ----------------------------------------------------------------------------------------- import


def import_numbers(
    session: Session,
    data: NumberImport,
    actor: str,
    progress: Callable[[int], None] | None = None,
    commit: bool = True,
) -> dict[str, Any]:
    """Import a range or a thousands-block; every number is validated before anything is written.

    ``commit=False`` lets a bulk import (CLI ``--file``) commit all its ranges at once, or none."""
    if data.thousandsBlock is not None:
        if data.start is not None or data.end is not None:
            raise InvalidInput("thousandsBlock: give either thousandsBlock or start/end")
        if data.country is None and not data.thousandsBlock.startswith("+"):
            raise InvalidInput("thousandsBlock: a national block needs country")
        head = (
            _national_digits(data.country or "ZZ", data.thousandsBlock, "thousandsBlock")
            if not data.thousandsBlock.startswith("+")
            else "".join(c for c in data.thousandsBlock if c.isdigit())
        )
        first, _ = parse_number("+" + head + "000", None, "thousandsBlock")
        last, _ = parse_number("+" + head + "999", None, "thousandsBlock")
    else:
        if data.start is None:
            raise InvalidInput("start: required (or thousandsBlock)")
        first, _ = parse_number(data.start, data.country, "start")
        last, _ = parse_number(data.end, data.country, "end") if data.end else (first, "")
    if len(first) != len(last):
        raise InvalidInput(f"end: +{last} and start +{first} differ in length")
    if int(last) < int(first):
        raise InvalidInput(f"end: +{last} is below start +{first}")
    count = int(last) - int(first) + 1
    if count > MAX_IMPORT:
        raise InvalidInput(f"end: at most {MAX_IMPORT} numbers per import ({count} given); split the range")
    cls = get_class(session, data.numberClass)
    width = len(first)
    digits_list = [str(n).zfill(width) for n in range(int(first), int(last) + 1)]
    regions: list[str] = []
    for d in digits_list:
        parsed = phonenumbers.parse("+" + d)
        if not phonenumbers.is_valid_number(parsed):
            raise InvalidInput(f"start: +{d} in the range is not a valid E.164 number")
        regions.append(phonenumbers.region_code_for_number(parsed) or "ZZ")
    clash = session.scalar(
        select(N.digits).where(N.digits >= first, N.digits <= last, func.length(N.digits) == width).limit(1)
    )
    if clash:
        raise Conflict(f"start: +{clash} is already in the inventory", reason="Duplicate number")
    now = clock.now()
    by_block: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(digits_list):
        by_block[d[:-3]].append(i)
    block_ids: dict[str, NumberBlock] = {}
    for prefix, members in by_block.items():
        block = session.scalar(select(NumberBlock).where(NumberBlock.prefix == prefix).with_for_update())
        if block is None:
            block = NumberBlock(
                id=new_id(),
                prefix=prefix,
                region=regions[members[0]],
                number_class=cls.name,
                size=0,
                created_at=now,
            )
            session.add(block)
        block.size += len(members)
        block_ids[prefix] = block
    session.flush()
    rows = []
    for i, d in enumerate(digits_list):
        run, golden = number_features(d)
        rows.append(
            dict(
                id=new_id(),
                digits=d,
                rdigits=d[::-1],
                region=regions[i],
                block_id=block_ids[d[:-3]].id,
                number_class=cls.name,
                state=data.status,
                until=None,
                reservation_id=None,
                service_id=None,
                max_run=run,
                golden=golden,
                created_at=now,
                updated_at=now,
            )
        )
        if len(rows) == 5000:
            session.execute(insert(N), rows)
            if progress:
                progress(len(rows))
            rows = []
    if rows:
        session.execute(insert(N), rows)
        if progress:
            progress(len(rows))
    audit.record(
        session,
        actor=actor,
        action="telephoneNumber.import",
        resource_type="numberBlock",
        resource_id=next(iter(block_ids.values())).id,
        details={"first": "+" + first, "last": "+" + last, "count": count, "status": data.status},
    )
    for block in block_ids.values():
        publish(
            session,
            api=POOL_API,
            event_type="NumberBlockCreateEvent",
            resource_type="numberBlock",
            resource=render_number_block(block),
        )
    if commit:
        session.commit()
    return {
        "@type": "NumberImport",
        "first": "+" + first,
        "last": "+" + last,
        "count": count,
        "numberClass": cls.name,
        "status": data.status,
        "numberBlock": [render_number_block(b) for b in block_ids.values()],
    }


# -------------------------------------------------------------------------------------- lifecycle


def effective_state(n: TelephoneNumber | Any, now: datetime) -> str:
    if n.state in ("aging", "reserved") and n.until is not None and n.until <= now:
        return "available"
    return n.state


def sweep(session: Session, commit: bool = True) -> dict[str, int]:
    """Numbers whose aging or reservation has ended become available (indexed on (state, until)).
    Returns how many of each ended."""
    now = clock.now()
    aged = session.execute(
        update(N)
        .where(N.state == "aging", N.until <= now)
        .values(state="available", until=None, service_id=None, updated_at=now)
    )
    released = session.execute(
        update(N)
        .where(N.state == "reserved", N.until <= now)
        .values(state="available", until=None, reservation_id=None, updated_at=now)
    )
    if commit:
        session.commit()
    return {"aging_ended": aged.rowcount, "reservations_ended": released.rowcount}  # type: ignore[attr-defined]


def _find_number(session: Session, number_id: str, *, lock: bool = False) -> TelephoneNumber:
    """A number by its id or by its E.164 value (``+35312345678``; the ``+`` may be left out), else 404."""
    number = session.get(N, number_id, with_for_update=lock or None)
    digits = number_id[1:] if number_id.startswith("+") else number_id
    if number is None and digits.isdigit() and 7 <= len(digits) <= 15:
        stmt = select(N).where(N.digits == digits)
        number = session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
    if number is None:
        raise NotFound(f"telephoneNumber {number_id!r} not found")
    return number


def get_number(session: Session, number_id: str) -> TelephoneNumber:
    """A number by its id or its E.164 value, else ``NotFound``."""
    return _find_number(session, number_id)


def update_number(session: Session, number_id: str, data: NumberUpdate, actor: str) -> TelephoneNumber:
    number = _find_number(session, number_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    now = clock.now()
    current = effective_state(number, now)
    new = changes.get("status")
    if new is not None and new != current:
        if new not in TRANSITIONS[current]:
            extra = (
                f" before its aging ends at {number.until.isoformat()}"
                if number.state == "aging" and new == "available" and number.until is not None
                else ""
            )
            raise Conflict(
                f"status: a {number.state} number cannot become {new}{extra}",
                reason="Illegal state transition",
            )
        if new == "reserved":
            raise InvalidInput("status: reserve numbers through a resourceReservation (it sets the expiry)")
        if current == "reserved" and number.reservation_id:
            raise Conflict(
                f"status: reserved by resourceReservation {number.reservation_id}; "
                "commit or release that reservation"
            )
        if new == "assigned":
            service = changes.get("serviceId") or number.service_id
            if not service:
                raise InvalidInput("serviceId: required to assign a number to a service")
            number.service_id = service
            number.until = None
        elif new == "aging":
            cls = get_class(session, number.number_class)
            number.until = now + timedelta(days=cls.aging_days)
            number.service_id = None
        else:
            number.until = None
            number.service_id = None
        number.state = new
        number.reservation_id = None
    elif "serviceId" in changes:
        if current != "assigned":
            raise Conflict(f"serviceId: only an assigned number has a service (this one is {current})")
        number.service_id = changes["serviceId"]
    number.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="telephoneNumber.update",
        resource_type="telephoneNumber",
        resource_id=number.id,
        details={"from": current, **changes},
    )
    publish(
        session,
        api=INVENTORY_API,
        event_type="ResourceStateChangeEvent" if new else "ResourceAttributeValueChangeEvent",
        resource_type="resource",
        resource=render_number(number),
    )
    session.commit()
    return number


def reserve_number(
    session: Session, item: ReservationItemIn, reservation_id: str, until: datetime, field: str
) -> TelephoneNumber:
    """Reserve one number (given, or the first available one matching country/pattern). No commit."""
    now = clock.now()
    if item.number:
        digits, _ = parse_number(item.number, item.country, f"{field}.number")
        number = session.scalar(select(N).where(N.digits == digits).with_for_update())
        if number is None:
            raise NotFound(f"{field}.number: +{digits} is not in the inventory")
        state = effective_state(number, now)
        if state != "available":
            raise Conflict(
                f"{field}.number: +{digits} is {number.state}, not available", reason="Not available"
            )
    else:
        if item.country is None and item.pattern is None:
            raise InvalidInput(f"{field}.number: required (or country/pattern to pick one)")
        sweep(session, commit=False)
        query = NumberSearch(country=item.country, pattern=item.pattern, limit=1)
        stmt = build_search(query, field).with_for_update(skip_locked=True)
        number = session.scalar(stmt)
        if number is None:
            raise Conflict(f"{field}.pattern: no available number matches", reason="Pool exhausted")
    number.state = "reserved"
    number.until = until
    number.reservation_id = reservation_id
    number.service_id = None
    number.updated_at = now
    session.flush()
    return number


# ----------------------------------------------------------------------------------------- search


def parse_pattern(pattern: str, field: str = "pattern") -> tuple[str, str, str]:
    """(head literal digits, tail literal digits, LIKE pattern) of a pattern over national digits.

    Digits and keypad letters match themselves, ``?`` one digit, ``*`` any run.
    """
    out = []
    for ch in pattern.upper():
        if ch in "?*":
            out.append(ch)
        elif ch in " -.()":
            continue
        else:
            try:
                out.append(vanity_to_digits(ch))
            except ValueError:
                raise InvalidInput(f"{field}: {ch!r} is not a digit, keypad letter, '?' or '*'") from None
    body = "".join(out)
    if not body or set(body) <= {"*"}:
        raise InvalidInput(f"{field}: needs at least one digit or letter")
    head = ""
    for ch in body:
        if ch in "?*":
            break
        head += ch
    tail = ""
    for ch in reversed(body):
        if ch in "?*":
            break
        tail = ch + tail
    like = body.replace("?", "_").replace("*", "%")
    return head, tail, like


def build_search(q: NumberSearch, field: str = "") -> Select[Any]:
    f = f"{field}." if field else ""
    stmt = select(N).where(N.state == q.status)
    cc = ""
    order = N.digits
    if q.country:
        cc = str(_country_code(q.country, f"{f}country"))
        stmt = stmt.where(N.region == q.country.upper())
        if not (q.pattern and parse_pattern(q.pattern, f"{f}pattern")[1]):
            # a suffix search must walk the reversed-digits index; a country range would lure the planner
            stmt = stmt.where(N.digits >= cc, N.digits < next_prefix(cc))
    for name, value in (("area", q.area), ("prefix", q.prefix)):
        if value:
            if not value.startswith("+") and not q.country:
                raise InvalidInput(f"{f}{name}: national digits need country")
            head = _national_digits(q.country or "ZZ", value, f"{f}{name}")
            stmt = stmt.where(N.digits >= head, N.digits < next_prefix(head))
    if q.pattern:
        head, tail, like = parse_pattern(q.pattern, f"{f}pattern")
        trunk = _trunk(q.country) if q.country else None
        if trunk and head.startswith(trunk):  # national format: '020 7946 …' means NSN '20 7946 …'
            head, like = head[len(trunk) :], like[len(trunk) :]
        if not like.startswith("%") and not q.country:
            raise InvalidInput(
                f"{f}country: required unless the pattern starts with '*' (patterns match national numbers)"
            )
        if head:
            stmt = stmt.where(N.digits >= cc + head, N.digits < next_prefix(cc + head))
        if tail and like.endswith(tail):
            rtail = tail[::-1]
            stmt = stmt.where(N.rdigits >= rtail, N.rdigits < next_prefix(rtail))
            if not head:
                order = N.rdigits
        stmt = stmt.where(N.digits.like(cc + like))
    if q.minRepeat:
        stmt = stmt.where(N.max_run >= q.minRepeat)
    if q.golden is not None:
        stmt = stmt.where(N.golden == q.golden)
    if q.blockId:
        stmt = stmt.where(N.block_id == q.blockId)
    return stmt.order_by(order).offset(q.offset).limit(q.limit)


def search(session: Session, q: NumberSearch) -> list[TelephoneNumber]:
    return list(session.scalars(build_search(q)))


# ------------------------------------------------------------------------------------------ report


def pooling_report(
    session: Session, threshold_percent: float = 10.0, country: str | None = None
) -> list[dict[str, Any]]:
    """Thousands-blocks under ``threshold_percent`` used (not available) that could be donated."""
    used = (
        select(N.block_id, func.count().label("used"))
        .where(N.state != "available")
        .group_by(N.block_id)
        .subquery()
    )
    used_count = func.coalesce(used.c.used, 0)
    stmt = (
        select(NumberBlock, used_count)
        .outerjoin(used, used.c.block_id == NumberBlock.id)
        .where(used_count * 100 < threshold_percent * 1000)
        .order_by(NumberBlock.prefix)
    )
    if country:
        stmt = stmt.where(NumberBlock.region == country.upper())
    report = []
    for block, count in session.execute(stmt):
        doc = render_number_block(block)
        doc.update({"used": int(count), "utilizationPercent": round(int(count) / 10, 1), "donatable": True})
        report.append(doc)
    return report
