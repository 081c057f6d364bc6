"""Physical inventory use cases other than reservations: SKU master, locations, stock movements, serialised
unit lifecycle, allocations leaving stock, reorder policy and stock queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from turnup import accounts
from turnup.inventory.physical.ledger import (
    LINE,
    UNIT,
    Ledger,
    Level,
    dispatched_status,
    ensure_levels,
    lock_levels,
    pair_condition,
    release_expired,
)
from turnup.inventory.physical.orm import (
    Allocation,
    Handover,
    Location,
    Sku,
    StockLevel,
    StockMovement,
    StockUnit,
)
from turnup.inventory.physical.render import (
    API,
    render_allocation,
    render_level,
    render_location,
    render_sku,
)
from turnup.inventory.physical.reservations import STOCK_HOLDING, expired_held
from turnup.inventory.physical.schemas import (
    AllocationDispatch,
    LevelSettings,
    LocationCreate,
    LocationUpdate,
    MovementCreate,
    SkuCreate,
    SkuUpdate,
    StockQuery,
)
from turnup.kernel import audit, clock
from turnup.kernel.db import table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

HANDOVER = table_of(Handover)

# --- SKUs and locations ----------------------------------------------------------------------------------


def sku_by_code(session: Session, code: str, field: str = "sku") -> Sku:
    sku = session.scalar(select(Sku).where(Sku.code == code))
    if sku is None:
        raise NotFound(f"{field}: unknown SKU {code!r}")
    return sku


def location_by_code(session: Session, code: str, field: str = "location") -> Location:
    loc = session.scalar(select(Location).where(Location.code == code))
    if loc is None:
        raise NotFound(f"{field}: unknown location {code!r}")
    return loc


def create_sku(session: Session, data: SkuCreate, actor: str) -> Sku:
    if session.scalar(select(Sku.id).where(Sku.code == data.code)):
        raise Conflict(f"code: SKU {data.code!r} already exists")
    now = clock.now()
    sku = Sku(
        id=new_id(),
        code=data.code,
        name=data.name,
        serialised=data.serialised,
        unit=data.unit,
        created_at=now,
        updated_at=now,
    )
    session.add(sku)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.sku.create",
        resource_type="sku",
        resource_id=sku.id,
        details={"code": sku.code},
    )
    publish(session, api=API, event_type="SkuCreateEvent", resource_type="sku", resource=render_sku(sku))
    session.commit()
    return sku


def update_sku(session: Session, sku_id: str, data: SkuUpdate, actor: str) -> Sku:
    sku = session.get(Sku, sku_id)
    if sku is None:
        raise NotFound(f"sku {sku_id!r} not found")
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "unit"):
        if key in changes:
            if changes[key] is None:
                raise InvalidInput(f"{key}: cannot be removed")
            setattr(sku, key, changes[key])
    sku.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.sku.update",
        resource_type="sku",
        resource_id=sku.id,
        details=changes,
    )
    publish(
        session,
        api=API,
        event_type="SkuAttributeValueChangeEvent",
        resource_type="sku",
        resource=render_sku(sku),
    )
    session.commit()
    return sku


def create_location(session: Session, data: LocationCreate, actor: str) -> Location:
    if session.scalar(select(Location.id).where(Location.code == data.code)):
        raise Conflict(f"code: location {data.code!r} already exists")
    parent = location_by_code(session, data.parent, "parent") if data.parent else None
    if parent is not None and parent.location_type == "rack":
        raise InvalidInput("parent: a rack cannot contain other locations")
    if data.siteId is not None and accounts.find_site(session, data.siteId) is None:
        raise NotFound(f"siteId: site {data.siteId!r} not found")
    now = clock.now()
    loc = Location(
        id=new_id(),
        code=data.code,
        name=data.name,
        location_type=data.locationType,
        parent_id=parent.id if parent else None,
        region=data.region or (parent.region if parent else None),
        site_id=data.siteId,
        rack_units=data.rackUnits,
        power_budget_watts=data.powerBudgetWatts,
        power_reserved_watts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(loc)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.location.create",
        resource_type="location",
        resource_id=loc.id,
        details={"code": loc.code, "type": loc.location_type},
    )
    publish(
        session,
        api=API,
        event_type="StockLocationCreateEvent",
        resource_type="location",
        resource=render_location(loc, data.parent),
    )
    session.commit()
    return loc


def update_location(session: Session, location_id: str, data: LocationUpdate, actor: str) -> Location:
    loc = session.get(Location, location_id)
    if loc is None:
        raise NotFound(f"location {location_id!r} not found")
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise InvalidInput("name: cannot be removed")
    for key in ("name", "region"):
        if key in changes:
            setattr(loc, key, changes[key])
    loc.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.location.update",
        resource_type="location",
        resource_id=loc.id,
        details=changes,
    )
    publish(
        session,
        api=API,
        event_type="StockLocationAttributeValueChangeEvent",
        resource_type="location",
        resource=render_location(loc),
    )
    session.commit()
    return loc


# --- levels ----------------------------------------------------------------------------------------------


def level_document(session: Session, level: StockLevel) -> dict[str, Any]:
    sku, loc = session.get(Sku, level.sku_id), session.get(Location, level.location_id)
    assert sku is not None and loc is not None
    freed = expired_held(session, [level.id], clock.now()).get(level.id, 0)
    return render_level(level, sku, loc, freed)


def level_documents(session: Session, levels: Sequence[StockLevel]) -> list[dict[str, Any]]:
    """Render many levels with three queries."""
    if not levels:
        return []
    skus = {s.id: s for s in session.scalars(select(Sku).where(Sku.id.in_({lv.sku_id for lv in levels})))}
    locs = {
        loc.id: loc
        for loc in session.scalars(select(Location).where(Location.id.in_({lv.location_id for lv in levels})))
    }
    freed = expired_held(session, [lv.id for lv in levels], clock.now())
    return [render_level(lv, skus[lv.sku_id], locs[lv.location_id], freed.get(lv.id, 0)) for lv in levels]


def set_level_policy(session: Session, data: LevelSettings, actor: str) -> StockLevel:
    """Reorder point / quantity / lead time for one SKU × location (creates the level if needed)."""
    sku = sku_by_code(session, data.sku)
    loc = location_by_code(session, data.location)
    _stock_holding(loc, "location")
    now = clock.now()
    ensure_levels(session, [(sku.id, loc.id)], now)
    levels = lock_levels(session, pairs=[(sku.id, loc.id)])
    level = levels[(sku.id, loc.id)]
    mapping = {
        "reorderPoint": "reorder_point",
        "reorderQuantity": "reorder_quantity",
        "leadTimeDays": "lead_time_days",
    }
    updates = {
        column: getattr(data, name) for name, column in mapping.items() if name in data.model_fields_set
    }
    if updates:
        session.execute(update(StockLevel).where(StockLevel.id == level.id).values(updated_at=now, **updates))
        for key, value in updates.items():
            setattr(level, key, value)
    ledger = Ledger(session, actor, now)
    ledger.touched[level.id] = level  # re-evaluates the reorder point
    ledger.flush()
    row = session.get(StockLevel, level.id, populate_existing=True)
    assert row is not None
    audit.record(
        session,
        actor=actor,
        action="stock.level.policy",
        resource_type="productStock",
        resource_id=level.id,
        details={k: v for k, v in updates.items()},
    )
    publish(
        session,
        api=API,
        event_type="ProductStockAttributeValueChangeEvent",
        resource_type="productStock",
        resource=level_document(session, row),
    )
    session.commit()
    return row


def query_stock(session: Session, data: StockQuery) -> list[dict[str, Any]]:
    """``queryProductStock``: levels by SKU codes, location codes and/or region."""
    stmt = (
        select(StockLevel)
        .join(Sku, Sku.id == StockLevel.sku_id)
        .join(Location, Location.id == StockLevel.location_id)
    )
    if data.skus:
        stmt = stmt.where(Sku.code.in_(data.skus))
    if data.locations:
        stmt = stmt.where(Location.code.in_(data.locations))
    if data.region:
        stmt = stmt.where(Location.region == data.region)
    docs = level_documents(session, list(session.scalars(stmt.order_by(Sku.code, Location.code).limit(5000))))
    if data.onlyAvailable:
        docs = [d for d in docs if d["availableQuantity"]["amount"] > 0]
    return docs


# --- movements -------------------------------------------------------------------------------------------


def _stock_holding(loc: Location, field: str) -> None:
    if loc.location_type not in STOCK_HOLDING:
        raise InvalidInput(f"{field}: {loc.code!r} is a {loc.location_type}, which holds no stock")


def _units(session: Session, sku: Sku, serials: list[str], field: str = "serials") -> list[StockUnit]:
    found = {
        u.serial: u
        for u in session.scalars(
            select(StockUnit)
            .where(StockUnit.sku_id == sku.id, StockUnit.serial.in_(serials))
            .order_by(StockUnit.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    }
    for i, serial in enumerate(serials):
        if serial not in found:
            raise NotFound(f"{field}[{i}]: unknown serial {serial!r} for SKU {sku.code!r}")
    return [found[s] for s in serials]


def _expect(
    units: list[StockUnit],
    states: tuple[str, ...],
    location: Location | None,
    action: str,
    field: str = "serials",
) -> None:
    for i, u in enumerate(units):
        if u.state not in states:
            raise Conflict(
                f"{field}[{i}]: unit {u.serial!r} is {u.state}; {action} needs {' or '.join(states)}",
                reason="Illegal state transition",
            )
        if location is not None and u.location_id != location.id:
            raise Conflict(
                f"{field}[{i}]: unit {u.serial!r} is not at {location.code!r}", reason="Unit elsewhere"
            )


def _short(sku: Sku, loc: Location, requested: int, available: int, what: str = "available") -> Conflict:
    return Conflict(
        f"insufficient stock: {sku.code} at {loc.code}: requested {requested}, {what} {max(available, 0)}",
        reason="Insufficient stock",
        details=[
            {
                "line": 0,
                "sku": sku.code,
                "location": loc.code,
                "requested": requested,
                "available": max(available, 0),
            }
        ],
    )


def apply_movement(
    session: Session, data: MovementCreate, actor: str, *, commit: bool = True
) -> dict[str, Any]:
    """One movement (``adjustProductStock``); everything is checked before anything is written.
    ``commit=False`` leaves the transaction open (CSV imports apply many movements all or nothing)."""
    now = clock.now()
    sku = sku_by_code(session, data.sku)
    loc = location_by_code(session, data.location) if data.location else None
    dest = location_by_code(session, data.toLocation, "toLocation") if data.toLocation else None
    kind = data.kind
    if sku.serialised and kind in ("receipt",) and data.units is None:
        raise InvalidInput(f"units: SKU {sku.code!r} is serialised; receive units with serial numbers")
    if sku.serialised and kind not in ("receipt", "count_adjustment") and data.serials is None:
        raise InvalidInput(f"serials: SKU {sku.code!r} is serialised; name the serials")
    if not sku.serialised and (data.serials is not None or data.units is not None):
        raise InvalidInput(f"serials: SKU {sku.code!r} is not serialised; give a quantity")
    if kind == "count_adjustment" and sku.serialised:
        raise InvalidInput(
            f"countedQuantity: SKU {sku.code!r} is serialised; count it by serial "
            "(receipt of found units, scrap of missing ones)"
        )
    if loc is not None:
        _stock_holding(loc, "location")
    if kind == "transfer":
        assert dest is not None
        _stock_holding(dest, "toLocation")
        if dest.id == loc.id:  # type: ignore[union-attr]
            raise InvalidInput("toLocation: same as location")
    if kind == "issue" and dest is not None and dest.location_type != "van":
        raise InvalidInput(f"toLocation: {dest.code!r} is a {dest.location_type}; issue goes to a van")
    if kind in ("ship",) and dest is not None and dest.location_type != "customer_site":
        raise InvalidInput(
            f"toLocation: {dest.code!r} is a {dest.location_type}; ship goes to a customer site"
        )
    if kind == "install" and dest is not None and dest.location_type != "customer_site":
        raise InvalidInput(
            f"toLocation: {dest.code!r} is a {dest.location_type}; install needs a customer site"
        )

    quantity = data.quantity or len(data.serials or data.units or [])
    pairs = set()
    if loc is not None:
        pairs.add((sku.id, loc.id))
    if kind in ("transfer", "install") and dest is not None:
        pairs.add((sku.id, dest.id))
    if kind == "return" and data.serials:  # the customer sites the units come back from (read unlocked)
        coming_back = _unit_rows(session, sku, data.serials)
        pairs |= {(sku.id, site) for site in _counted_at_site(session, coming_back).values()}
    if kind in ("receipt", "return", "transfer", "install", "count_adjustment"):
        before = {
            (p[0], p[1])
            for p in session.execute(
                select(StockLevel.sku_id, StockLevel.location_id).where(pair_condition(session, pairs))
            )
        }
        created = pairs - before
        ensure_levels(session, pairs, now)
    else:
        created = set()
    levels = lock_levels(session, pairs=pairs)
    ledger = Ledger(session, actor, now)
    release_expired(session, ledger, levels.values(), now)
    was_available = {
        lv.id: lv.available > 0 for (s_id, l_id), lv in levels.items() if (s_id, l_id) not in created
    }
    src: Level | None = levels.get((sku.id, loc.id)) if loc else None
    if loc is not None and src is None:
        src = Level(
            id="",
            sku_id=sku.id,
            location_id=loc.id,
            on_hand=0,
            reserved=0,
            allocated=0,
            quarantined=0,
            reorder_point=None,
            reorder_quantity=None,
            lead_time_days=None,
        )
    reference = data.reference or new_id()
    moved_serials: list[str] = []

    def need_available(n: int) -> None:
        assert src is not None and loc is not None
        if src.available < n:
            raise _short(sku, loc, n, src.available)

    if kind == "receipt":
        assert src is not None and loc is not None
        if data.units:
            _check_new_units(session, sku, data.units)
            rows: list[dict[str, Any]] = [
                {
                    "id": new_id(),
                    "sku_id": sku.id,
                    "serial": u.serial,
                    "mac": u.mac.upper() if u.mac else None,
                    "imei": u.imei,
                    "location_id": loc.id,
                    "state": "in_stock",
                    "created_at": now,
                    "updated_at": now,
                }
                for u in data.units
            ]
            session.execute(UNIT.insert(), rows)
            for row in rows:
                ledger.move(
                    src,
                    "receipt",
                    on_hand=1,
                    unit_id=row["id"],
                    unit_state="in_stock",
                    reference=reference,
                    reason=data.reason,
                )
            moved_serials = [u.serial for u in data.units]
        else:
            ledger.move(src, "receipt", on_hand=quantity, reference=reference, reason=data.reason)
    elif kind == "transfer":
        assert src is not None and dest is not None
        to = levels[(sku.id, dest.id)]
        need_available(quantity)
        if data.serials:
            units = _units(session, sku, data.serials)
            _expect(units, ("in_stock",), loc, "transfer")
            _move_units(session, units, "in_stock", dest.id, now)
            for u in units:
                ledger.move(
                    src, "transfer", on_hand=-1, unit_id=u.id, unit_state="in_stock", reference=reference
                )
                ledger.move(
                    to, "transfer", on_hand=1, unit_id=u.id, unit_state="in_stock", reference=reference
                )
            moved_serials = data.serials
        else:
            ledger.move(src, "transfer", on_hand=-quantity, reference=reference, reason=data.reason)
            ledger.move(to, "transfer", on_hand=quantity, reference=reference, reason=data.reason)
    elif kind in ("issue", "ship"):
        assert src is not None
        need_available(quantity)
        state = "issued" if kind == "issue" else "shipped"
        if data.serials:
            units = _units(session, sku, data.serials)
            _expect(units, ("in_stock",), loc, kind)
            _move_units(session, units, state, dest.id if dest else None, now)
            for u in units:
                ledger.move(
                    src,
                    kind,
                    on_hand=-1,
                    unit_id=u.id,
                    unit_state=state,
                    reference=reference,
                    reason=data.reason,
                )
            moved_serials = data.serials
        else:
            ledger.move(src, kind, on_hand=-quantity, reference=reference, reason=data.reason)
    elif kind == "install":
        assert dest is not None and data.serials
        at_site = levels[(sku.id, dest.id)]
        units = _units(session, sku, data.serials)
        _expect(units, ("shipped", "issued"), None, "install")
        _move_units(session, units, "installed", dest.id, now)
        for u in units:
            ledger.move(
                at_site,
                "install",
                on_hand=1,
                unit_id=u.id,
                unit_state="installed",
                reference=reference,
                reason=data.reason,
            )
        moved_serials = data.serials
    elif kind == "return":
        assert src is not None
        if data.serials:
            units = _units(session, sku, data.serials)
            _expect(units, ("shipped", "issued", "installed"), None, "return")
            site_of = _counted_at_site(session, [(u.id, u.location_id, u.state) for u in units])
            for i, u in enumerate(units):
                if u.id in site_of and (sku.id, site_of[u.id]) not in levels:  # moved since it was read
                    raise Conflict(
                        f"serials[{i}]: unit {u.serial!r} moved while being returned; try again",
                        reason="Unit elsewhere",
                    )
            _move_units(session, units, "returned", loc.id, now)  # type: ignore[union-attr]
            for u in units:
                if u.id in site_of:
                    ledger.move(  # it leaves the customer site's stock
                        levels[(sku.id, site_of[u.id])],
                        "return",
                        on_hand=-1,
                        unit_id=u.id,
                        unit_state="returned",
                        reference=reference,
                        reason=data.reason,
                    )
                ledger.move(
                    src,
                    "return",
                    quarantined=1,
                    unit_id=u.id,
                    unit_state="returned",
                    reference=reference,
                    reason=data.reason,
                )
            moved_serials = data.serials
        else:
            ledger.move(src, "return", quarantined=quantity, reference=reference, reason=data.reason)
    elif kind == "refurbish":
        assert src is not None and loc is not None
        if src.quarantined < quantity:
            raise _short(sku, loc, quantity, src.quarantined, "in quarantine")
        if data.serials:
            units = _units(session, sku, data.serials)
            _expect(units, ("returned",), loc, "refurbish")
            _move_units(session, units, "in_stock", loc.id, now)
            for u in units:
                ledger.move(
                    src,
                    "refurbish",
                    quarantined=-1,
                    on_hand=1,
                    unit_id=u.id,
                    unit_state="in_stock",
                    reference=reference,
                    reason=data.reason,
                )
            moved_serials = data.serials
        else:
            ledger.move(
                src,
                "refurbish",
                quarantined=-quantity,
                on_hand=quantity,
                reference=reference,
                reason=data.reason,
            )
    elif kind == "scrap":
        assert src is not None and loc is not None
        if data.fromQuarantine and src.quarantined < quantity:
            raise _short(sku, loc, quantity, src.quarantined, "in quarantine")
        if not data.fromQuarantine:
            need_available(quantity)
        # one unit leaves quarantine or stock
        d_on_hand, d_quarantined = (0, -1) if data.fromQuarantine else (-1, 0)
        if data.serials:
            units = _units(session, sku, data.serials)
            _expect(units, ("returned",) if data.fromQuarantine else ("in_stock",), loc, "scrap")
            _move_units(session, units, "scrapped", None, now)
            for u in units:
                ledger.move(
                    src,
                    "scrap",
                    unit_id=u.id,
                    unit_state="scrapped",
                    reference=reference,
                    reason=data.reason,
                    location_id=loc.id,
                    on_hand=d_on_hand,
                    quarantined=d_quarantined,
                )
            moved_serials = data.serials
        else:
            ledger.move(
                src,
                "scrap",
                reference=reference,
                reason=data.reason,
                on_hand=d_on_hand * quantity,
                quarantined=d_quarantined * quantity,
            )
    elif kind == "count_adjustment":
        assert src is not None and loc is not None and data.countedQuantity is not None
        committed = src.reserved + src.allocated
        if data.countedQuantity < committed:
            raise Conflict(
                f"countedQuantity: {data.countedQuantity} counted for {sku.code} at {loc.code} but "
                f"{committed} reserved or allocated; release holds first",
                reason="Count below holds",
                details=[
                    {
                        "line": 0,
                        "sku": sku.code,
                        "location": loc.code,
                        "requested": committed,
                        "available": data.countedQuantity,
                    }
                ],
            )
        delta_q = data.countedQuantity - src.on_hand
        ledger.move(src, "count_adjustment", on_hand=delta_q, reference=reference, reason=data.reason)
    touched = sorted(ledger.touched)
    ledger.flush()
    level_rows = list(
        session.scalars(
            select(StockLevel)
            .where(StockLevel.id.in_(touched))
            .order_by(StockLevel.id)
            .execution_options(populate_existing=True)
        )
    )
    docs = level_documents(session, level_rows)
    for level_row, doc in zip(level_rows, docs, strict=True):  # one document per level row
        event = (
            "ProductStockCreateEvent"
            if (level_row.sku_id, level_row.location_id) in created
            else "ProductStockAttributeValueChangeEvent"
        )
        publish(session, api=API, event_type=event, resource_type="productStock", resource=doc)
        was = was_available.get(level_row.id)
        if was is not None and was != (doc["availableQuantity"]["amount"] > 0):
            publish(
                session,
                api=API,
                event_type="ProductStockStateChangeEvent",
                resource_type="productStock",
                resource=doc,
            )
    result = {
        "id": reference,
        "@type": "AdjustProductStock",
        "kind": kind,
        "sku": sku.code,
        "location": loc.code if loc else None,
        "toLocation": dest.code if dest else None,
        "quantity": quantity if kind != "count_adjustment" else data.countedQuantity,
        "serials": moved_serials or None,
        "reason": data.reason,
        "productStock": docs,
        "state": "done",
    }
    audit.record(
        session,
        actor=actor,
        action=f"stock.{kind}",
        resource_type="productStock",
        resource_id=reference,
        details={k: v for k, v in result.items() if k != "productStock"},
    )
    if commit:
        session.commit()
    return result


def _check_new_units(session: Session, sku: Sku, units: list[Any]) -> None:
    serials = [u.serial for u in units]
    taken = set(
        session.scalars(
            select(StockUnit.serial).where(StockUnit.sku_id == sku.id, StockUnit.serial.in_(serials))
        )
    )
    macs = [u.mac.upper() for u in units if u.mac]
    imeis = [u.imei for u in units if u.imei]
    taken_macs = set(session.scalars(select(StockUnit.mac).where(StockUnit.mac.in_(macs)))) if macs else set()
    taken_imeis = (
        set(session.scalars(select(StockUnit.imei).where(StockUnit.imei.in_(imeis)))) if imeis else set()
    )
    for i, u in enumerate(units):
        if u.serial in taken:
            raise Conflict(
                f"units[{i}].serial: serial {u.serial!r} already used for SKU {sku.code!r}",
                reason="Serial already used",
            )
        if u.mac and u.mac.upper() in taken_macs:
            raise Conflict(f"units[{i}].mac: MAC {u.mac!r} already used", reason="Serial already used")
        if u.imei and u.imei in taken_imeis:
            raise Conflict(f"units[{i}].imei: IMEI {u.imei!r} already used", reason="Serial already used")
    if len({m for m in macs}) != len(macs) or len(set(imeis)) != len(imeis):
        raise InvalidInput("units: duplicate MAC or IMEI in the request")


def _unit_rows(session: Session, sku: Sku, serials: list[str]) -> list[tuple[str, str | None, str]]:
    """(id, location_id, state) of the SKU's units with these serials, read without locking."""
    return [
        (str(unit_id), location_id, str(state))
        for unit_id, location_id, state in session.execute(
            select(UNIT.c.id, UNIT.c.location_id, UNIT.c.state).where(
                UNIT.c.sku_id == sku.id, UNIT.c.serial.in_(serials)
            )
        )
    ]


