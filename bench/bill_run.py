"""A bill run at scale, with a same-run baseline (plain SQL).

On a fresh database: ``--accounts`` billing accounts (cycle day 1) with ``--charges`` unbilled one-time
charges each, and a usage source handing ``--usage`` rated usage lines per account to the run (in memory: a
stand-in for usage rating, which fills the slot at merge). Then:

1. **Turnup**: ``billing.run_bills`` for 2026-03 (per account: lock, recurring in advance, usage lines as
   charges, one bill with taxed lines, audit and a CustomerBillCreateEvent; one transaction per account).
2. **Baseline**: the same number of accounts and charges (cycle day 2), billed by three plain statements —
   ``INSERT … SELECT`` of one bill per account with its totals, ``INSERT … SELECT`` of one line per charge,
   one ``UPDATE`` marking the charges billed — no usage, no tax lookup, no audit, no events.

Prints seconds and accounts/s for both, and the ratio. The issue's target (100,000 accounts, 1M charges,
10M usage records in ≤ 5 min on PostgreSQL) is extrapolated linearly from the measured rate; say so.

    nice -n 10 .venv/bin/python bench/bill_run.py --db postgresql --accounts 2000 --charges 10 --usage 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from turnup import billing
from turnup.billing.orm import BillingAccount, Charge
from turnup.kernel import clock
from turnup.kernel.db import make_engine, make_sessionmaker, table_of
from turnup.kernel.ids import new_id
from turnup.testing import scratch_database
from turnup.wiring import wire

BASELINE = [
    """
    INSERT INTO billing_bill_run (id, cycle_day, period_start, period_end, state, runs, last_run_at,
        last_run_by)
    VALUES ('baseline', 2, '2026-03-02', '2026-04-02', 'open', 1, :now, 'bench')
    """,
    """
    INSERT INTO billing_customer_bill (id, bill_no, billing_account_id, bill_run_id, customer_id, state,
        period_start, period_end, bill_date, payment_due_date, currency, amount_excluding_tax, tax_amount,
        amount_due, created_at)
    SELECT 'b-' || a.id, a.id || '-202603', a.id, 'baseline', a.customer_id, 'new', '2026-03-02',
        '2026-04-02', '2026-03-02', '2026-04-01', a.currency, SUM(c.amount), 0, SUM(c.amount), :now
    FROM billing_account a JOIN billing_charge c ON c.billing_account_id = a.id AND c.bill_id IS NULL
    WHERE a.bill_cycle_day = 2 GROUP BY a.id, a.customer_id, a.currency
    """,
    """
    INSERT INTO billing_bill_line (id, bill_id, charge_id, position, charge_type, description, service_id,
        period_start, period_end, amount, tax_category, tax_rate, tax_amount)
    SELECT 'l' || substr(c.id, 2), 'b-' || c.billing_account_id, c.id, 1, c.charge_type, c.component,
        c.service_id,
        c.period_start, c.period_end, c.amount, c.tax_category, 0, 0
    FROM billing_charge c JOIN billing_account a ON a.id = c.billing_account_id
    WHERE a.bill_cycle_day = 2 AND c.bill_id IS NULL
    """,
    """
    UPDATE billing_charge SET bill_id = 'b-' || billing_account_id
    WHERE bill_id IS NULL AND billing_account_id IN (SELECT id FROM billing_account WHERE bill_cycle_day = 2)
    """,
]


def seed(session: Session, accounts: int, charges: int, cycle_day: int) -> list[str]:
    now = clock.now()
    ids = [f"BA{cycle_day}-{i:07d}" for i in range(accounts)]
    session.execute(
        insert(table_of(BillingAccount)),
        [
            {
                "id": a,
                "name": a,
                "customer_id": new_id(),
                "state": "active",
                "currency": "GBP",
                "bill_cycle_day": cycle_day,
                "payment_terms_days": 30,
                "created_at": now,
                "updated_at": now,
            }
            for a in ids
        ],
    )
    rows = [
        {
            "id": new_id(),
            "key": f"bench:{a}:{n}",
            "charge_type": "oneTime",
            "billing_account_id": a,
            "customer_id": "c",
            "component": f"Item {n}",
            "currency": "GBP",
            "amount": Decimal("10.00") + n,
            "tax_category": "standard",
            "source": "bench",
            "created_at": now,
        }
        for a in ids
        for n in range(charges)
    ]
    for start in range(0, len(rows), 10_000):
        session.execute(insert(table_of(Charge)), rows[start : start + 10_000])
    session.commit()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--charges", type=int, default=10)
    parser.add_argument("--usage", type=int, default=10)
    args = parser.parse_args()
    wire()
    clock.freeze(datetime(2026, 3, 2, 12, tzinfo=UTC))

    def usage(session: Session, account_id: str, start: date, end: date) -> list[billing.UsageLine]:
        return [
            billing.UsageLine(f"{account_id}:{n}", None, f"Usage {n}", Decimal("0.25"), "GBP", start, end)
            for n in range(args.usage)
        ]

    billing.register_usage_source(usage)
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.db, tmp) as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with factory() as s:
            seed(s, args.accounts, args.charges, 1)
            seed(s, args.accounts, args.charges, 2)
        with factory() as s:
            started = time.perf_counter()
            result = billing.run_bills(s, billing.BillRunCreate(billCycleDay=1, period="2026-03"), "bench")
            turnup_s = time.perf_counter() - started
        with engine.begin() as conn:
            started = time.perf_counter()
            for statement in BASELINE:
                conn.execute(text(statement), {"now": clock.now()})
            baseline_s = time.perf_counter() - started
        engine.dispose()
    n = args.accounts
    lines = n * (args.charges + args.usage)
    print(
        f"{args.db}: {n} accounts, {n * args.charges} charges, {n * args.usage} usage lines -> "
        f"{len(result.bills)} bills, {lines} lines"
    )
    print(
        f"turnup run_bills: {turnup_s:.1f} s ({n / turnup_s:.0f} accounts/s, {lines / turnup_s:.0f} lines/s)"
    )
    print(f"baseline SQL:     {baseline_s:.2f} s ({n / baseline_s:.0f} accounts/s, charges only)")
    print(f"ratio turnup/baseline: {turnup_s / baseline_s:.0f}x slower")
    print(f"100,000 accounts at this rate: {100_000 / (n / turnup_s) / 60:.1f} min (linear extrapolation)")


if __name__ == "__main__":
    main()
