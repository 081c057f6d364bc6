"""Migration 0013 gives every billing account id customers reference a billing account record, and attaches
every active or suspended service to it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from turnup.kernel import migrate
from turnup.kernel.db import make_engine


def test_existing_billing_account_references_become_records(db_url: str) -> None:
    # Given a database at the revision before billing, with three customers (two share an account, one has
    # none) and their services
    migrate.upgrade(db_url, "0008")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for cid, ref, name in [("c1", "BA-1", "One"), ("c2", "BA-1", None), ("c3", None, None)]:
                conn.execute(
                    text(
                        "INSERT INTO customer (id, name, customer_type, status, billing_account_id, "
                        "billing_account_name, created_at, updated_at) VALUES (:id, :n, 'organization', "
                        "'active', :ref, :name, :t, :t)"
                    ),
                    {"id": cid, "n": f"Customer {cid}", "ref": ref, "name": name, "t": "2026-01-05 10:00:00"},
                )
            for sid, cid, state in [
                ("s1", "c1", "active"),
                ("s2", "c2", "inactive"),
                ("s3", "c1", "terminated"),
                ("s4", "c3", "active"),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO service_instance (id, name, state, customer_id, offering_id, "
                        "offering_name, adapter, characteristics, resources, created_at, updated_at) "
                        "VALUES (:id, 'svc', :st, :c, 'o', 'Offer', 'sim', '{}', '[]', :t, :t)"
                    ),
                    {"id": sid, "st": state, "c": cid, "t": "2026-01-05 10:00:00"},
                )
        # When it is upgraded
        migrate.upgrade(db_url)
        # Then one account per reference (named, the first customer's), defaults, and the live services on it
        with engine.connect() as conn:
            accounts = conn.execute(
                text(
                    "SELECT id, name, customer_id, state, currency, bill_cycle_day, payment_terms_days "
                    "FROM billing_account ORDER BY id"
                )
            ).all()
            services = conn.execute(
                text("SELECT service_id, billing_account_id, state FROM billing_service ORDER BY service_id")
            ).all()
        assert [tuple(a) for a in accounts] == [("BA-1", "One", "c1", "active", "GBP", 1, 30)]
        assert [tuple(s) for s in services] == [("s1", "BA-1", "active"), ("s2", "BA-1", "suspended")]
    finally:
        engine.dispose()
