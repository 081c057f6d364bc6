"""``turnup stock …``: physical inventory from the command line.

Reservation lines are written ``SKU:QTY@LOCATION``, ``SKU:QTY@region:REGION`` or ``SKU#SERIAL[,SERIAL…]``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console, err_console, validated
from turnup.inventory.physical import fulfilment, imports, racks, reservations, services
from turnup.inventory.physical.orm import ReplenishmentRequest, ReturnExpectation
from turnup.inventory.physical.render import render_reservation
from turnup.inventory.physical.schemas import (
    AllocationDispatch,
    LevelSettings,
    LineRequest,
    LocationCreate,
    MovementCreate,
    RackHoldCreate,
    ReservationCreate,
    ReturnReceipt,
    SkuCreate,
    StockQuery,
)
from turnup.kernel import clock

app = typer.Typer(
    help="Physical inventory: SKUs, locations, stock, serials, reservations, racks.", no_args_is_help=True
)


def parse_line(text: str) -> dict[str, object]:
    """``SKU:QTY@LOC`` | ``SKU:QTY@region:R`` | ``SKU#S1,S2`` (optionally ``…@LOC``)."""
    try:
        if "#" in text:
            sku, rest = text.split("#", 1)
            serials, _, loc = rest.partition("@")
            line: dict[str, object] = {"sku": sku, "serials": [s for s in serials.split(",") if s]}
            if loc:
                line["location"] = loc
            return line
        sku_qty, where = text.split("@", 1)
        sku, qty = sku_qty.split(":", 1)
        line = {"sku": sku, "quantity": int(qty)}
        if where.startswith("region:"):
            line["region"] = where.removeprefix("region:")
        else:
            line["location"] = where
        return line
    except ValueError:
        err_console.print(
            f"[bold red]Error:[/] line {text!r}: expected SKU:QTY@LOCATION, SKU:QTY@region:R "
            "or SKU#SERIAL,SERIAL"
        )
        raise typer.Exit(1) from None


@app.command("sku-add")
def sku_add(
    code: str,
    name: str,
    serialised: bool = typer.Option(False, "--serialised"),
    unit: str = typer.Option("each"),
) -> None:
    """Add a SKU to the physical SKU master."""
    data = validated(SkuCreate, code=code, name=name, serialised=serialised, unit=unit)
    with cli_session() as session:
        sku = services.create_sku(session, data, CLI_ACTOR)
        console.print(f"Created SKU [bold]{sku.code}[/] id={sku.id}")


@app.command("location-add")
def location_add(
    code: str,
    name: str,
    location_type: str = typer.Option(
        ..., "--type", help="warehouse|van|store|customer_site|data_centre|cage|rack"
    ),
    parent: str | None = typer.Option(None),
    region: str | None = typer.Option(None),
    site_id: str | None = typer.Option(None),
    rack_units: int | None = typer.Option(None),
    power_budget: int | None = typer.Option(None, help="watts (racks)"),
) -> None:
    """Add a location to the tree."""
    data = validated(
        LocationCreate,
        code=code,
        name=name,
        locationType=location_type,
        parent=parent,
        region=region,
        siteId=site_id,
        rackUnits=rack_units,
        powerBudgetWatts=power_budget,
    )
    with cli_session() as session:
        loc = services.create_location(session, data, CLI_ACTOR)
        console.print(f"Created location [bold]{loc.code}[/] ({loc.location_type}) id={loc.id}")


@app.command("move")
def move(
    kind: str = typer.Argument(
        ..., help="receipt|transfer|issue|ship|install|return|refurbish|scrap|count_adjustment"
    ),
    sku: str = typer.Argument(...),
    location: str | None = typer.Option(None),
    to: str | None = typer.Option(None, "--to"),
    quantity: int | None = typer.Option(None),
    serial: list[str] = typer.Option([], help="repeatable"),
    counted: int | None = typer.Option(None),
    from_quarantine: bool = typer.Option(True, "--from-quarantine/--from-stock"),
    reason: str | None = typer.Option(None),
    reference: str | None = typer.Option(None),
) -> None:
    """Record a stock movement (receipts of serialised SKUs: --serial for each unit)."""
    units = [{"serial": s} for s in serial] if kind == "receipt" and serial else None
    data = validated(
        MovementCreate,
        kind=kind,
        sku=sku,
        location=location,
        toLocation=to,
        quantity=quantity,
        serials=serial or None if units is None else None,
        units=units,
        countedQuantity=counted,
        fromQuarantine=from_quarantine,
        reason=reason,
        reference=reference,
    )
    with cli_session() as session:
        result = services.apply_movement(session, data, CLI_ACTOR)
        console.print(f"{kind} of {result['quantity']} × {sku} recorded (reference {result['id']})")
        for doc in result["productStock"]:
            console.print(
                f"  {doc['name']}: on hand {doc['stockedQuantity']['amount']}, "
                f"available {doc['availableQuantity']['amount']}"
            )


