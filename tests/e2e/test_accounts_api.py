"""Accounts through the HTTP API: TMF conventions, lifecycle, bad input, events, audit."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.accounts.orm import Customer, Site
from turnup.kernel.audit import AuditEntry
from turnup.kernel.outbox import OutboxEvent

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
SITES = "/tmf-api/geographicSiteManagement/v4/geographicSite"
CONTACTS = "/tmf-api/customerManagement/v4/contact"


def _customer(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Acme Widgets Ltd", "customerType": "organization", "country": "GB", "segment": "smb"}
    body.update(overrides)
    response = client.post(CUSTOMERS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_create_customer_returns_tmf_document_and_writes_event_and_audit(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    created = _customer(client)
    assert created["@type"] == "Customer"
    assert created["status"] == "prospective"
    assert created["href"].endswith(f"{CUSTOMERS}/{created['id']}")
    assert created["createdAt"].endswith("Z")
    with session_factory() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.resource_id == created["id"])).all()
        assert [e.event_type for e in events] == ["CustomerCreateEvent"]
        assert events[0].payload["event"]["customer"]["name"] == "Acme Widgets Ltd"
        audits = s.scalars(select(AuditEntry).where(AuditEntry.resource_id == created["id"])).all()
        assert [(a.action, a.actor) for a in audits] == [("customer.create", "user:admin")]


def test_list_with_fields_filters_pagination_and_counts(client: TestClient) -> None:
    for i in range(5):
        _customer(client, name=f"Customer {i}", segment="enterprise" if i % 2 else "smb")
    response = client.get(CUSTOMERS, params={"fields": "name", "limit": 2, "segment": "smb"})
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert response.headers["X-Result-Count"] == "2"
    items = response.json()
    assert [set(i) for i in items] == [{"id", "href", "@type", "name"}] * 2
    # comma means OR
    both = client.get(CUSTOMERS, params={"segment": "smb,enterprise"})
    assert both.headers["X-Total-Count"] == "5"
    # offset past the middle
    tail = client.get(CUSTOMERS, params={"offset": 4, "sort": "name"})
    assert [i["name"] for i in tail.json()] == ["Customer 4"]
    assert tail.headers["X-Total-Count"] == "5"


def test_comparison_filters_on_dates(client: TestClient) -> None:
    first = _customer(client, name="First")
    _customer(client, name="Second")
    after = client.get(CUSTOMERS, params={"createdAt.gt": first["createdAt"], "fields": "name"})
    assert [i["name"] for i in after.json()] == ["Second"]
    upto = client.get(CUSTOMERS, params={"createdAt.lte": first["createdAt"], "fields": "name"})
    assert [i["name"] for i in upto.json()] == ["First"]


def test_unknown_filter_and_bad_paging_are_tmf_400(client: TestClient) -> None:
    for params in (
        {"colour": "red"},
        {"limit": "0"},
        {"offset": "-1"},
        {"limit": "abc"},
        {"createdAt.gt": "yesterday"},
    ):
        response = client.get(CUSTOMERS, params=params)
        assert response.status_code == 400, params
        body = response.json()
        assert body["@type"] == "Error" and body["status"] == "400" and body["code"] == "ERR400"
        assert body["reason"] and body["message"]


def test_patch_merge_patch_changes_fields_and_emits_events(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    created = _customer(client)
    response = client.patch(
        f"{CUSTOMERS}/{created['id']}",
        json={"status": "active", "segment": None},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert response.json()["segment"] is None
    with session_factory() as s:
        types = sorted(
            s.scalars(select(OutboxEvent.event_type).where(OutboxEvent.resource_id == created["id"]))
        )
    assert types == ["CustomerAttributeValueChangeEvent", "CustomerCreateEvent", "CustomerStateChangeEvent"]


def test_illegal_lifecycle_transition_is_409_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    created = _customer(client)
    response = client.patch(f"{CUSTOMERS}/{created['id']}", json={"status": "suspended", "name": "X"})
    assert response.status_code == 409
    assert "prospective customer cannot become suspended" in response.json()["message"]
    with session_factory() as s:
        row = s.get(Customer, created["id"])
        assert row is not None and (row.status, row.name) == ("prospective", "Acme Widgets Ltd")


def test_unknown_id_is_tmf_404(client: TestClient) -> None:
    for method, path in (
        ("GET", f"{CUSTOMERS}/nope"),
        ("PATCH", f"{CUSTOMERS}/nope"),
        ("DELETE", f"{SITES}/nope"),
        ("GET", "/tmf-api/nothing/v4/here"),
    ):
        response = client.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path)
        assert response.json()["@type"] == "Error"


def test_malformed_json_wrong_types_unknown_fields_are_tmf_400(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    cases = [
        dict(content=b'{"name": "x",', headers={"Content-Type": "application/json"}),
        dict(json={"name": 42}),
        dict(json={"name": "x", "customerType": "company"}),
        dict(json={"name": "x", "favouriteColour": "blue"}),
        dict(json={"name": "x", "country": "Britain"}),
        dict(json=["not", "an", "object"]),
    ]
    for case in cases:
        response = client.post(CUSTOMERS, **case)  # type: ignore[arg-type]
        assert response.status_code == 400, (case, response.text)
        body = response.json()
        assert set(body) >= {"code", "reason", "message", "status", "@type"}
    assert _count(session_factory, Customer) == 0


def test_wrong_method_is_tmf_405(client: TestClient) -> None:
    response = client.put(CUSTOMERS, json={})
    assert response.status_code == 405
    assert response.json()["status"] == "405"


def test_sites_and_contacts_belong_to_live_customers(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    customer = _customer(client)
    site = client.post(
        SITES,
        json={
            "customerId": customer["id"],
            "name": "HQ",
            "country": "gb",
            "city": "Leeds",
            "latitude": "53.8008",
            "longitude": "-1.5491",
        },
    )
    assert site.status_code == 201, site.text
    assert site.json()["country"] == "GB" and site.json()["latitude"] == "53.800800"
    bad_lat = client.post(
        SITES, json={"customerId": customer["id"], "name": "X", "country": "GB", "latitude": 91}
    )
    assert bad_lat.status_code == 400 and "latitude" in bad_lat.json()["message"]
    orphan = client.post(SITES, json={"customerId": "missing", "name": "X", "country": "GB"})
    assert orphan.status_code == 404 and "customerId" in orphan.json()["message"]
    contact = client.post(CONTACTS, json={"customerId": customer["id"], "name": "Ann", "email": "ann@x.io"})
    assert contact.status_code == 201
    bad_mail = client.post(CONTACTS, json={"customerId": customer["id"], "name": "Bob", "email": "bob"})
    assert bad_mail.status_code == 400
    listed = client.get(SITES, params={"customerId": customer["id"]})
    assert listed.headers["X-Total-Count"] == "1"
    assert _count(session_factory, Site) == 1


def test_delete_only_prospective_customers(client: TestClient) -> None:
    prospect = _customer(client, name="Prospect")
    assert client.delete(f"{CUSTOMERS}/{prospect['id']}").status_code == 204
    assert client.get(f"{CUSTOMERS}/{prospect['id']}").status_code == 404
    live = _customer(client, name="Live", status="active")
    refused = client.delete(f"{CUSTOMERS}/{live['id']}")
    assert refused.status_code == 409
    assert client.get(f"{CUSTOMERS}/{live['id']}").status_code == 200


def test_single_get_honours_fields(client: TestClient) -> None:
    created = _customer(client)
    body = client.get(f"{CUSTOMERS}/{created['id']}", params={"fields": "status"}).json()
    assert set(body) == {"id", "href", "@type", "status"}
