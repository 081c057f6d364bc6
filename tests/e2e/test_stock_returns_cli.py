"""``turnup stock returns`` / ``receive-return`` / ``unit-history`` on both databases: a unit out at a
customer site comes back through its return expectation, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.main import app
from turnup.inventory.physical import fulfilment
from turnup.inventory.physical import services as physical
from turnup.inventory.physical.orm import Location, ReturnExpectation, StockLevel, StockUnit
from turnup.inventory.physical.schemas import LocationCreate, MovementCreate, SkuCreate
from turnup.kernel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["stock", *args])
    assert result.exit_code == code, result.output
    return " ".join(result.output.replace("│", " ").replace("┃", " ").split())  # table cells as words


def _unit_out_at_customer(factory: sessionmaker[Session]) -> str:
    """ONT-1 shipped from WH1 and installed at customer site CS1; a return expected for it (no origin
    known: the request named the serial, not the allocation). Returns the expectation id."""
    with factory() as s:
        physical.create_sku(s, SkuCreate(code="ONT", name="Optical terminal", serialised=True), "t")
        physical.create_location(s, LocationCreate(code="WH1", name="Leeds", locationType="warehouse"), "t")
        physical.create_location(
            s, LocationCreate(code="CS1", name="Acme", locationType="customer_site"), "t"
        )
        for movement in (
            MovementCreate(kind="receipt", sku="ONT", location="WH1", units=[{"serial": "ONT-1"}]),
            MovementCreate(kind="ship", sku="ONT", location="WH1", serials=["ONT-1"]),
            MovementCreate(kind="install", sku="ONT", toLocation="CS1", serials=["ONT-1"]),
        ):
            physical.apply_movement(s, movement, "t")
        expectation = fulfilment.expect_return(
            s,
            source_event_id="evt-1",
            reference="svc-1-return",
            service_id="svc-1",
            customer_id=None,
            order_id=None,
            units=[{"serial": "ONT-1", "sku": "ONT"}, {"serial": "NOPE", "sku": "ONT"}],
            actor="t",
        )
        assert expectation is not None
        s.commit()
        # the same request again creates nothing
        again = fulfilment.expect_return(
            s,
            source_event_id="evt-1",
            reference="svc-1-return",
            service_id="svc-1",
            customer_id=None,
            order_id=None,
            units=[{"serial": "ONT-1", "sku": "ONT"}],
            actor="t",
        )
        assert again is None
        return expectation.id


def test_a_return_is_listed_received_once_and_shows_in_the_unit_history(
    cli: None, session_factory: sessionmaker[Session]
) -> None:
    return_id = _unit_out_at_customer(session_factory)
    listed = _run("returns")
    assert return_id in listed and "open svc-1 CS1" in listed and "ONT#ONT-1" in listed
    # no expected location known: the operator must name one (400, nothing changed)
    assert "location: this return has no expected stock location" in _run("receive-return", return_id, code=1)
    # a place that holds no stock is refused too
    assert "'CS1' is a customer_site" in _run("receive-return", return_id, "--location", "CS1", code=1)
    with session_factory() as s:
        assert s.scalars(select(ReturnExpectation.status)).all() == ["open"]
    out = _run("receive-return", return_id, "--location", "WH1")
    assert out == f"Return {return_id} received: ONT#ONT-1 (returned)"
    with session_factory() as s:
        unit = s.scalars(select(StockUnit)).one()
        codes = {i: c for i, c in s.execute(select(Location.id, Location.code))}
        levels = {codes[lv.location_id]: (lv.on_hand, lv.quarantined) for lv in s.scalars(select(StockLevel))}
        # the unit left the customer site's stock (installed there: on hand 1) into quarantine at WH1
        assert (unit.state, levels) == ("returned", {"WH1": (0, 1), "CS1": (0, 0)})
    assert "received" in _run("returns", "--status", "received")
    assert "ONT#ONT-1" not in _run("returns")
    # a second receipt is a 409
    assert "already closed" in _run("receive-return", return_id, "--location", "WH1", code=1)
    history = _run("unit-history", "ONT-1")
    assert [k for k in ("receipt", "ship", "install", "return") if k in history] == [
        "receipt",
        "ship",
        "install",
        "return",
    ]
    assert "CS1" in history and "WH1" in history
