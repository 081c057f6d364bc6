"""Telephone numbers on both databases: import, validation, lifecycle with aging, search, pooling report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from turnup.inventory.logical import numbers
from turnup.inventory.logical.orm import NumberBlock, TelephoneNumber
from turnup.inventory.logical.schemas import NumberClassCreate, NumberImport, NumberSearch, NumberUpdate
from turnup.kernel import clock
from turnup.kernel.errors import Conflict, InvalidInput


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TelephoneNumber)) or 0


def _digits(found: list[TelephoneNumber]) -> list[str]:
    return [n.digits for n in found]


def test_import_national_range_and_thousands_block(session: Session) -> None:
    result = numbers.import_numbers(
        session,
        NumberImport(start="020 7946 0000", end="020 7946 0099", country="GB", numberClass="business"),
        "t",
    )
    assert (result["first"], result["last"], result["count"]) == ("+442079460000", "+442079460099", 100)
    numbers.import_numbers(session, NumberImport(thousandsBlock="+12125551"), "t")
    assert _count(session) == 1100
    blocks = {b.prefix: b.size for b in session.scalars(select(NumberBlock))}
    assert blocks == {"442079460": 100, "12125551": 1000}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (NumberImport(start="2079460000"), "start: '2079460000' is a national number; give country"),
        (NumberImport(start="+44 20 7946", country="GB"), "start: '\\+44 20 7946' is not a valid E.164"),
        (NumberImport(start="+442079460000", end="+4420794600000"), "end: .* not a valid|differ in length"),
        (NumberImport(start="+442079460010", end="+442079460000"), "end: \\+442079460000 is below start"),
        (NumberImport(start="+442079460000", numberClass="vip"), "numberClass: number class 'vip' not found"),
        (NumberImport(start="+12125550000", end="+12126550000"), "end: at most 100000 numbers"),
    ],
)
def test_invalid_imports_name_the_field_and_import_nothing(
    session: Session, data: NumberImport, message: str
) -> None:
    with pytest.raises((InvalidInput, Exception), match=message):
        numbers.import_numbers(session, data, "t")
    session.rollback()
    assert _count(session) == 0


def test_duplicate_import_is_409_and_imports_nothing(session: Session) -> None:
    numbers.import_numbers(session, NumberImport(start="+442079460005"), "t")
    with pytest.raises(Conflict, match="start: \\+442079460005 is already in the inventory"):
        numbers.import_numbers(session, NumberImport(start="+442079460000", end="+442079460009"), "t")
    session.rollback()
    assert _count(session) == 1


def test_aging_is_never_below_45_days_and_lifecycle_follows_the_rules(session: Session) -> None:
    clock.freeze(clock.now())
    with pytest.raises(ValidationError):
        NumberClassCreate(name="short", agingDays=30)
    numbers.create_number_class(session, NumberClassCreate(name="wholesale", agingDays=45), "t")
    numbers.import_numbers(session, NumberImport(start="+442079460100", numberClass="wholesale"), "t")
    n = session.scalars(select(TelephoneNumber)).one()
    with pytest.raises(InvalidInput, match="serviceId: required"):
        numbers.update_number(session, n.id, NumberUpdate(status="assigned"), "t")
    session.rollback()
    numbers.update_number(session, n.id, NumberUpdate(status="assigned", serviceId="svc-1"), "t")
    numbers.update_number(session, n.id, NumberUpdate(status="aging"), "t")
    assert n.until == clock.now() + timedelta(days=45)
    clock.advance(timedelta(days=44))
    with pytest.raises(Conflict, match="status: a aging number cannot become assigned"):
        numbers.update_number(session, n.id, NumberUpdate(status="assigned", serviceId="x"), "t")
    session.rollback()
    clock.advance(timedelta(days=1, seconds=1))
    numbers.sweep(session)
    assert _digits(numbers.search(session, NumberSearch(country="GB"))) == ["442079460100"]
    # port-in, port-out, disconnect
    numbers.import_numbers(session, NumberImport(start="+442079460200", status="port_in_pending"), "t")
    ported = session.scalar(select(TelephoneNumber).where(TelephoneNumber.digits == "442079460200"))
    assert ported is not None and ported.state == "port_in_pending"
    numbers.update_number(session, ported.id, NumberUpdate(status="assigned", serviceId="svc-2"), "t")
    numbers.update_number(session, ported.id, NumberUpdate(status="ported_out"), "t")
    with pytest.raises(Conflict, match="a ported_out number cannot become available"):
        numbers.update_number(session, ported.id, NumberUpdate(status="available"), "t")


def test_search_by_country_area_block_vanity_repeats_and_golden(session: Session) -> None:
    numbers.import_numbers(session, NumberImport(start="+12125550000", end="+12125559999"), "t")
    numbers.import_numbers(session, NumberImport(start="+442079460000", end="+442079460999"), "t")
    assert len(numbers.search(session, NumberSearch(country="US", limit=1000))) == 1000
    assert len(numbers.search(session, NumberSearch(country="GB", area="020", limit=5))) == 5
    # vanity: 212-555-CAKE -> 2253
    assert _digits(numbers.search(session, NumberSearch(pattern="*CAKE"))) == ["12125552253"]
    assert _digits(numbers.search(session, NumberSearch(country="US", pattern="212555?0?0", limit=3))) == [
        "12125550000",
        "12125550010",
        "12125550020",
    ]
    repeats = numbers.search(session, NumberSearch(country="GB", minRepeat=4, limit=100))
    assert _digits(repeats) == ["442079460000"]
    golden = numbers.search(session, NumberSearch(country="GB", golden=True, limit=100))
    assert "442079460123" in _digits(golden) and "442079460937" not in _digits(golden)
    with pytest.raises(InvalidInput, match="country: required unless the pattern starts with"):
        numbers.search(session, NumberSearch(pattern="2125*"))
    block = session.scalar(select(NumberBlock.id).where(NumberBlock.prefix == "12125551"))
    assert len(numbers.search(session, NumberSearch(blockId=block, limit=1000))) == 1000


def test_pooling_report_lists_blocks_under_ten_percent_used(session: Session) -> None:
    numbers.import_numbers(session, NumberImport(start="+12125550000", end="+12125551999"), "t")
    busy = session.scalars(select(TelephoneNumber).where(TelephoneNumber.digits < "12125550100")).all()
    for n in busy:  # 100 of block 2125550 = 10%: not donatable
        numbers.update_number(session, n.id, NumberUpdate(status="assigned", serviceId="s"), "t")
    few = session.scalars(select(TelephoneNumber).where(TelephoneNumber.digits.like("1212555100_"))).all()
    for n in few:
        numbers.update_number(session, n.id, NumberUpdate(status="assigned", serviceId="s"), "t")
    report = numbers.pooling_report(session)
    assert [(b["prefix"], b["used"]) for b in report] == [("+12125551", 10)]
