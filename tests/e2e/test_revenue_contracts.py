"""Revenue contracts from orders without a quote (priced by the catalog), and the review items: an order
whose line has no standalone selling price (nor a price it is sold for on its own) is not guessed at — its
contract is put in review with the reason, with no obligations, and audited. Both databases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.catalog import publish_catalog
from turnup.kernel.audit import AuditEntry
from turnup.kernel.consumers import ConsumerWorker
from turnup.testing import make_customer

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
REVENUE = "/tmf-api/turnupRevenue/v1"
CATALOG: dict[str, Any] = {
    "catalog": "Revenue test",
    "productSpecifications": [
        {
            "name": "Link",
            "version": "1.0",
            "deliveryRequirements": {
                "provisioning": [{"adapter": "network-simulator", "action": "activate"}]
            },
        },
        {
            "name": "Setup",
            "version": "1.0",
            "deliveryRequirements": {"provisioning": [{"adapter": "network-simulator", "action": "setup"}]},
        },
    ],
    "productOfferings": [
        {
            "name": "Priced link",
            "version": "1.0",
            "productSpecifications": ["Link"],
            "prices": [
                {
                    "name": "Link monthly",
                    "priceType": "recurring",
                    "recurringChargePeriodType": "month",
                    "price": {"unit": "GBP", "value": "50.00"},
                },
                {
                    "name": "Link activation",
                    "priceType": "oneTime",
                    "price": {"unit": "GBP", "value": "30.00"},
                },
            ],
        },
        {
            "name": "Setup only",
            "version": "1.0",
            "productSpecifications": ["Setup"],
            "revenueRecognition": {"method": "overTime"},
            "prices": [
                {"name": "Setup fee", "priceType": "oneTime", "price": {"unit": "GBP", "value": "80.00"}}
            ],
        },
    ],
}


def _order(client: TestClient, customer_id: str, *offering_ids: str) -> str:
    created = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {"id": str(n), "action": "add", "productOffering": {"id": o}}
                for n, o in enumerate(offering_ids, 1)
            ],
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _offerings(session_factory: sessionmaker[Session]) -> dict[str, str]:
    from turnup.catalog import list_offerings

    with session_factory() as s:
        publish_catalog(s, CATALOG, "test")
        return {o["name"]: o["id"] for o in list_offerings(s)}


def test_an_order_without_a_quote_is_priced_by_the_catalog(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # given an order (no quote) for a link sold at 50.00 a month plus a 30.00 activation fee
    offerings = _offerings(session_factory)
    with session_factory() as s:
        customer_id = make_customer(s)
    order_id = _order(client, customer_id, offerings["Priced link"])
    # when the consumers run
    ConsumerWorker(session_factory).drain()
    # then one contract: a 12-month term (no quote), 50 x 12 + 30 = 630.00, the activation fee (no field
    # visit: nothing distinct) combined with the service obligation, its SSP the list price
    (contract,) = client.get(f"{REVENUE}/contract", params={"productOrderId": order_id}).json()
    detail = client.get(f"{REVENUE}/contract/{contract['id']}").json()
    assert (detail["status"], detail["termMonths"], detail["transactionPrice"]) == ("active", 12, "630.00")
    assert [
        (o["kind"], o["standaloneSellingPrice"], o["allocatedAmount"], o["billedAmount"])
        for o in detail["performanceObligation"]
    ] == [("service", "600.00", "630.00", "630.00")]


def test_a_missing_standalone_selling_price_is_a_review_item_not_a_guess(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # given an order for a service sold only with a one-time fee and no SSP in the catalog
    offerings = _offerings(session_factory)
    with session_factory() as s:
        customer_id = make_customer(s)
    order_id = _order(client, customer_id, offerings["Priced link"], offerings["Setup only"])
    # when the consumers run
    assert ConsumerWorker(session_factory).drain() >= 1
    # then the contract is in review, naming the obligation without an SSP; no obligation is stored
    (contract,) = client.get(f"{REVENUE}/contract", params={"productOrderId": order_id}).json()
    assert contract["status"] == "review"
    assert contract["reviewReason"] == (
        "standaloneSellingPrice: missing for 2/Setup only/service (no residual approach allowed)"
    )
    assert client.get(f"{REVENUE}/contract/{contract['id']}").json()["performanceObligation"] == []
    with session_factory() as s:
        audited = s.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == contract["id"])).all()
    assert audited == ["revenueContract.review"]
    # and a review contract is never re-built on redelivery: still one contract
    ConsumerWorker(session_factory).drain()
    assert len(client.get(f"{REVENUE}/contract", params={"productOrderId": order_id}).json()) == 1


def test_reports_refuse_bad_input(client: TestClient) -> None:
    bad_month = client.get(f"{REVENUE}/waterfall", params={"from": "2026-13"})
    assert bad_month.status_code == 400
    assert bad_month.json()["message"] == "from: '2026-13' is not a month (YYYY-MM)"
    bad_day = client.get(f"{REVENUE}/report", params={"to": "yesterday"})
    assert bad_day.status_code == 400
    assert bad_day.json()["message"] == "to: 'yesterday' is not a date (YYYY-MM-DD)"
    assert client.get(f"{REVENUE}/export", params={"format": "xml"}).status_code in (400, 422)
    assert client.post(f"{REVENUE}/close", json={"through": "2026-12-31", "extra": 1}).status_code in (
        400,
        422,
    )
    assert client.get(f"{REVENUE}/contract/nope").status_code == 404


def test_revenue_cli_shows_schedules_and_exports_the_journal(
    client: TestClient,
    session_factory: sessionmaker[Session],
    db_url: str,
    tmp_path: Any,
    monkeypatch: Any,
) -> None:
    from datetime import date
    from decimal import Decimal

    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from turnup.cli.revenue import app
    from turnup.kernel.settings import get_settings
    from turnup.revenue.engine import Posting
    from turnup.revenue.ledger import post_entry

    # given a contract (no quote) and one posted entry
    offerings = _offerings(session_factory)
    with session_factory() as s:
        customer_id = make_customer(s)
    order_id = _order(client, customer_id, offerings["Priced link"])
    ConsumerWorker(session_factory).drain()
    with session_factory() as s:
        post_entry(
            s,
            source_ref="cli-test",
            contract_id=None,
            entry_date=date(2026, 12, 31),
            kind="recognition",
            currency="GBP",
            memo="test",
            posting=Posting(
                (
                    ("contractLiability", Decimal("52.50"), Decimal("0")),
                    ("revenue:service", Decimal("0"), Decimal("52.50")),
                )
            ),
        )
        s.commit()
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "300")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        # when the schedules are listed: the order's service obligation, allocated 630.00, pending
        shown = runner.invoke(app, ["schedules", "--order", order_id])
        assert shown.exit_code == 0, shown.output
        assert "Priced link (1)" in shown.output and "630.00" in shown.output and "pending" in shown.output
        # and the journal exported as CSV and Parquet: the two lines of the entry
        out_csv, out_parquet = tmp_path / "gl.csv", tmp_path / "gl.parquet"
        assert runner.invoke(app, ["export", str(out_csv)]).exit_code == 0
        assert runner.invoke(app, ["export", str(out_parquet)]).exit_code == 0
        lines = out_csv.read_text().splitlines()
        assert lines[0].startswith("entryId,entryDate,kind,contractId,lineNo,account,debit,credit")
        assert [line.split(",")[5:8] for line in lines[1:]] == [
            ["contractLiability", "52.50", "0.00"],
            ["revenue:service", "0.00", "52.50"],
        ]
        table = pq.read_table(out_parquet)
        assert table.column("account").to_pylist() == ["contractLiability", "revenue:service"]
        assert [str(v) for v in table.column("credit").to_pylist()] == ["0.00", "52.50"]
        closed = runner.invoke(app, ["close", "2026-12-31"])
        assert closed.exit_code == 0 and "Posted 0 periods through 2026-12-31" in closed.output
    finally:
        get_settings.cache_clear()