@app.command("levels")
def levels(
    sku: list[str] = typer.Option([], help="repeatable"),
    location: list[str] = typer.Option([]),
    region: str | None = typer.Option(None),
) -> None:
    """Stock per SKU × location (expired holds already count as available)."""
    data = validated(StockQuery, skus=sku or None, locations=location or None, region=region)
    with cli_session() as session:
        table = Table(
            "sku", "location", "on hand", "reserved", "allocated", "available", "quarantine", "reorder at"
        )
        for d in services.query_stock(session, data):
            table.add_row(
                d["stockedProduct"]["code"],
                d["place"]["code"],
                str(d["stockedQuantity"]["amount"]),
                str(d["reservedQuantity"]["amount"]),
                str(d["allocatedQuantity"]["amount"]),
                str(d["availableQuantity"]["amount"]),
                str(d["quarantinedQuantity"]["amount"]),
                "" if d["reorderPoint"] is None else str(d["reorderPoint"]),
            )
        console.print(table)


@app.command("policy")
def policy(
    sku: str,
    location: str,
    reorder_point: int | None = typer.Option(None),
    reorder_quantity: int | None = typer.Option(None),
    lead_time_days: int | None = typer.Option(None),
) -> None:
    """Set the reorder point / quantity / lead time of a SKU × location."""
    data = validated(
        LevelSettings,
        sku=sku,
        location=location,
        reorderPoint=reorder_point,
        reorderQuantity=reorder_quantity,
        leadTimeDays=lead_time_days,
    )
    with cli_session() as session:
        services.set_level_policy(session, data, CLI_ACTOR)
        console.print(f"Reorder policy set for {sku} @ {location}")


@app.command("reserve")
def reserve(
    line: list[str] = typer.Option(..., help="SKU:QTY@LOC | SKU:QTY@region:R | SKU#S1,S2 (repeatable)"),
    minutes: int = typer.Option(60 * 24 * 14, help="hold for this many minutes (quote validity)"),
    quote: str | None = typer.Option(None),
    customer: str | None = typer.Option(None),
) -> None:
    """Reserve several lines, all or nothing."""
    data = validated(
        ReservationCreate,
        lines=[parse_line(x) for x in line],
        expiresAt=clock.now() + timedelta(minutes=minutes),
        quoteId=quote,
        customerId=customer,
    )
    with cli_session() as session:
        view = reservations.create_reservation(session, data, CLI_ACTOR)
        _print_reservation(render_reservation(view))


def _print_reservation(doc: dict[str, object]) -> None:
    console.print(f"Reservation [bold]{doc['id']}[/] {doc['reservationState']} until {doc['expiresAt']}")
    for item in doc["reserveProductStockItem"]:  # type: ignore[attr-defined]
        places = ", ".join(f"{p['quantity']}@{p['location']}" for p in item["places"])
        console.print(f"  lines[{item['line']}] {item['sku']} × {item['quantity']}: {places}")


@app.command("extend")
def extend(reservation_id: str, minutes: int = typer.Option(..., help="new expiry: now + minutes")) -> None:
    with cli_session() as session:
        view = reservations.extend_reservation(
            session, reservation_id, clock.now() + timedelta(minutes=minutes), CLI_ACTOR
        )
        _print_reservation(render_reservation(view))


@app.command("release")
def release(reservation_id: str) -> None:
    with cli_session() as session:
        view = reservations.release_reservation(session, reservation_id, CLI_ACTOR)
        console.print(f"Reservation {view.id} is now {view.status}")


