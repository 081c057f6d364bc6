"""Usage import and rating: N records over S services, through ``turnup.usage.import_usage`` (validation,
de-duplication, service and activity checks, insert, tiered re-rating per service and month, audit), against
a baseline in the same run: a plain ``executemany`` INSERT of the same rows into a copy of the table.

Records are in random order (not by date), one calendar month, ``--chunk`` records per transaction (as the
CLI does). The run checks the result: every record rated, and each service's month summing to the tiered
charge of its total minutes. Each run creates and drops its own database (PostgreSQL ``turnup_bench_<random>``
or a temporary SQLite file).

    nice -n 10 .venv/bin/python bench/usage_import.py --smoke            # 5k records, 50 services
    nice -n 10 .venv/bin/python bench/usage_import.py --records 200000    # figures in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sqlalchemy import Engine, MetaData, func, insert, select, text

import turnup.models
from turnup import accounts, catalog, service_inventory, usage
from turnup.kernel import clock
from turnup.kernel.consumers import ConsumerWorker
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.ids import new_id
from turnup.usage.orm import UsageRecord
from turnup.wiring import wire

wire()  # every consumer registered: publish refuses to run in an unwired process

PG = os.environ.get("TURNUP_BENCH_PG", "host=127.0.0.1 port=5432 user=postgres")
DEMO_CATALOG = Path(__file__).resolve().parent.parent / "src" / "turnup" / "demo" / "catalog.yaml"
MONTH = datetime(2026, 3, 1, tzinfo=UTC)


def create_database(kind: str) -> tuple[str, Any]:
    if kind == "sqlite":
        path = Path(tempfile.mkdtemp()) / "bench.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    name = f"turnup_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = dict(p.split("=", 1) for p in PG.split())
    url = (
        f"postgresql+psycopg://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
        f"{parts.get('port', '5432')}/{name}"
    )

    def drop() -> None:
        with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


def setup(engine: Engine, services: int) -> list[str]:
    """Schema, the demo catalog, one customer and ``services`` Hosted Voice Seat services active from the
    month's start (their activation events handled by ``usage.service_periods``)."""
    turnup.models.metadata.create_all(engine)
    factory = make_sessionmaker(engine)
    with factory() as s:
        catalog.publish_catalog(s, catalog.load_catalog_file(DEMO_CATALOG), "bench")
    with factory() as s:
        offering = next(
            o
            for o in catalog.list_offerings(s, search="Hosted Voice Seat")
            if o["name"] == "Hosted Voice Seat"
        )
        customer = accounts.create_customer(s, accounts.CustomerCreate(name="Bench Ltd"), "bench")
        ids = [new_id() for _ in range(services)]
        clock.freeze(MONTH - timedelta(days=1))
        for sid in ids:
            service_inventory.design_service(
                s,
                service_id=sid,
                name="voice",
                customer_id=customer.id,
                offering_id=offering["id"],
                offering_name="Hosted Voice Seat",
                specification_id=None,
                adapter="simulator",
                characteristics={},
                order_id="bench",
                order_item_id="bench",
            )
        s.flush()
        for sid in ids:
            service_inventory.change_state(
                s,
                service_inventory.get_service(s, sid),
                "active",
                order_id="bench",
                order_item_id="bench",
                action="add",
            )
        s.commit()
        clock.freeze(None)
    ConsumerWorker(factory).drain()
    return ids


