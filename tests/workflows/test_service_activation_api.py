"""TMF640 Service Activation (server side): an external orchestrator drives a service through the adapters."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.catalog.orm import OfferingSpecification
from turnup.kernel.outbox import OutboxEvent
from turnup.provisioning.orm import SimulatorLedgerEntry

ACTIVATION = "/tmf-api/ServiceActivationAndConfiguration/v4/service"


def _spec(factory: sessionmaker[Session], offering_id: str) -> str:
    with factory() as s:
        return str(
            s.scalars(
                select(OfferingSpecification.specification_id).where(
                    OfferingSpecification.offering_id == offering_id
                )
            ).one()
        )


def _ops(factory: sessionmaker[Session], service_id: str) -> list[tuple[str, str, int]]:
    with factory() as s:
        return [
            (r.operation, r.status, r.calls)
            for r in s.scalars(
                select(SimulatorLedgerEntry)
                .where(SimulatorLedgerEntry.service_id == service_id)
                .order_by(SimulatorLedgerEntry.first_call_at)
            )
        ]


def test_external_orchestrator_activates_suspends_modifies_and_terminates(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    spec = _spec(session_factory, catalog["fibre"])
    created = client.post(
        ACTIVATION,
        json={
            "name": "Fibre at HQ",
            "state": "active",
            "serviceSpecification": {"id": spec},
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "serviceCharacteristic": [{"name": "mbps", "value": 200}],
        },
    )
    assert created.status_code == 201, created.text
    service = created.json()
    assert service["state"] == "active", service.get("activationError")
    assert service["startDate"] is not None
    assert "/ServiceActivationAndConfiguration/v4/service/" in service["href"]
    assert {c["name"]: c["value"] for c in service["serviceCharacteristic"]} == {"mbps": 200}
    sid = service["id"]
    assert _ops(session_factory, sid) == [("activate", "applied", 1)]
    # suspend, suspend again (no-op: same state, no second adapter call), resume, modify, terminate
    assert client.patch(f"{ACTIVATION}/{sid}", json={"state": "inactive"}).json()["state"] == "inactive"
    assert client.patch(f"{ACTIVATION}/{sid}", json={"state": "inactive"}).status_code == 200
    assert client.patch(f"{ACTIVATION}/{sid}", json={"state": "active"}).json()["state"] == "active"
    modified = client.patch(
        f"{ACTIVATION}/{sid}", json={"serviceCharacteristic": [{"name": "mbps", "value": 500}]}
    )
    assert {c["name"]: c["value"] for c in modified.json()["serviceCharacteristic"]} == {"mbps": 500}
    terminated = client.patch(f"{ACTIVATION}/{sid}", json={"state": "terminated"})
    assert terminated.json()["state"] == "terminated" and terminated.json()["endDate"] is not None
    assert [op for op, _, _ in _ops(session_factory, sid)] == [
        "activate",
        "suspend",
        "resume",
        "modify",
        "deactivate",
    ]
    assert {(st, calls) for _, st, calls in _ops(session_factory, sid)} == {("applied", 1)}
    # illegal changes are 409 and reach no adapter
    again = client.patch(f"{ACTIVATION}/{sid}", json={"state": "active"})
    assert again.status_code == 409 and "terminated service cannot become active" in again.json()["message"]
    assert len(_ops(session_factory, sid)) == 5
    with session_factory() as s:
        types = [e for e in s.scalars(select(OutboxEvent.event_type).where(OutboxEvent.resource_id == sid))]
    assert types.count("ServiceStateChangeEvent") == 4  # active, inactive, active, terminated
    assert {
        "ServiceActivatedEvent",
        "ServiceSuspendedEvent",
        "ServiceResumedEvent",
        "ServiceModifiedEvent",
        "ServiceTerminatedEvent",
    } <= set(types)


def test_bad_activation_requests(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    spec = _spec(session_factory, catalog["fibre"])
    party = [{"id": customer_id, "role": "customer"}]
    cases = [
        ({"serviceSpecification": {"id": "nope"}, "relatedParty": party}, 400, "serviceSpecification.id"),
        (
            {"serviceSpecification": {"id": spec}, "relatedParty": [{"id": "nobody"}]},
            400,
            "relatedParty[0].id",
        ),
        ({"serviceSpecification": {"id": spec}, "relatedParty": party, "state": "terminated"}, 400, ""),
    ]
    for body, status, text in cases:
        response = client.post(ACTIVATION, json=body)
        assert response.status_code == status, response.text
        assert text in response.json()["message"]
    # a failing element: the designed service stays, the answer says why; PATCH active retries (same key)
    flaky_spec = _spec(session_factory, catalog["flaky"])
    first = client.post(ACTIVATION, json={"serviceSpecification": {"id": flaky_spec}, "relatedParty": party})
    assert first.status_code == 201 and first.json()["state"] == "designed"
    assert "unavailable" in first.json()["activationError"]
    sid = first.json()["id"]
    assert client.patch(f"{ACTIVATION}/{sid}", json={"state": "active"}).json()["state"] == "designed"
    third = client.patch(f"{ACTIVATION}/{sid}", json={"state": "active"})
    assert third.json()["state"] == "active", third.text
    assert _ops(session_factory, sid) == [("activate", "applied", 3)]
    both = client.patch(f"{ACTIVATION}/{sid}", json={"state": "inactive", "serviceCharacteristic": []})
    assert both.status_code == 400