@app.command("commit")
def commit(reservation_id: str, order_id: str) -> None:
    """Commit a live reservation into an allocation for an order."""
    with cli_session() as session:
        view = reservations.commit_reservation(session, reservation_id, order_id, CLI_ACTOR)
        assert view.allocation is not None
        console.print(
            f"Reservation {view.id} committed: allocation {view.allocation.id} for order {order_id}"
        )


@app.command("dispatch")
def dispatch(
    allocation_id: str,
    kind: str = typer.Option("ship", help="ship | issue"),
    to: str | None = typer.Option(None, "--to"),
) -> None:
    """Ship an allocation (to a customer site) or issue it to a technician's van."""
    data = validated(AllocationDispatch, kind=kind, toLocation=to)
    with cli_session() as session:
        allocation = services.dispatch_allocation(session, allocation_id, data, CLI_ACTOR)
        console.print(f"Allocation {allocation.id} {allocation.status}")


@app.command("returns")
def returns(
    status: str | None = typer.Option("open", help="open | received | cancelled; '' for all"),
) -> None:
    """CPE return expectations (units expected back from customer sites after a disconnect)."""
    with cli_session() as session:
        stmt = select(ReturnExpectation).order_by(ReturnExpectation.created_at, ReturnExpectation.id)
        if status:
            stmt = stmt.where(ReturnExpectation.status == status)
        rows = list(session.scalars(stmt.limit(500)))
        codes = fulfilment.location_codes(session, rows)
        table = Table("id", "status", "service", "from", "expected at", "units")
        for r in rows:
            table.add_row(
                r.id,
                r.status,
                r.service_id or "",
                codes.get(r.from_location_id or "", ""),
                codes.get(r.to_location_id or "", ""),
                ", ".join(f"{u['sku']}#{u['serial']}" for u in r.units),
            )
        console.print(table)


@app.command("receive-return")
def receive_return(
    return_id: str,
    location: str | None = typer.Option(None, help="stock location code (default: where expected)"),
    condition: str = typer.Option("returned", help="returned (quarantined) | refurbished (back in stock)"),
) -> None:
    """Receive the units of a CPE return back into stock and close it."""
    data = validated(ReturnReceipt, location=location, condition=condition)
    with cli_session() as session:
        r = fulfilment.receive_return(session, return_id, data, CLI_ACTOR)
        serials = ", ".join(f"{u['sku']}#{u['serial']}" for u in r.units)
        console.print(f"Return {r.id} {r.status}: {serials} ({r.condition})")


@app.command("check")
def check(line: list[str] = typer.Option(..., help="SKU:QTY@LOC | SKU:QTY@region:R | SKU#S1,S2")) -> None:
    """Availability per line: available now, where, and expected replenishment."""
    requests = [validated(LineRequest, **parse_line(x)) for x in line]
    with cli_session() as session:
        table = Table("line", "sku", "requested", "available", "ok", "where", "replenishment")
        for r in reservations.check_availability(session, requests):
            table.add_row(
                str(r.line),
                r.sku,
                str(r.requested),
                str(r.available),
                "yes" if r.sufficient else "NO",
                ", ".join(f"{p['available']}@{p['location']}" for p in r.locations),
                ", ".join(
                    f"{x['quantity']}@{x['location']} {x['expectedAt'] or '?'}" for x in r.replenishment
                ),
            )
        console.print(table)


@app.command("sweep")
def sweep() -> None:
    """Release every expired stock and rack hold now (housekeeping in `turnup serve` and
    `turnup orchestrator run` also does this periodically)."""
    with cli_session() as session:
        result = reservations.sweep_expired(session, actor="cli:sweeper")
        console.print(
            f"Released {result.lines_released} expired line(s); {result.reservations_expired} "
            f"reservation(s) and {result.rack_holds_expired} rack hold(s) expired"
        )


@app.command("unit-history")
def unit_history(serial: str, sku: str | None = typer.Option(None)) -> None:
    """Every ledger entry of a serialised unit."""
    with cli_session() as session:
        unit = services.unit_by_serial(session, serial, sku)
        console.print(f"Unit {unit.serial}: {unit.state}")
        table = Table("at", "kind", "state", "location", "reservation", "reference", "reason")
        history = services.unit_history(session, unit.id)
        codes = services.location_codes(session, [m.location_id for m in history])
        for m in history:
            table.add_row(
                m.at.isoformat(),
                m.kind,
                m.unit_state or "",
                codes.get(m.location_id or "", m.location_id or ""),
                m.reservation_id or "",
                m.reference or "",
                m.reason or "",
            )
        console.print(table)