def _counted_at_site(session: Session, units: list[tuple[str, str | None, str]]) -> dict[str, str]:
    """unit id -> the customer-site location whose on-hand quantity counts it, for (id, location_id, state)
    of units: an ``installed`` unit whose latest ``install`` movement added it to its current location's on
    hand. Units installed before customer sites held stock (an ``install`` entry with no quantity) are
    counted nowhere, so returning them changes no customer-site level."""
    installed = {unit_id: location_id for unit_id, location_id, state in units if state == "installed"}
    if not installed:
        return {}
    latest: dict[str, tuple[str | None, int]] = {}
    for unit_id, location_id, on_hand in session.execute(
        select(StockMovement.unit_id, StockMovement.location_id, StockMovement.on_hand_delta)
        .where(StockMovement.unit_id.in_(sorted(installed)), StockMovement.kind == "install")
        .order_by(StockMovement.id)
    ):
        latest[str(unit_id)] = (location_id, on_hand)
    return {
        unit_id: location_id
        for unit_id, location_id in installed.items()
        if location_id is not None and latest.get(unit_id) == (location_id, 1)
    }


def _move_units(
    session: Session, units: list[StockUnit], state: str, location_id: str | None, now: Any
) -> None:
    session.execute(
        update(UNIT)
        .where(UNIT.c.id.in_([u.id for u in units]))
        .values(state=state, location_id=location_id, updated_at=now)
    )


