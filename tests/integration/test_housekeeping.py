"""Housekeeping runs the expiry sweeps: expired stock holds are released (ledger ``release`` rows,
``reserved`` back, reservation ``expired``), expired quotes are cancelled with their holds released, aged
numbers become available. One failing sweep does not stop the others; concurrent runs on PostgreSQL release
each expired line exactly once; ``Housekeeper.run_forever`` sweeps on its own and stops when asked;
``turnup housekeeping run`` prints what each sweep did. Runs on SQLite and PostgreSQL (the lock tests on
PostgreSQL only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs
from typer.testing import CliRunner

from tests.e2e.test_quote_to_order import (
    QUOTES,
    customer_and_site,
    logical_state,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
    stock_status,
)
from turnup.cli.main import app as cli_app
from turnup.inventory.logical import numbers
from turnup.inventory.logical.orm import TelephoneNumber
from turnup.inventory.logical.schemas import NumberImport, NumberUpdate
from turnup.inventory.physical import reservations as R
from turnup.inventory.physical import services as S
from turnup.inventory.physical.orm import (
    Location,
    Reservation,
    ReservationLine,
    Sku,
    StockLevel,
    StockMovement,
)
from turnup.inventory.physical.schemas import LocationCreate, MovementCreate, ReservationCreate, SkuCreate
from turnup.kernel import audit, clock, housekeeping
from turnup.kernel.audit import AuditEntry
from turnup.kernel.settings import Settings, get_settings
from turnup.quoting.orm import Quote

ACTOR = "system:housekeeping"
NOTHING = {
    "consumer_inbox.prune": {"pruned": 0},
    "quotes": {"expired": []},
    "stock": {"lines_released": 0, "reservations_expired": 0, "rack_holds_expired": 0},
    "numbers": {"aging_ended": 0, "reservations_ended": 0},
    "idempotency": {"keys_expired": 0},
    "login-counters": {"login_counters_pruned": 0},
}


# --- helpers ------------------------------------------------------------------------------------------------


def _seed_stock(factory: sessionmaker[Session], locations: int = 1, on_hand: int = 20) -> None:
    with factory() as s:
        S.create_sku(s, SkuCreate(code="CABLE", name="Cable"), "t")
        for i in range(1, locations + 1):
            S.create_location(s, LocationCreate(code=f"WH{i}", name=f"WH{i}", locationType="warehouse"), "t")
            S.apply_movement(
                s, MovementCreate(kind="receipt", sku="CABLE", location=f"WH{i}", quantity=on_hand), "t"
            )


def _hold(factory: sessionmaker[Session], quantity: int, ttl: timedelta, location: str = "WH1") -> str:
    with factory() as s:
        view = R.create_reservation(
            s,
            ReservationCreate(
                lines=[{"sku": "CABLE", "quantity": quantity, "location": location}],
                expiresAt=clock.now() + ttl,
            ),
            "t",
        )
        return view.id


def _aging_number(factory: sessionmaker[Session]) -> str:
    """One number that has been in service and is now aging (residential: 90 days), one never used."""
    with factory() as s:
        numbers.import_numbers(s, NumberImport(start="+442079460100", end="+442079460101"), "t")
        n = s.scalars(select(TelephoneNumber).where(TelephoneNumber.digits == "442079460100")).one()
        numbers.update_number(s, n.id, NumberUpdate(status="assigned", serviceId="svc-1"), "t")
        numbers.update_number(s, n.id, NumberUpdate(status="aging"), "t")
        return n.id


def _results(report: dict[str, Any]) -> dict[str, Any]:
    assert all(entry["status"] == "ok" for entry in report.values()), report
    return {name: entry["result"] for name, entry in report.items()}


def _releases(s: Session, reservation_id: str) -> list[tuple[int, str | None, str]]:
    return [
        (m.reserved_delta, m.reason, m.actor)
        for m in s.scalars(
            select(StockMovement)
            .where(StockMovement.reservation_id == reservation_id, StockMovement.kind == "release")
            .order_by(StockMovement.id)
        )
    ]


def _reserved(s: Session, location: str = "WH1") -> int:
    return (
        s.scalar(
            select(StockLevel.reserved)
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(Sku.code == "CABLE", StockLevel.location_id == _location_id(s, location))
        )
        or 0
    )


def _location_id(s: Session, code: str) -> str:
    return s.scalars(select(Location.id).where(Location.code == code)).one()


# --- run_once -----------------------------------------------------------------------------------------------


def test_run_once_releases_expired_stock_holds_and_ends_number_aging(
    session_factory: sessionmaker[Session],
) -> None:
    # given a hold that expires in an hour, one that lives for a year, and a number aging for 90 days
    _seed_stock(session_factory)
    expiring = _hold(session_factory, 7, timedelta(hours=1))
    live = _hold(session_factory, 3, timedelta(days=365))
    number_id = _aging_number(session_factory)
    with session_factory() as s:
        assert _reserved(s) == 10

    # when the clock passes the expiry and the aging, and housekeeping runs once
    clock.advance(timedelta(days=91))
    report = housekeeping.run_once(session_factory)

    # then each sweep reports what it did
    assert list(report) == [
        "consumer_inbox.prune",
        "quotes",
        "stock",
        "numbers",
        "idempotency",
        "login-counters",
    ]
    assert _results(report) == {
        "consumer_inbox.prune": {"pruned": 0},  # nothing handled yet: no consumer worker runs here
        "quotes": {"expired": []},
        "stock": {"lines_released": 1, "reservations_expired": 1, "rack_holds_expired": 0},
        "numbers": {"aging_ended": 1, "reservations_ended": 0},
        "idempotency": {"keys_expired": 0},
        "login-counters": {"login_counters_pruned": 0},
    }
    with session_factory() as s:
        # the expired hold is released once in the ledger, by housekeeping; the live one is untouched
        assert _releases(s, expiring) == [(-7, "expired", ACTOR)]
        assert _releases(s, live) == []
        assert _reserved(s) == 3
        assert s.get(Reservation, expiring).status == "expired"
        assert s.get(Reservation, live).status == "held"
        assert [
            ln.status
            for ln in s.scalars(select(ReservationLine).where(ReservationLine.reservation_id == expiring))
        ] == ["expired"]
        assert s.scalars(
            select(AuditEntry.actor).where(
                AuditEntry.resource_id == expiring, AuditEntry.action == "stock.reservation.expire"
            )
        ).all() == [ACTOR]
        number = s.get(TelephoneNumber, number_id)
        assert (number.state, number.until, number.service_id) == ("available", None, None)

    # and a second run finds nothing left to do
    assert _results(housekeeping.run_once(session_factory)) == NOTHING
    with session_factory() as s:
        assert _releases(s, expiring) == [(-7, "expired", ACTOR)]
        assert _reserved(s) == 3


def test_run_once_cancels_an_expired_quote_and_releases_its_holds(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # given a priced quote valid for two days, holding a router, a handset, IP space, a VLAN and a number
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client)
    end = (clock.now() + timedelta(days=2)).isoformat()
    created = post(
        client,
        QUOTES,
        quote_body(customer_id, site_id, offerings["Fibre + Voice"], validFor={"endDateTime": end}),
    )
    quote = post(client, f"{QUOTES}/{created['id']}/price", {}, 200)
    assert quote["state"] == "approved" and quote["holds"]["state"] == "held"
    stock_id = quote["holds"]["stockReservationId"]
    logical_id = quote["holds"]["resourceReservationId"]
    with session_factory() as s:
        reserved_before = sum(s.scalars(select(StockLevel.reserved)))
        held_numbers = s.scalars(
            select(TelephoneNumber.id).where(TelephoneNumber.reservation_id == logical_id)
        ).all()
        stock_lines = s.scalars(
            select(ReservationLine.quantity).where(ReservationLine.reservation_id == stock_id)
        ).all()
    assert reserved_before == 2 and stock_lines == [1, 1] and len(held_numbers) == 1

    # when the validity has passed and housekeeping runs
    clock.advance(timedelta(days=3))
    report = housekeeping.run_once(session_factory)

    # then the quote is cancelled as expired and every hold it had is released
    assert _results(report) == {**NOTHING, "quotes": {"expired": [quote["id"]]}}
    with session_factory() as s:
        q = s.get(Quote, quote["id"])
        assert (
            q.state == "cancelled"
            and q.state_reason.startswith("expired at ")
            and q.holds_state == "released"
        )
        assert sum(s.scalars(select(StockLevel.reserved))) == 0
        assert [(d, r) for d, r, _ in _releases(s, stock_id)] == [(-1, "expired"), (-1, "expired")]
        number = s.get(TelephoneNumber, held_numbers[0])
        assert (number.state, number.reservation_id) == ("available", None)
    assert stock_status(session_factory, stock_id) == "expired"
    assert logical_state(session_factory, logical_id) == "released"
    assert client.get(f"{QUOTES}/{quote['id']}").json()["state"] == "cancelled"

    # and nothing is released twice
    assert _results(housekeeping.run_once(session_factory)) == NOTHING
    with session_factory() as s:
        assert len(_releases(s, stock_id)) == 2


def test_a_failing_sweep_is_reported_and_logged_and_the_others_still_run(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_stock(session_factory)
    expiring = _hold(session_factory, 5, timedelta(minutes=10))
    number_id = _aging_number(session_factory)

    def boom(session: Session) -> Any:
        audit.record(
            session, actor=ACTOR, action="housekeeping.half-done", resource_type="test", resource_id="x"
        )
        session.flush()
        raise RuntimeError("boom")

    # given the first sweep of the registry fails half-way
    monkeypatch.setitem(housekeeping.SWEEPS, "quotes", boom)
    clock.advance(timedelta(days=91))

    with capture_logs() as logs:
        report = housekeeping.run_once(session_factory)

    # then it is reported and logged, its writes are rolled back, and the stock and number sweeps still ran
    assert report["quotes"] == {"status": "failed", "error": "RuntimeError: boom"}
    assert housekeeping.failed(report) == ["quotes"]
    assert report["stock"]["status"] == "ok" and report["stock"]["result"]["lines_released"] == 1
    assert report["numbers"]["status"] == "ok" and report["numbers"]["result"]["aging_ended"] == 1
    failures = [e for e in logs if e["event"] == "housekeeping_sweep_failed"]
    assert [(e["sweep"], e["log_level"]) for e in failures] == [("quotes", "error")]
    assert "exc_info" in failures[0]
    with session_factory() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "housekeeping.half-done")
            )
            == 0
        )
        assert s.get(Reservation, expiring).status == "expired"
        assert _reserved(s) == 0
        assert s.get(TelephoneNumber, number_id).state == "available"


# --- PostgreSQL: several processes ------------------------------------------------------------------------


def _postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "advisory locks between housekeeping processes are PostgreSQL-only; SQLite serialises "
            "writers and takes no lock"
        )


def test_concurrent_runs_release_each_expired_line_exactly_once(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    _postgres_only(engine)
    # given 60 expired one-line holds over 6 levels and 6 live ones
    _seed_stock(session_factory, locations=6, on_hand=100)
    expired: dict[str, tuple[str, int]] = {}
    for i in range(60):
        location, quantity = f"WH{i % 6 + 1}", i % 3 + 1
        expired[_hold(session_factory, quantity, timedelta(minutes=5), location)] = (location, quantity)
    live = {_hold(session_factory, 2, timedelta(days=1), f"WH{i + 1}"): f"WH{i + 1}" for i in range(6)}
    clock.advance(timedelta(minutes=10))

    # when two housekeepers run at the same moment
    barrier = threading.Barrier(2)
    reports: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(30)
            reports.append(housekeeping.run_once(session_factory))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads) and errors == [] and len(reports) == 2

    # then no sweep failed, and the stock sweep ran in one or both, releasing each line once between them
    for report in reports:
        assert housekeeping.failed(report) == []
        assert report["stock"]["status"] in ("ok", "skipped")
        if report["stock"]["status"] == "skipped":
            assert report["stock"] == {"status": "skipped", "skipped": "running elsewhere"}
    ran = [r["stock"]["result"] for r in reports if r["stock"]["status"] == "ok"]
    assert ran, reports
    assert sum(r["lines_released"] for r in ran) == 60
    assert sum(r["reservations_expired"] for r in ran) == 60
    with session_factory() as s:
        for reservation_id, (_, quantity) in expired.items():
            assert [d for d, _, _ in _releases(s, reservation_id)] == [-quantity], reservation_id
            assert s.get(Reservation, reservation_id).status == "expired"
        for reservation_id in live:
            assert _releases(s, reservation_id) == [] and s.get(Reservation, reservation_id).status == "held"
        levels = {loc: _reserved(s, loc) for loc in sorted(set(live.values()))}
        assert levels == {loc: 2 for loc in levels}  # only the live holds remain reserved, never below zero
        assert (
            s.scalar(select(func.count()).select_from(StockMovement).where(StockMovement.kind == "release"))
            == 60
        )


def test_a_sweep_locked_by_another_process_is_skipped_and_the_locks_are_released(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    _postgres_only(engine)
    _seed_stock(session_factory)
    expiring = _hold(session_factory, 4, timedelta(minutes=5))
    number_id = _aging_number(session_factory)
    clock.advance(timedelta(days=91))
    key = housekeeping.lock_key("stock")
    assert housekeeping.lock_key("stock") == key != housekeeping.lock_key("numbers")

    # given another process is running the stock sweep (it holds the stock sweep's advisory lock)
    with engine.connect() as other:
        assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one() is True
        other.commit()
        report = housekeeping.run_once(session_factory)
        # then this run skips the stock sweep, and still runs the others
        assert report["stock"] == {"status": "skipped", "skipped": "running elsewhere"}
        assert report["numbers"]["status"] == "ok" and report["numbers"]["result"]["aging_ended"] == 1
        with session_factory() as s:
            assert s.get(Reservation, expiring).status == "held" and _reserved(s) == 4
            assert s.get(TelephoneNumber, number_id).state == "available"
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        other.commit()

    # when that process is done, the next run sweeps the stock
    report = housekeeping.run_once(session_factory)
    assert report["stock"]["status"] == "ok" and report["stock"]["result"]["lines_released"] == 1
    with session_factory() as s:
        assert s.get(Reservation, expiring).status == "expired" and _reserved(s) == 0
    # and housekeeping left none of its locks behind
    with engine.connect() as probe:
        for name in housekeeping.SWEEPS:
            k = housekeeping.lock_key(name)
            assert probe.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": k}).scalar_one() is True, name
            probe.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": k})
        probe.commit()


# --- the periodic job -------------------------------------------------------------------------------------


def _wait_for(predicate: Any, deadline: float = 30.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_housekeeper_sweeps_on_its_own_and_stops_when_asked(session_factory: sessionmaker[Session]) -> None:
    _seed_stock(session_factory)
    first = _hold(session_factory, 6, timedelta(minutes=5))
    clock.advance(timedelta(minutes=10))

    def status(reservation_id: str) -> str:
        with session_factory() as s:
            return s.get(Reservation, reservation_id).status

    stop = threading.Event()
    keeper = housekeeping.Housekeeper(session_factory, interval=0.05)
    thread = threading.Thread(target=keeper.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        # the expired hold is released without anyone calling run_once
        assert _wait_for(lambda: status(first) == "expired")
        # and a hold that expires while it runs is released on a later pass
        second = _hold(session_factory, 2, timedelta(minutes=5))
        assert status(second) == "held"
        clock.advance(timedelta(minutes=10))
        assert _wait_for(lambda: status(second) == "expired")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    with session_factory() as s:
        assert _reserved(s) == 0
        assert [d for d, _, _ in _releases(s, first)] == [-6] and [d for d, _, _ in _releases(s, second)] == [
            -2
        ]


def test_interval_comes_from_settings_and_zero_disables_housekeeping(
    db_url: str, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNUP_SWEEP_INTERVAL_SECONDS", "0")
    assert Settings().sweep_interval_seconds == 0
    monkeypatch.delenv("TURNUP_SWEEP_INTERVAL_SECONDS")
    assert Settings().sweep_interval_seconds == 60.0
    _seed_stock(session_factory)
    expiring = _hold(session_factory, 6, timedelta(minutes=5))
    clock.advance(timedelta(minutes=10))

    # a disabled housekeeper returns at once, sweeping nothing, and no thread is started for one
    off = Settings(database_url=db_url, sweep_interval_seconds=0)
    keeper = housekeeping.Housekeeper(session_factory, off)
    assert keeper.interval == 0
    keeper.run_forever(threading.Event())
    assert housekeeping.start_housekeeper(threading.Event(), off) is None
    with session_factory() as s:
        assert s.get(Reservation, expiring).status == "held" and _reserved(s) == 6

    # the thread the serve/orchestrator commands start sweeps, and stops with their stop event
    stop = threading.Event()
    thread = housekeeping.start_housekeeper(stop, Settings(database_url=db_url, sweep_interval_seconds=0.05))
    assert thread is not None and thread.name == "housekeeping"
    try:

        def swept() -> bool:
            with session_factory() as s:
                return s.get(Reservation, expiring).status == "expired"

        assert _wait_for(swept)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


# --- CLI --------------------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_housekeeping_run_prints_each_sweep_and_fails_when_one_fails(
    cli: None, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_stock(session_factory)
    expiring = _hold(session_factory, 3, timedelta(minutes=5))
    clock.advance(timedelta(minutes=10))

    result = runner.invoke(cli_app, ["housekeeping", "run"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    for expected in (
        "sweep",
        "status",
        "details",
        "quotes",
        "stock",
        "numbers",
        "expired=0",
        "lines_released=1;",
        "reservations_expired=1;",
        "rack_holds_expired=0",
        "aging_ended=0;",
        "consumer_inbox.prune",
        "pruned=0",
        "idempotency",
        "keys_expired=0",
    ):
        assert expected in out, (expected, result.output)
    assert out.count(" ok ") == 6
    with session_factory() as s:
        assert s.get(Reservation, expiring).status == "expired"
        assert _releases(s, expiring) == [(-3, "expired", ACTOR)]

    def boom(session: Session) -> Any:
        raise RuntimeError("numbers are down")

    monkeypatch.setitem(housekeeping.SWEEPS, "numbers", boom)
    result = runner.invoke(cli_app, ["housekeeping", "run"])
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "failed" in out and "RuntimeError: numbers are down" in out and "lines_released=0;" in out
