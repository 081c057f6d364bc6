"""``turnup usage import FILE``: CSV and JSON files with a progress bar, chunked, re-runnable, rejected
lines listed (exit code 1). Both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.e2e.test_usage_api import at, csv_file, make_service, record, usage_rows
from tests.e2e.test_usage_api import voice as voice  # the fixture
from turnup import usage
from turnup.cli.main import app
from turnup.kernel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_import_files_in_chunks_again_and_with_bad_lines(
    cli: None,
    client: TestClient,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    voice: dict[str, str],
) -> None:
    service = make_service(session_factory, voice["customer"], voice["offering"])
    minutes = tmp_path / "march.csv"
    minutes.write_text(csv_file([(f"c-{d:02d}", at(d), "minute", "150", service) for d in range(11, 21)]))
    # when a 10-line file is imported 3 records per transaction
    result = runner.invoke(app, ["usage", "import", str(minutes), "--chunk", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert (report["received"], report["accepted"], report["rated"], report["rejectedCount"]) == (
        10,
        10,
        10,
        0,
    )
    # then the tiers ran across the chunks: 1500 minutes = 1000 @ 0.02 + 500 @ 0.015
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    with session_factory() as s:
        assert sum(u.amount for u in usage.unbilled_rated_usage(s, *march)) == Decimal("27.50")
    # when the same file is imported again: nothing new
    again = runner.invoke(app, ["usage", "import", str(minutes)])
    assert again.exit_code == 0, again.output
    table = " ".join(again.output.replace("│", " ").replace("┃", " ").split())
    assert "importing march.csv" in table
    assert "received accepted rated review duplicates rejected" in table
    assert "10 0 0 0 10 0" in table
    assert usage_rows(session_factory) == 10
    # when a JSON file has a bad record: it is listed, the good one is kept, exit code 1
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps([record("c-30", service, at(30), 10), record("c-31", service, at(31), -1)]))
    bad = runner.invoke(app, ["usage", "import", str(extra)])
    assert bad.exit_code == 1, bad.output
    assert "line 2 (c-31): usageCharacteristic[0].value: quantity cannot be negative" in " ".join(
        bad.output.split()
    )
    assert usage_rows(session_factory) == 11
