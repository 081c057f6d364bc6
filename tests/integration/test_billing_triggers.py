"""Billing triggers (``billing.triggers``): charges follow the real delivery events service inventory
publishes. An order for the demo's Business Fibre 1G (catalog prices: 199.00 a month, 350.00 installation,
charged at its field visit milestone; no quote) is placed through the API; its service (designed by the
order) is moved through its states with the service inventory face (what the order workflow does), on
chosen dates; the consumer is drained in this thread. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import customer_and_site, publish_demo_catalog
from turnup import billing
from turnup import service_inventory as inventory
from turnup.billing.orm import BilledService, BillingAccount, Charge, RecurringRate
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.consumers import PENDING, ConsumerInbox, ConsumerWorker
from turnup.kernel.outbox import OutboxEvent
from turnup.ordering.orm import PlanItem, ProductOrderItem

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CHARGES = "/tmf-api/customerBillManagement/v4/appliedCustomerBillingRate"
NAMES = ("billing.triggers", "billing.accounts")


@pytest.fixture
def dbos_cleanup(db_url: str) -> Iterator[None]:
    yield
    from tests.workflows.conftest import drop_dbos_schema

    drop_dbos_schema(db_url)


def at(day: str) -> None:
    clock.freeze(datetime.fromisoformat(f"{day}T09:30:00+00:00"))


def drain(factory: sessionmaker[Session]) -> None:
    ConsumerWorker(factory, names=NAMES).drain()
    with factory() as s:
        stuck = s.scalars(
            select(ConsumerInbox).where(ConsumerInbox.consumer.in_(NAMES), ConsumerInbox.status != "done")
        ).all()
        assert not stuck, [(r.event_type, r.status, r.last_error) for r in stuck]


def fibre_order(client: TestClient, factory: sessionmaker[Session]) -> dict[str, Any]:
    offerings = publish_demo_catalog(factory)
    customer_id, site_id = customer_and_site(client)
    order = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [
                {
                    "id": "1",
                    "action": "add",
                    "productOffering": {"id": offerings["Business Fibre 1G"]},
                    "product": {"place": [{"id": site_id, "role": "installationAddress"}]},
                }
            ],
        },
    )
    assert order.status_code == 201, order.text
    with factory() as s:
        step = s.scalars(
            select(PlanItem).where(
                PlanItem.order_id == order.json()["id"], PlanItem.kind == "serviceActivation"
            )
        ).one()
        return {
            "customer": customer_id,
            "site": site_id,
            "order": step.order_id,
            "item": step.order_item_id,
            "service": step.service_id,
            "spec": step.specification_id,
            "offering": offerings["Business Fibre 1G"],
        }


def change(factory: sessionmaker[Session], o: dict[str, Any], state: str, action: str) -> None:
    with factory() as s:
        service = inventory.get_service(s, o["service"])
        inventory.change_state(s, service, state, order_id=o["order"], order_item_id=o["item"], action=action)
        s.commit()


def charges(
    factory: sessionmaker[Session], service_id: str
) -> list[tuple[str, str, str | None, str | None, Decimal]]:
    with factory() as s:
        return [
            (
                c.charge_type,
                c.component,
                c.period_start.isoformat() if c.period_start else None,
                c.period_end.isoformat() if c.period_end else None,
                Decimal(c.amount),
            )
            for c in s.scalars(
                select(Charge)
                .where(Charge.service_id == service_id)
                .order_by(Charge.created_at, Charge.charge_type.desc())
            )
        ]


def running(factory: sessionmaker[Session], year: int, month: int, day: int) -> set[str]:
    with factory() as s:
        return billing.services_with_running_charges(s, datetime(year, month, day, tzinfo=UTC))


def redeliver(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        count = s.execute(
            update(ConsumerInbox)
            .where(ConsumerInbox.consumer == "billing.triggers")
            .values(status=PENDING, done_at=None)
        ).rowcount
        s.commit()
    return int(count)


def test_activation_mid_month_starts_a_prorated_charge_and_termination_credits_the_rest(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    # Given a fibre order of a customer (default billing account, bill cycle day 1)
    at("2026-03-02")
    o = fibre_order(client, session_factory)
    # When the service activates on 10 March and the consumer runs
    at("2026-03-10")
    change(session_factory, o, "active", "add")
    drain(session_factory)
    # Then the service belongs to the customer's billing account, which billing now holds
    with session_factory() as s:
        record = s.get(BilledService, o["service"])
        assert record is not None
        assert (record.billing_account_id, record.state, record.activated_on) == (
            f"BA-{o['customer']}",
            "active",
            date(2026, 3, 10),
        )
        account = s.get(BillingAccount, f"BA-{o['customer']}")
        assert account is not None and (account.bill_cycle_day, account.currency) == (1, "GBP")
    # and the monthly charge starts on the activation date: 199.00 x 22/31 days = 141.23; the installation
    # (350.00) is not charged yet: the order item has a field visit, whose milestone charges it
    first = [
        ("recurring", "Fibre 1G monthly", "2026-03-10", "2026-04-01", Decimal("141.2300")),
    ]
    assert charges(session_factory, o["service"]) == first
    assert running(session_factory, 2026, 3, 10) == {o["service"]}
    assert running(session_factory, 2026, 3, 9) == set()
    # and each charge is announced to the customerBillManagement hub and audited
    with session_factory() as s:
        announced = s.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.event_type == "AppliedCustomerBillingRateCreateEvent")
        )
        audited = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "charge.create")
        )
    assert (announced, audited) == (1, 1)

    # When every event is delivered again: nothing changes
    assert redeliver(session_factory) == 1
    drain(session_factory)
    assert charges(session_factory, o["service"]) == first

    # When the service is disconnected on 20 March
    at("2026-03-20")
    change(session_factory, o, "terminated", "delete")
    drain(session_factory)
    # Then the rate ends and the 12 days charged beyond the termination are credited: 199 x 12/31 = 77.03
    after = [
        *first,
        ("credit", "Fibre 1G monthly (terminated)", "2026-03-20", "2026-04-01", Decimal("-77.0300")),
    ]
    assert charges(session_factory, o["service"]) == after
    with session_factory() as s:
        rate = s.scalars(select(RecurringRate).where(RecurringRate.service_id == o["service"])).one()
        assert (rate.ends_on, rate.end_reason) == (date(2026, 3, 20), "terminated")
        record = s.get(BilledService, o["service"])
        assert record is not None and (record.state, record.ended_on) == ("terminated", date(2026, 3, 20))
    assert running(session_factory, 2026, 3, 19) == {o["service"]}
    assert running(session_factory, 2026, 3, 20) == set()
    # and redelivery of the activation and the termination changes nothing
    assert redeliver(session_factory) == 2
    drain(session_factory)
    assert charges(session_factory, o["service"]) == after

    # and the charges read as TMF678 appliedCustomerBillingRate, filtered by service and type
    listed = client.get(CHARGES, params={"service.id": o["service"], "type": "credit"})
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "1"
    credit = listed.json()[0]
    assert credit["@type"] == "AppliedCustomerBillingRate"
    assert credit["taxExcludedAmount"] == {"unit": "GBP", "value": "-77.03"}
    assert credit["billingAccount"]["id"] == f"BA-{o['customer']}"
    assert credit["periodCoverage"] == {"startDateTime": "2026-03-20", "endDateTime": "2026-04-01"}
    assert credit["isBilled"] is False
    assert client.get(f"{CHARGES}/{credit['id']}").json() == credit
    assert client.get(f"{CHARGES}/nope").status_code == 404
    by_account = client.get(CHARGES, params={"billingAccount.id": f"BA-{o['customer']}"})
    assert by_account.headers["X-Total-Count"] == "2"
    # and the export carries both, as CSV and JSON
    csv_text = client.get(f"{CHARGES}Export", params={"format": "csv"}).text.splitlines()
    assert csv_text[0].startswith("id,type,billingAccountId,customerId,serviceId")
    assert sorted(line.split(",")[11] for line in csv_text[1:]) == ["-77.03", "141.23"]
    exported = json.loads(client.get(f"{CHARGES}Export", params={"format": "json"}).text)
    assert sorted(e["taxExcludedAmount"]["value"] for e in exported) == ["-77.03", "141.23"]
    later = client.get(f"{CHARGES}Export", params={"format": "json", "since": "2026-03-15T00:00:00Z"})
    assert [e["type"] for e in json.loads(later.text)] == ["credit"]
    assert client.get(f"{CHARGES}Export", params={"format": "xml"}).status_code == 400


def test_suspension_is_not_billed_by_default_and_resumption_starts_a_new_rate(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    at("2026-03-02")
    o = fibre_order(client, session_factory)
    at("2026-03-10")
    change(session_factory, o, "active", "add")
    # When the service is suspended on 15 March and resumed on 25 March
    at("2026-03-15")
    change(session_factory, o, "inactive", "suspend")
    drain(session_factory)
    at("2026-03-25")
    change(session_factory, o, "active", "resume")
    drain(session_factory)
    # Then the days of the suspension are credited (17 days from 15 March: 109.13) and the resumed rate
    # charges 7 days from 25 March (44.94)
    expected = [
        ("recurring", "Fibre 1G monthly", "2026-03-10", "2026-04-01", Decimal("141.2300")),
        ("credit", "Fibre 1G monthly (suspended)", "2026-03-15", "2026-04-01", Decimal("-109.1300")),
        ("recurring", "Fibre 1G monthly", "2026-03-25", "2026-04-01", Decimal("44.9400")),
    ]
    assert charges(session_factory, o["service"]) == expected
    assert running(session_factory, 2026, 3, 20) == set()
    assert running(session_factory, 2026, 3, 26) == {o["service"]}
    # and redelivery changes nothing
    assert redeliver(session_factory) == 3
    drain(session_factory)
    assert charges(session_factory, o["service"]) == expected


def test_suspension_can_be_billed_by_configuration(
    client: TestClient,
    session_factory: sessionmaker[Session],
    dbos_cleanup: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TURNUP_BILLING_BILL_SUSPENDED", "true")
    at("2026-03-02")
    o = fibre_order(client, session_factory)
    at("2026-03-10")
    change(session_factory, o, "active", "add")
    drain(session_factory)
    at("2026-03-15")
    change(session_factory, o, "inactive", "suspend")
    drain(session_factory)
    at("2026-03-25")
    change(session_factory, o, "active", "resume")
    drain(session_factory)
    # Then the rate runs through the suspension: no credit, no second rate
    assert charges(session_factory, o["service"]) == [
        ("recurring", "Fibre 1G monthly", "2026-03-10", "2026-04-01", Decimal("141.2300")),
    ]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(RecurringRate)) == 1


def test_a_priced_modification_ends_the_old_rate_and_starts_the_new_one_prorated(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    at("2026-03-02")
    o = fibre_order(client, session_factory)
    at("2026-03-10")
    change(session_factory, o, "active", "add")
    drain(session_factory)
    # Given a modify order item priced +50.00 a month (as decomposition records it on the item)
    with session_factory() as s:
        item = s.get(ProductOrderItem, o["item"])
        assert item is not None
        item.pricing = {"currency": "GBP", "difference": {"recurring": "50.00", "oneTime": "0.00"}}
        s.commit()
    # When the service is modified on 22 March by that item
    at("2026-03-22")
    with session_factory() as s:
        service = inventory.get_service(s, o["service"])
        inventory.modify_characteristics(
            s, service, {"mbps": 2000}, order_id=o["order"], order_item_id=o["item"]
        )
        s.commit()
    drain(session_factory)
    # Then the old price is credited from 22 March (10 days: 64.19) and the new one (249.00) charged for
    # the same 10 days (80.32)
    expected = [
        ("recurring", "Fibre 1G monthly", "2026-03-10", "2026-04-01", Decimal("141.2300")),
        ("recurring", "Fibre 1G monthly", "2026-03-22", "2026-04-01", Decimal("80.3200")),
        ("credit", "Fibre 1G monthly (modified)", "2026-03-22", "2026-04-01", Decimal("-64.1900")),
    ]
    assert charges(session_factory, o["service"]) == expected
    with session_factory() as s:
        rates = s.scalars(select(RecurringRate).order_by(RecurringRate.starts_on)).all()
        assert [(r.amount, r.starts_on, r.ends_on) for r in rates] == [
            (Decimal("199.0000"), date(2026, 3, 10), date(2026, 3, 22)),
            (Decimal("249.0000"), date(2026, 3, 22), None),
        ]
    assert redeliver(session_factory) == 2
    drain(session_factory)
    assert charges(session_factory, o["service"]) == expected


def test_one_time_components_are_charged_at_activation_when_no_hand_over_step_precedes_it(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    # Given the fibre order without its field visit step (as an offering delivered without one would be)
    at("2026-03-02")
    o = fibre_order(client, session_factory)
    with session_factory() as s:
        visit = s.scalars(
            select(PlanItem).where(PlanItem.order_id == o["order"], PlanItem.kind == "fieldVisit")
        ).one()
        s.delete(visit)
        s.commit()
    # When the service activates
    at("2026-03-10")
    change(session_factory, o, "active", "add")
    drain(session_factory)
    # Then the installation is charged with the activation, once (redelivery changes nothing)
    expected = [
        ("recurring", "Fibre 1G monthly", "2026-03-10", "2026-04-01", Decimal("141.2300")),
        ("oneTime", "Fibre installation", None, None, Decimal("350.0000")),
    ]
    assert charges(session_factory, o["service"]) == expected
    assert redeliver(session_factory) == 1
    drain(session_factory)
    assert charges(session_factory, o["service"]) == expected