def make_records(n: int, services: list[str], seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        when = MONTH + timedelta(seconds=rng.randrange(28 * 86400))
        out.append(
            {
                "id": f"cdr-{i:09d}",
                "usageDate": when.isoformat(),
                "usageType": "minute",
                "relatedService": {"id": rng.choice(services)},
                "usageCharacteristic": [{"name": "quantity", "value": str(rng.randrange(1, 120))}],
            }
        )
    return out


def run_turnup(engine: Engine, records: list[dict[str, Any]], chunk: int) -> float:
    factory = make_sessionmaker(engine)
    started = time.perf_counter()
    with factory() as s:
        for i in range(0, len(records), chunk):
            parsed = [usage.parse_one(i + j + 1, doc) for j, doc in enumerate(records[i : i + chunk])]
            report = usage.import_usage(s, parsed, source="bench", actor="bench")
            assert not report.rejected, report.rejected[:3]
    return time.perf_counter() - started


def run_baseline(engine: Engine, records: list[dict[str, Any]], chunk: int) -> float:
    """The same rows (the columns Turnup writes on insert) by a plain executemany INSERT, same chunks."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("CREATE TABLE bench_usage_baseline (LIKE usage_record INCLUDING ALL)"))
        else:
            ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'usage_record'")).scalar_one()
            conn.execute(text(ddl.replace("usage_record", "bench_usage_baseline", 1)))
    table = turnup.models.metadata.tables["usage_record"].to_metadata(MetaData(), name="bench_usage_baseline")
    now = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(0, len(records), chunk):
        rows = []
        for doc in records[i : i + chunk]:
            when = datetime.fromisoformat(doc["usageDate"])
            rows.append(
                {
                    "id": doc["id"],
                    "content_hash": "0" * 64,
                    "usage_date": when,
                    "period": when.strftime("%Y-%m"),
                    "usage_type": doc["usageType"],
                    "quantity": Decimal(doc["usageCharacteristic"][0]["value"]),
                    "service_id": doc["relatedService"]["id"],
                    "status": "rated",
                    "source": "bench",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(table), rows)
    return time.perf_counter() - started


def check(engine: Engine, records: list[dict[str, Any]]) -> None:
    """Every record rated; each service's month sums to the tiered charge of its total."""
    factory = make_sessionmaker(engine)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for doc in records:
        totals[doc["relatedService"]["id"]] += Decimal(doc["usageCharacteristic"][0]["value"])
    tiers = (
        catalog.TierSpec(Decimal(0), Decimal(1000), Decimal("0.02")),
        catalog.TierSpec(Decimal(1000), Decimal(10000), Decimal("0.015")),
        catalog.TierSpec(Decimal(10000), None, Decimal("0.01")),
    )
    with factory() as s:
        rated = dict(
            s.execute(
                select(UsageRecord.service_id, func.sum(UsageRecord.amount))
                .where(UsageRecord.status == "rated")
                .group_by(UsageRecord.service_id)
            ).all()
        )
        unrated = s.scalar(select(func.count()).select_from(UsageRecord).where(UsageRecord.amount.is_(None)))
    assert unrated == 0, f"{unrated} records not rated"
    for sid, total in totals.items():
        assert Decimal(rated[sid]) == catalog.tiered_charge(total, tiers), (sid, rated[sid], total)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--smoke", action="store_true", help="5,000 records over 50 services")
    args = parser.parse_args()
    if args.smoke:
        args.records, args.services, args.chunk = 5000, 50, 1000
    url, drop = create_database(args.db)
    engine = make_engine(url)
    try:
        services = setup(engine, args.services)
        records = make_records(args.records, services)
        baseline = run_baseline(engine, records, args.chunk)
        turnup_s = run_turnup(engine, records, args.chunk)
        check(engine, records)
        n = args.records
        print(
            f"{args.db}: {n} records, {args.services} services, {args.chunk} per transaction\n"
            f"  baseline executemany INSERT: {baseline:8.2f} s  {n / baseline:10.0f} records/s\n"
            f"  turnup import + rate:        {turnup_s:8.2f} s  {n / turnup_s:10.0f} records/s\n"
            f"  ratio turnup / baseline:     {turnup_s / baseline:8.1f}x\n"
            "  checked: every record rated, each service's month sums to its tiered charge"
        )
    finally:
        engine.dispose()
        drop()


if __name__ == "__main__":
    main()
