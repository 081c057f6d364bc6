"""CSV import of stock quantities and serialised units: validated completely first, then applied as receipts
in one transaction (all or nothing), reporting progress through a callback.

Stock CSV columns: ``sku,location,quantity``. Serials CSV columns: ``sku,location,serial[,mac][,imei]``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.inventory.physical.orm import Location, Sku, StockUnit
from turnup.inventory.physical.schemas import MovementCreate, UnitIn
from turnup.inventory.physical.services import apply_movement
from turnup.kernel.errors import Conflict, InvalidInput, NotFound

Progress = Callable[[int], None]
BATCH = 1000


@dataclass
class ImportResult:
    rows: int
    movements: int


def _reader(stream: TextIO, required: tuple[str, ...]) -> csv.DictReader[str]:
    reader = csv.DictReader(stream)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(
            f"CSV header: missing column(s) {', '.join(missing)}; expected {','.join(required)}"
        )
    return reader


def _known(
    session: Session, skus: Iterable[str], locations: Iterable[str]
) -> tuple[dict[str, Any], set[str]]:
    sku_rows = {s.code: s for s in session.scalars(select(Sku).where(Sku.code.in_(sorted(set(skus)))))}
    loc_codes = set(session.scalars(select(Location.code).where(Location.code.in_(sorted(set(locations))))))
    return sku_rows, loc_codes


def import_stock(
    session: Session, stream: TextIO, actor: str, progress: Progress | None = None
) -> ImportResult:
    rows = list(_reader(stream, ("sku", "location", "quantity")))
    skus, locs = _known(session, (r["sku"] for r in rows), (r["location"] for r in rows))
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for n, row in enumerate(rows, start=2):
        sku, loc, raw = (
            (row["sku"] or "").strip(),
            (row["location"] or "").strip(),
            (row["quantity"] or "").strip(),
        )
        if sku not in skus:
            raise NotFound(f"row {n}: unknown SKU {sku!r}")
        if skus[sku].serialised:
            raise InvalidInput(f"row {n}: SKU {sku!r} is serialised; import its serials instead")
        if loc not in locs:
            raise NotFound(f"row {n}: unknown location {loc!r}")
        try:
            quantity = int(raw)
        except ValueError:
            raise InvalidInput(f"row {n}: quantity {raw!r} is not a whole number") from None
        if quantity <= 0:
            raise InvalidInput(f"row {n}: quantity must be positive, got {quantity}")
        totals[(sku, loc)] += quantity
    try:
        for (sku, loc), quantity in sorted(totals.items()):
            apply_movement(
                session,
                MovementCreate(
                    kind="receipt", sku=sku, location=loc, quantity=quantity, reference="csv-import"
                ),
                actor,
                commit=False,
            )
            if progress:
                progress(1)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return ImportResult(rows=len(rows), movements=len(totals))


def import_serials(
    session: Session, stream: TextIO, actor: str, progress: Progress | None = None
) -> ImportResult:
    rows = list(_reader(stream, ("sku", "location", "serial")))
    skus, locs = _known(session, (r["sku"] for r in rows), (r["location"] for r in rows))
    groups: dict[tuple[str, str], list[UnitIn]] = defaultdict(list)
    seen: dict[tuple[str, str], int] = {}
    for n, row in enumerate(rows, start=2):
        sku, loc = (row["sku"] or "").strip(), (row["location"] or "").strip()
        if sku not in skus:
            raise NotFound(f"row {n}: unknown SKU {sku!r}")
        if not skus[sku].serialised:
            raise InvalidInput(f"row {n}: SKU {sku!r} is not serialised; import quantities instead")
        if loc not in locs:
            raise NotFound(f"row {n}: unknown location {loc!r}")
        try:
            unit = UnitIn(
                serial=(row.get("serial") or "").strip(),
                mac=(row.get("mac") or "").strip() or None,
                imei=(row.get("imei") or "").strip() or None,
            )
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise InvalidInput(f"row {n}: {'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
        if (sku, unit.serial) in seen:
            raise Conflict(
                f"row {n}: serial {unit.serial!r} repeats row {seen[(sku, unit.serial)]}",
                reason="Serial already used",
            )
        seen[(sku, unit.serial)] = n
        groups[(sku, loc)].append(unit)
    for sku, sku_row in skus.items():  # serials already in the database, reported by row
        serials = [s for (k, s) in seen if k == sku]
        for i in range(0, len(serials), 5000):
            for existing in session.scalars(
                select(StockUnit.serial).where(
                    StockUnit.sku_id == sku_row.id, StockUnit.serial.in_(serials[i : i + 5000])
                )
            ):
                raise Conflict(
                    f"row {seen[(sku, existing)]}: serial {existing!r} already used for SKU {sku!r}",
                    reason="Serial already used",
                )
    movements = 0
    try:
        for (sku, loc), units in sorted(groups.items()):
            for i in range(0, len(units), BATCH):
                chunk = units[i : i + BATCH]
                apply_movement(
                    session,
                    MovementCreate(
                        kind="receipt", sku=sku, location=loc, units=chunk, reference="csv-import"
                    ),
                    actor,
                    commit=False,
                )
                movements += 1
                if progress:
                    progress(len(chunk))
        session.commit()
    except Exception:
        session.rollback()
        raise
    return ImportResult(rows=len(rows), movements=movements)