# --- units and history -----------------------------------------------------------------------------------


def unit_by_serial(session: Session, serial: str, sku_code: str | None = None) -> StockUnit:
    stmt = select(StockUnit).where(StockUnit.serial == serial)
    if sku_code:
        stmt = stmt.join(Sku, Sku.id == StockUnit.sku_id).where(Sku.code == sku_code)
    units = list(session.scalars(stmt.limit(2)))
    if not units:
        raise NotFound(f"serial: unknown serial {serial!r}")
    if len(units) > 1:
        raise InvalidInput(f"serial: {serial!r} exists for several SKUs; give the SKU")
    return units[0]


def unit_history(session: Session, unit_id: str) -> list[StockMovement]:
    if session.get(StockUnit, unit_id) is None:
        raise NotFound(f"stockUnit {unit_id!r} not found")
    return list(
        session.scalars(
            select(StockMovement).where(StockMovement.unit_id == unit_id).order_by(StockMovement.id)
        )
    )


def location_codes(session: Session, location_ids: Sequence[str | None]) -> dict[str, str]:
    """Location id -> code for these ids (None ignored)."""
    ids = {i for i in location_ids if i}
    if not ids:
        return {}
    return {i: c for i, c in session.execute(select(Location.id, Location.code).where(Location.id.in_(ids)))}


