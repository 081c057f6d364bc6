"""``turnup ip|numbers|pools`` against both databases: bulk import, allocation, errors that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.cli.common import console
from turnup.cli.main import app
from turnup.inventory.logical.orm import LogicalBlock, TelephoneNumber
from turnup.kernel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setattr(console, "_width", 200)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_ip_commands(cli: None, session_factory: sessionmaker[Session]) -> None:
    _run("ip", "aggregate", "10.0.0.0/8", "--name", "ten")
    out = _run("ip", "pool", "10.1.0.0/16", "--name", "wan", "--quarantine-days", "30")
    pool_id = out.split("id=")[1].split()[0]
    out = _run("ip", "allocate", pool_id, "--length", "29", "--count", "3")
    assert "10.1.0.0/29" in out and "10.1.0.16/29" in out
    assert "0.0%" in _run("ip", "util", pool_id) or "utiliz" not in out
    bad = _run("ip", "allocate", pool_id, "--length", "7", code=1)
    assert "prefixLength: /7 is outside pool" in bad
    _run("ip", "pool", "10.1.0.1/16", "--name", "x", code=1)
    with session_factory() as s:
        assert (
            s.scalar(select(func.count()).select_from(LogicalBlock).where(LogicalBlock.state == "allocated"))
            == 3
        )


def test_numbers_bulk_import_search_and_pools(
    cli: None, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    ranges = tmp_path / "ranges.csv"
    ranges.write_text("# start,end\n+12125550000,+12125550999\n+12125551000,+12125551099\n")
    assert "Imported 1100 numbers" in _run("numbers", "import", "--file", str(ranges))
    out = _run("numbers", "search", "--country", "US", "--pattern", "*0CAB", "--limit", "5")
    assert "+12125550222" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("+12125552000,+12125552009\n+1212,+1213\n")
    assert "line 2: start: '+1212' is not a valid E.164" in _run(
        "numbers", "import", "--file", str(bad), code=1
    )
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(TelephoneNumber)) == 1100
    out = _run("pools", "vlan", "100", "199", "--name", "metro")
    vlan_pool = out.split("id=")[1].split()[0]
    assert "100" in _run("pools", "allocate", vlan_pool)
    assert "start: 0 is invalid" in _run("pools", "vlan", "0", "10", "--name", "bad", code=1)
    out = _run("pools", "asn", "4200000000", "4294967294", "--name", "private")
    asn_pool = out.split("id=")[1].split()[0]
    assert "4200000000" in _run("pools", "reserve", "--pool", asn_pool, "--pool", vlan_pool)
