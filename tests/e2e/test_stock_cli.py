"""``turnup stock …`` on both databases: SKUs, locations, CSV imports (all or nothing), reservations,
availability, sweep, unit history, racks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.main import app
from turnup.inventory.physical.orm import Reservation, StockLevel, StockUnit
from turnup.kernel import clock
from turnup.kernel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _ok(*args: str) -> str:
    result = runner.invoke(app, ["stock", *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # Rich wraps long lines


def _fails(*args: str) -> str:
    result = runner.invoke(app, ["stock", *args])
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())


def _base() -> None:
    _ok("sku-add", "CABLE", "Patch cable")
    _ok("sku-add", "ONT", "Optical terminal", "--serialised")
    _ok("location-add", "WH1", "Leeds", "--type", "warehouse", "--region", "north")
    _ok("location-add", "WH2", "York", "--type", "warehouse", "--region", "north")


def test_csv_imports_with_progress_all_or_nothing(
    cli: None, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    _base()
    stock = tmp_path / "stock.csv"
    stock.write_text("sku,location,quantity\nCABLE,WH1,5\nCABLE,WH1,3\nCABLE,WH2,2\n")
    out = _ok("import-stock", str(stock))
    assert "Imported 3 row(s) as 2 receipt(s)" in out and "importing stock.csv" in out
    serials = tmp_path / "serials.csv"
    serials.write_text(
        "sku,location,serial,mac,imei\n"
        + "".join(f"ONT,WH1,S{i:04d},00:00:00:00:{i // 256:02X}:{i % 256:02X},\n" for i in range(1200))
    )
    assert "Imported 1200 row(s) as 2 receipt(s)" in _ok("import-serials", str(serials))
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,location,serial\nONT,WH1,NEW-1\nONT,WH1,S0005\n")
    assert "row 3: serial 'S0005' already used" in _fails("import-serials", str(bad))
    bad.write_text("sku,location,quantity\nCABLE,WH1,4\nCABLE,MARS,1\n")
    assert "row 3: unknown location 'MARS'" in _fails("import-stock", str(bad))
    bad.write_text("sku,location,quantity\nCABLE,WH1,-4\n")
    assert "row 2: quantity must be positive" in _fails("import-stock", str(bad))
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(StockUnit)) == 1200
        assert sorted(s.scalars(select(StockLevel.on_hand))) == [2, 8, 1200]


def test_reserve_check_sweep_and_history_from_the_cli(
    cli: None, session_factory: sessionmaker[Session]
) -> None:
    _base()
    _ok("move", "receipt", "CABLE", "--location", "WH1", "--quantity", "10")
    _ok("move", "receipt", "ONT", "--location", "WH1", "--serial", "A1", "--serial", "A2")
    out = _ok("reserve", "--line", "CABLE:7@region:north", "--line", "ONT#A1", "--minutes", "5")
    assert "lines[0] CABLE × 7: 7@WH1" in out
    refused = _fails("reserve", "--line", "CABLE:4@WH1", "--line", "ONT#A1")
    assert "Insufficient stock" in refused and "lines[0] CABLE at WH1: requested 4, available 3" in refused
    assert "requested 4" in refused and "- {'line': 1" in refused
    assert "NO" in _ok("check", "--line", "CABLE:4@WH1")
    clock.advance(timedelta(minutes=6))
    assert "yes" in _ok("check", "--line", "CABLE:10@WH1")
    assert "Released 2 expired line(s); 1 reservation(s)" in _ok("sweep")
    assert "Released 0 expired line(s)" in _ok("sweep")
    history = _ok("unit-history", "A1")
    assert "receipt" in history and "reserve" in history and "release" in history
    levels = _ok("levels", "--sku", "CABLE")
    assert "WH1" in levels
    with session_factory() as s:
        assert [r.status for r in s.scalars(select(Reservation))] == ["expired"]
    res = _ok("reserve", "--line", "CABLE:2@WH1")
    rid = res.split("Reservation ")[1].split()[0]
    committed = _ok("commit", rid, "ORD-9")
    assert "committed" in committed
    assert "is already committed" in _fails("release", rid)
    allocation = committed.split("allocation ")[1].split(" ")[0]
    assert "cancelled" in _ok("allocation-cancel", allocation)
    assert "not found" in _fails("allocation-cancel", "nope")
    assert "unknown SKU 'NOPE'" in _fails("reserve", "--line", "NOPE:1@WH1")
    assert "expected SKU:QTY@LOCATION" in _fails("reserve", "--line", "garbage")


def test_rack_commands(cli: None) -> None:
    _ok("location-add", "R9", "Rack 9", "--type", "rack", "--rack-units", "42", "--power-budget", "5000")
    out = _ok("rack-reserve", "R9", "10", "2000")
    assert "U1-U10" in out
    hold = out.split("Rack hold ")[1].split(":")[0]
    assert "U11-U42" in _ok("rack-reserve", "R9", "32", "3000")
    assert "Insufficient rack space" in _fails("rack-reserve", "R9", "1", "1")
    assert "held until" in _ok("rack-extend", hold, "--minutes", "90")
    assert "must be in the future" in _fails("rack-extend", hold, "--minutes", "-5")
    assert "released" in _ok("rack-release", hold)
    assert "U1-U10" in _ok("rack-reserve", "R9", "10", "2000")
