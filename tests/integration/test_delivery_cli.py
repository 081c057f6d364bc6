"""``turnup events …``: listing events and deliveries, and requeueing a dead letter from the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.fakes.subscriber import FakeSubscriber
from turnup.cli.events import app
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.delivery import DeliveryWorker
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import EventDelivery, HubSubscription, publish
from turnup.kernel.settings import Settings, get_settings


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "300")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_events_cli_lists_and_redelivers_a_dead_letter(
    cli_env: CliRunner, db_url: str, session_factory: sessionmaker[Session]
) -> None:
    # Given a delivery that failed its only allowed attempt
    with FakeSubscriber() as sub:
        sub.fail_always = True
        with session_factory() as s:
            s.add(
                HubSubscription(
                    id=new_id(),
                    api="customerManagement",
                    callback=sub.url,
                    query=None,
                    created_at=clock.now(),
                )
            )
            s.flush()
            event = publish(
                s,
                api="customerManagement",
                event_type="CustomerCreateEvent",
                resource_type="customer",
                resource={"id": "c1", "name": "Acme"},
            )
            s.commit()
        settings = Settings(
            database_url=db_url, delivery_max_attempts=1, webhook_allowed_networks="127.0.0.1/32"
        )
        assert DeliveryWorker(session_factory, settings).run_once() == 1
    with session_factory() as s:
        delivery = s.scalars(select(EventDelivery)).one()
    assert delivery.status == "failed"

    # When listing events and failed deliveries
    events = cli_env.invoke(app, ["list", "--type", "CustomerCreateEvent"])
    assert events.exit_code == 0, events.output
    assert event.id in events.output and "customer/c1" in events.output
    failed = cli_env.invoke(app, ["deliveries", "--status", "failed"])
    assert failed.exit_code == 0, failed.output
    assert delivery.id in failed.output and "HTTP 503" in failed.output
    assert delivery.id not in cli_env.invoke(app, ["deliveries", "--status", "pending"]).output

    # When redelivering it
    done = cli_env.invoke(app, ["redeliver", delivery.id])
    assert done.exit_code == 0, done.output
    assert "requeued" in done.output

    # Then it is pending again with its history kept, and the CLI actor is audited
    with session_factory() as s:
        again = s.get(EventDelivery, delivery.id)
        assert again is not None and (again.status, again.attempts) == ("pending", 1)
        actors = s.execute(
            select(AuditEntry.actor, AuditEntry.action).where(AuditEntry.resource_id == delivery.id)
        ).all()
    assert [tuple(a) for a in actors] == [("cli", "hub.redeliver")]

    # And a second redeliver, or an unknown id, is refused with exit code 1 and changes nothing
    refused = cli_env.invoke(app, ["redeliver", delivery.id])
    assert refused.exit_code == 1
    unknown = cli_env.invoke(app, ["redeliver", "nope"])
    assert unknown.exit_code == 1
    with session_factory() as s:
        assert s.get(EventDelivery, delivery.id).status == "pending"  # type: ignore[union-attr]