# --- allocations leaving stock ---------------------------------------------------------------------------


def get_allocation(session: Session, allocation_id: str) -> Allocation:
    allocation = session.get(Allocation, allocation_id)
    if allocation is None:
        raise NotFound(f"allocation {allocation_id!r} not found")
    return allocation


def _lock_allocation(session: Session, allocation_id: str) -> tuple[Allocation, dict[str, Level], list[Any]]:
    allocation = get_allocation(session, allocation_id)
    lines = session.execute(
        select(LINE.c.id, LINE.c.level_id, LINE.c.quantity, LINE.c.sku_id)
        .where(
            LINE.c.allocation_id == allocation.id,
            LINE.c.status == "committed",
            ~exists().where(HANDOVER.c.line_id == LINE.c.id),  # not already at the customer's site
        )
        .order_by(LINE.c.id)
    ).all()
    levels = lock_levels(session, ids=[r.level_id for r in lines])
    locked = session.scalar(
        select(Allocation)
        .where(Allocation.id == allocation_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    assert locked is not None
    if locked.status != "active":
        raise Conflict(f"allocation {allocation_id!r} is {locked.status}", reason="Illegal state transition")
    return locked, {lv.id: lv for lv in levels.values()}, list(lines)


def dispatch_allocation(
    session: Session, allocation_id: str, data: AllocationDispatch, actor: str
) -> Allocation:
    """Ship (to a customer site) or issue (to a technician's van) everything an allocation holds."""
    now = clock.now()
    dest = location_by_code(session, data.toLocation, "toLocation") if data.toLocation else None
    if data.kind == "issue" and dest is not None and dest.location_type != "van":
        raise InvalidInput(f"toLocation: {dest.code!r} is a {dest.location_type}; issue goes to a van")
    if data.kind == "ship" and dest is not None and dest.location_type != "customer_site":
        raise InvalidInput(
            f"toLocation: {dest.code!r} is a {dest.location_type}; ship goes to a customer site"
        )
    allocation, levels, lines = _lock_allocation(session, allocation_id)
    state = "shipped" if data.kind == "ship" else "issued"
    ledger = Ledger(session, actor, now)
    for r in lines:
        level = levels[r.level_id]
        units = list(
            session.execute(
                select(UNIT.c.id).where(UNIT.c.hold_line_id == r.id).order_by(UNIT.c.id)
            ).scalars()
        )
        if units:
            session.execute(
                update(UNIT)
                .where(UNIT.c.id.in_(units))
                .values(state=state, hold_line_id=None, location_id=dest.id if dest else None, updated_at=now)
            )
            for unit_id in units:
                ledger.move(
                    level,
                    data.kind,
                    on_hand=-1,
                    allocated=-1,
                    unit_id=unit_id,
                    unit_state=state,
                    reservation_id=allocation.reservation_id,
                    reference=allocation.order_id,
                )
        else:
            ledger.move(
                level,
                data.kind,
                on_hand=-r.quantity,
                allocated=-r.quantity,
                reservation_id=allocation.reservation_id,
                reference=allocation.order_id,
            )
    ledger.flush()
    allocation.status, allocation.updated_at = state, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"stock.allocation.{data.kind}",
        resource_type="allocation",
        resource_id=allocation.id,
        details={"toLocation": data.toLocation},
    )
    publish(
        session,
        api=API,
        event_type="StockAllocationStateChangeEvent",
        resource_type="allocation",
        resource=render_allocation(allocation),
    )
    session.commit()
    return allocation


def cancel_allocation(session: Session, allocation_id: str, actor: str, *, commit: bool = True) -> Allocation:
    """Give an allocation's stock back (order cancelled); with ``commit=False``, in the caller's
    transaction."""
    now = clock.now()
    allocation, levels, lines = _lock_allocation(session, allocation_id)
    ledger = Ledger(session, actor, now)
    for r in lines:
        level = levels[r.level_id]
        units = list(
            session.execute(
                select(UNIT.c.id).where(UNIT.c.hold_line_id == r.id).order_by(UNIT.c.id)
            ).scalars()
        )
        if units:
            session.execute(
                update(UNIT)
                .where(UNIT.c.id.in_(units))
                .values(state="in_stock", hold_line_id=None, order_id=None, updated_at=now)
            )
            for unit_id in units:
                ledger.move(
                    level,
                    "cancel",
                    allocated=-1,
                    unit_id=unit_id,
                    unit_state="in_stock",
                    reservation_id=allocation.reservation_id,
                    reference=allocation.order_id,
                )
        else:
            ledger.move(
                level,
                "cancel",
                allocated=-r.quantity,
                reservation_id=allocation.reservation_id,
                reference=allocation.order_id,
            )
    if lines:  # this allocation's committed lines not handed over (``_lock_allocation``)
        session.execute(update(LINE).where(LINE.c.id.in_([r.id for r in lines])).values(status="released"))
    ledger.flush()
    # lines already handed over stay out at the customer's site: the allocation is then dispatched
    final = dispatched_status(session, allocation.id, otherwise="cancelled")
    allocation.status, allocation.updated_at = final, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.allocation.cancel",
        resource_type="allocation",
        resource_id=allocation.id,
    )
    publish(
        session,
        api=API,
        event_type="StockAllocationStateChangeEvent",
        resource_type="allocation",
        resource=render_allocation(allocation),
    )
    if commit:
        session.commit()
    return allocation
