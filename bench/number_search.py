"""Telephone-number search over 10M numbers on PostgreSQL, through the service layer (numbers.search):
vanity words (keypad suffix), area/prefix, wildcard patterns, repeated digits, golden numbers, blocks, and
the unanchored worst case ("contains").

    nice -n 10 .venv/bin/python bench/number_search.py                 # 10M numbers
    .venv/bin/python bench/number_search.py --smoke                    # 200k numbers

Numbers are generated server-side (INSERT … SELECT generate_series) with the derived search columns
computed in SQL; a sample is checked against the Python definition used by imports (codec.number_features).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from turnup.inventory.logical import numbers
from turnup.inventory.logical.benchkit import baseline_ms, bench_database, pct, raw_connection, report
from turnup.inventory.logical.codec import number_features
from turnup.inventory.logical.schemas import NumberSearch
from turnup.kernel.db import make_sessionmaker
from turnup.wiring import wire

wire()  # every consumer registered: publish refuses to run in an unwired process

BACKREF = "\\1"
RUN = " ".join(f"WHEN right(d, 7) ~ '(\\d){BACKREF * (n - 1)}' THEN {n}" for n in range(7, 1, -1))
SEQ = ",".join(
    f"'{s}'"
    for s in (
        "0123",
        "1234",
        "2345",
        "3456",
        "4567",
        "5678",
        "6789",
        "9876",
        "8765",
        "7654",
        "6543",
        "5432",
        "4321",
        "3210",
    )
)
WORDS = ["CAKE", "PIZZA", "TAXI", "HOME", "BEER", "LOVE", "FOOD", "CARS", "BIKE", "GOLF", "DOGS", "WINE"]


def load(url: str, total: int) -> None:
    us = total * 7 // 10
    with raw_connection(url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '256MB'")
        for ix in (
            "ix_telephone_number_due",
            "ix_telephone_number_run",
            "ix_telephone_number_rdigits",
            "ix_telephone_number_block_id",
        ):
            conn.execute(f"DROP INDEX IF EXISTS {ix}")
        conn.execute("ALTER TABLE telephone_number DROP CONSTRAINT IF EXISTS uq_telephone_number_digits")
        conn.execute("INSERT INTO number_class VALUES ('residential', 90, 'bench', now(), now())")
        conn.commit()
        chunk = 1_000_000
        for start in range(0, total, chunk):
            t0 = time.perf_counter()
            conn.execute(f"""
                INSERT INTO telephone_number (id, digits, rdigits, region, block_id, number_class, state,
                                              until, max_run, golden, created_at, updated_at)
                SELECT md5(i::text), d, reverse(d), CASE WHEN i < {us} THEN 'US' ELSE 'GB' END,
                       'b' || left(d, length(d) - 3), 'residential',
                       CASE WHEN i % 10 = 0 THEN 'assigned' ELSE 'available' END, NULL,
                       r, r >= 4 OR right(d, 4) IN ({SEQ}) OR right(d, 4) ~ '^(\\d)(\\d)\\1\\2$'
                          OR right(d, 4) ~ '^(\\d)\\1(\\d)\\2$', now(), now()
                FROM (SELECT i, d, CASE {RUN} ELSE 1 END AS r
                      FROM (SELECT i, CASE WHEN i < {us} THEN '1' || (2010000000 + i)::text
                                           ELSE '44' || (2000000000 + i - {us})::text END AS d
                            FROM generate_series({start}, {min(start + chunk, total) - 1}) AS i) g) f""")
            conn.commit()
            print(
                f"  rows {start:>10,} .. {min(start + chunk, total):>10,} in "
                f"{time.perf_counter() - t0:5.1f} s",
                flush=True,
            )
        conn.execute("""INSERT INTO number_block (id, prefix, region, number_class, size, created_at)
                        SELECT block_id, substr(block_id, 2), min(region), 'residential', count(*), now()
                        FROM telephone_number GROUP BY block_id""")
        conn.commit()
        for ddl in (
            "ALTER TABLE telephone_number ADD CONSTRAINT uq_telephone_number_digits UNIQUE (digits)",
            "CREATE INDEX ix_telephone_number_rdigits ON telephone_number (rdigits)",
            "CREATE INDEX ix_telephone_number_block_id ON telephone_number (block_id)",
            "CREATE INDEX ix_telephone_number_run ON telephone_number (max_run, digits)",
            "CREATE INDEX ix_telephone_number_due ON telephone_number (state, until)",
            "ANALYZE telephone_number",
            "ANALYZE number_block",
        ):
            t0 = time.perf_counter()
            conn.execute(ddl)
            conn.commit()
            print(f"  {ddl[:70]:<70} {time.perf_counter() - t0:5.1f} s", flush=True)
        sample = conn.execute(
            "SELECT digits, max_run, golden FROM telephone_number TABLESAMPLE SYSTEM (1) LIMIT 5000"
        ).fetchall()
        mismatches = [row for row in sample if number_features(row[0]) != (row[1], row[2])]
        print(f"  features checked on {len(sample)} sampled rows: {len(mismatches)} mismatches")
        assert not mismatches, mismatches[:5]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.numbers, args.samples = 200_000, 30
    rng = random.Random(1)
    with bench_database() as (url, engine):
        t0 = time.perf_counter()
        load(url, args.numbers)
        print(f"loaded {args.numbers:,} numbers in {time.perf_counter() - t0:.1f} s")
        base = baseline_ms(engine)
        print(f"baseline SELECT 1 round trip p50 = {base:.3f} ms")
        factory = make_sessionmaker(engine)
        with raw_connection(url) as conn:
            blocks = [r[0] for r in conn.execute("SELECT id FROM number_block ORDER BY random() LIMIT 500")]
        queries = {
            "vanity suffix (*CAKE), any country": lambda: NumberSearch(pattern="*" + rng.choice(WORDS)),
            "vanity suffix in country (US *WORD)": lambda: NumberSearch(
                country="US", pattern="*" + rng.choice(WORDS)
            ),
            "area + prefix (GB +442000 nn)": lambda: NumberSearch(
                country="GB", prefix=f"+442000{rng.randint(0, 2)}{rng.randint(0, 9)}"
            ),
            "wildcards (US 2010d?d*)": lambda: NumberSearch(
                country="US", pattern=f"2010{rng.randint(0, 6)}?{rng.randint(0, 9)}*"
            ),
            "repeated digits (US, run >= 5)": lambda: NumberSearch(country="US", minRepeat=5),
            "golden (GB)": lambda: NumberSearch(country="GB", golden=True),
            "block": lambda: NumberSearch(blockId=rng.choice(blocks)),
            "contains, unanchored (GB *WORD*)": lambda: NumberSearch(
                country="GB", pattern="*" + rng.choice(WORDS) + "*"
            ),
        }
        all_samples: list[float] = []
        with factory() as s:
            for label, make in queries.items():
                samples = []
                hits = 0
                for _ in range(args.samples):
                    q = make()
                    t = time.perf_counter()
                    hits += len(numbers.search(s, q))
                    samples.append((time.perf_counter() - t) * 1000)
                all_samples += samples
                print(report(label, samples, base) + f"  avg hits={hits / args.samples:.1f}")
        print(
            f"ALL QUERIES: n={len(all_samples)} p50={pct(all_samples, 50):.2f} ms "
            f"p99={pct(all_samples, 99):.2f} ms"
        )


if __name__ == "__main__":
    main()