@app.command("replenishment")
def replenishment(status: str = typer.Option("open")) -> None:
    """Replenishment requests."""
    with cli_session() as session:
        table = Table("id", "sku", "location", "quantity", "status", "expected")
        for r in session.scalars(
            select(ReplenishmentRequest)
            .where(ReplenishmentRequest.status == status)
            .order_by(ReplenishmentRequest.created_at)
        ):
            table.add_row(
                r.id,
                r.sku_id,
                r.location_id,
                str(r.quantity),
                r.status,
                r.expected_at.isoformat() if r.expected_at else "",
            )
        console.print(table)


@app.command("rack-reserve")
def rack_reserve(
    rack: str,
    units: int,
    power_watts: int,
    minutes: int = typer.Option(60 * 24 * 14),
    start_u: int | None = typer.Option(None),
    quote: str | None = typer.Option(None),
) -> None:
    """Hold contiguous rack units with power headroom."""
    data = validated(
        RackHoldCreate,
        rack=rack,
        units=units,
        powerWatts=power_watts,
        startU=start_u,
        expiresAt=clock.now() + timedelta(minutes=minutes),
        quoteId=quote,
    )
    with cli_session() as session:
        hold = racks.reserve_rack_space(session, data, CLI_ACTOR)
        console.print(
            f"Rack hold {hold.id}: U{hold.start_u}-U{hold.start_u + hold.units - 1}, "
            f"{hold.power_watts} W until {hold.expires_at.isoformat()}"
        )


@app.command("rack-extend")
def rack_extend(hold_id: str, minutes: int = typer.Option(..., help="new expiry: now + minutes")) -> None:
    """Move a rack hold's expiry (e.g. when its quote's validity is extended)."""
    with cli_session() as session:
        hold = racks.extend_rack_hold(session, hold_id, clock.now() + timedelta(minutes=minutes), CLI_ACTOR)
        console.print(f"Rack hold {hold.id} held until {hold.expires_at.isoformat()}")


@app.command("rack-release")
def rack_release(hold_id: str) -> None:
    with cli_session() as session:
        hold = racks.release_rack_hold(session, hold_id, CLI_ACTOR)
        console.print(f"Rack hold {hold.id} {hold.status}")


@app.command("rack-commit")
def rack_commit(hold_id: str, order_id: str) -> None:
    with cli_session() as session:
        hold = racks.commit_rack_hold(session, hold_id, order_id, CLI_ACTOR)
        console.print(f"Rack hold {hold.id} {hold.status} for order {order_id}")


@app.command("allocation-cancel")
def allocation_cancel(allocation_id: str) -> None:
    """Cancel an allocation that has not been dispatched: its units return to stock."""
    with cli_session() as session:
        allocation = services.cancel_allocation(session, allocation_id, CLI_ACTOR)
        console.print(f"Allocation {allocation.id} is now {allocation.status}")


@app.command("import-stock")
def import_stock(path: Path) -> None:
    """Import quantities from CSV (sku,location,quantity), all or nothing, with a progress bar."""
    _import(path, imports.import_stock, lambda n: n)


@app.command("import-serials")
def import_serials(path: Path) -> None:
    """Import serialised units from CSV (sku,location,serial[,mac][,imei]), all or nothing."""
    _import(path, imports.import_serials, lambda n: n)


def _import(path: Path, fn, _total) -> None:  # type: ignore[no-untyped-def]
    if not path.exists():
        err_console.print(f"[bold red]Error:[/] {path}: no such file")
        raise typer.Exit(1)
    with path.open(newline="") as f:
        rows = max(sum(1 for _ in f) - 1, 0)
    with cli_session() as session, Progress(console=console) as progress, path.open(newline="") as f:
        task = progress.add_task(f"importing {path.name}", total=rows)
        result = fn(session, f, CLI_ACTOR, lambda n: progress.advance(task, n))
        progress.update(task, completed=rows)
    console.print(f"Imported {result.rows} row(s) as {result.movements} receipt(s)")
