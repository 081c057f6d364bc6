"""The audit trail through HTTP on SQLite and PostgreSQL: each request's id lands in its audit rows and is
echoed; CRUD PATCH/DELETE, catalog PATCH and approval decisions record before and after; the audit API
searches by resource, actor and time with TMF paging and needs ``audit:read``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    APPROVAL,
    QUOTES,
    RULES_YAML,
    customer_and_site,
    decide,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.kernel import audit, clock
from turnup.kernel.audit import AuditEntry

CUSTOMERS = "/tmf-api/customerManagement/v4/customer"
CATEGORIES = "/tmf-api/productCatalogManagement/v4/category"
ENTRIES = "/tmf-api/turnupAudit/v1/auditEntry"


def _rows(factory: sessionmaker[Session], resource_id: str) -> list[AuditEntry]:
    with factory() as s:
        return list(
            s.scalars(
                select(AuditEntry).where(AuditEntry.resource_id == resource_id).order_by(AuditEntry.seq)
            )
        )


def test_the_request_id_is_echoed_and_recorded_in_the_audit_rows(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # Given a caller's request id
    created = client.post(CUSTOMERS, json={"name": "Acme"}, headers={"X-Request-ID": "req-42.a:b"})
    assert created.status_code == 201
    assert created.headers["X-Request-ID"] == "req-42.a:b"
    assert [(r.action, r.request_id) for r in _rows(session_factory, created.json()["id"])] == [
        ("customer.create", "req-42.a:b")
    ]

    # Without one (or with one that is too long or malformed) the server makes one, and records that
    for given in (None, "x" * 65, "bad id with spaces"):
        headers = {} if given is None else {"X-Request-ID": given}
        response = client.patch(
            f"{CUSTOMERS}/{created.json()['id']}", json={"segment": "smb"}, headers=headers
        )
        assert response.status_code == 200
        made = response.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        newest = _rows(session_factory, created.json()["id"])[-1]
        assert (newest.action, newest.request_id) == ("customer.update", made)

    # an error answer carries it too, and writes no audit row
    missing = client.patch(f"{CUSTOMERS}/nope", json={"segment": "smb"}, headers={"X-Request-ID": "r-404"})
    assert missing.status_code == 404 and missing.headers["X-Request-ID"] == "r-404"
    with session_factory() as s:
        assert s.scalars(select(AuditEntry).where(AuditEntry.request_id == "r-404")).all() == []

    # work outside a request has no request id
    with session_factory() as s:
        entry = audit.record(s, actor="cli", action="x", resource_type="thing", resource_id="t1")
        s.commit()
        assert entry.request_id is None


def test_a_crud_patch_and_delete_record_before_and_after(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    customer = post(client, CUSTOMERS, {"name": "Before Ltd", "segment": "smb"})
    patched = client.patch(f"{CUSTOMERS}/{customer['id']}", json={"name": "After Ltd"})
    assert patched.status_code == 200
    update = [r for r in _rows(session_factory, customer["id"]) if r.action == "customer.update"]
    assert len(update) == 1
    assert update[0].before is not None and update[0].after is not None
    assert (update[0].before["name"], update[0].after["name"]) == ("Before Ltd", "After Ltd")
    assert update[0].before["segment"] == update[0].after["segment"] == "smb"
    assert update[0].after == client.get(f"{CUSTOMERS}/{customer['id']}").json()

    # a refused PATCH (bad input) records nothing
    bad = client.patch(f"{CUSTOMERS}/{customer['id']}", json={"name": ""})
    assert bad.status_code == 400
    assert len(_rows(session_factory, customer["id"])) == 2

    gone = client.delete(f"{CUSTOMERS}/{customer['id']}")
    assert gone.status_code == 204
    deleted = _rows(session_factory, customer["id"])[-1]
    assert deleted.action == "customer.delete"
    assert deleted.before is not None and deleted.before["name"] == "After Ltd" and deleted.after is None

    with session_factory() as s:
        assert audit.verify(s).ok


def test_a_catalog_patch_records_before_and_after(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    category = post(client, CATEGORIES, {"name": "Drafts"})
    patched = client.patch(f"{CATEGORIES}/{category['id']}", json={"name": "Connectivity"})
    assert patched.status_code == 200
    [row] = [r for r in _rows(session_factory, category["id"]) if r.action == "category.update"]
    assert row.before is not None and row.after is not None
    assert (row.before["name"], row.after["name"]) == ("Drafts", "Connectivity")
    assert row.details == {"name": "Connectivity"}


def test_an_approval_decision_records_the_step_before_and_after(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    post(client, f"{APPROVAL}/approvalRuleImport", {"yaml": RULES_YAML})
    customer_id, site_id = customer_and_site(client)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"], discount="20"))
    quote = post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    decide(client, quote["id"], "salesManager", comment="key account")
    [row] = [r for r in _rows(session_factory, quote["id"]) if r.action == "quote.approval.approved"]
    assert row.before is not None and row.after is not None
    assert (row.before["role"], row.before["state"], row.before["decidedBy"]) == (
        "salesManager",
        "pending",
        None,
    )
    assert (row.after["state"], row.after["decidedBy"], row.after["comment"]) == (
        "approved",
        "user:approver-salesManager",
        "key account",
    )


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [d["resourceId"] for d in response.json()]


def test_the_audit_api_searches_by_resource_actor_and_time(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    start = clock.now().replace(microsecond=0) + timedelta(days=1)
    with session_factory() as s:
        for i, (actor, rtype, rid) in enumerate(
            [("user:alice", "customer", "c1"), ("user:bob", "customer", "c1"), ("user:alice", "quote", "q1")]
        ):
            clock.freeze(start + timedelta(minutes=i))
            audit.record(s, actor=actor, action=f"{rtype}.update", resource_type=rtype, resource_id=rid)
        s.commit()
    clock.reset()

    by_resource = client.get(ENTRIES, params={"resourceType": "customer", "resourceId": "c1"})
    assert [d["actor"] for d in by_resource.json()] == ["user:bob", "user:alice"]  # newest first
    assert by_resource.headers["X-Total-Count"] == "2"
    assert _ids(client.get(ENTRIES, params={"actor": "user:alice", "sort": "at"})) == ["c1", "q1"]
    window = {
        "from": (start + timedelta(minutes=1)).isoformat(),
        "to": (start + timedelta(minutes=2)).isoformat(),
    }
    assert [d["actor"] for d in client.get(ENTRIES, params=window).json()] == ["user:bob"]
    assert _ids(client.get(ENTRIES, params={"from": start.isoformat(), "limit": 1, "offset": 1})) == ["c1"]

    one = client.get(ENTRIES, params={"resourceId": "q1"}).json()[0]
    got = client.get(f"{ENTRIES}/{one['id']}")
    assert got.status_code == 200 and got.json() == one
    assert one["@type"] == "AuditEntry" and one["href"].endswith(f"/auditEntry/{one['id']}")
    assert one["entryHash"] is not None and one["seq"] is not None
    assert client.get(f"{ENTRIES}/{one['id']}", params={"fields": "actor"}).json() == {
        "id": one["id"],
        "href": one["href"],
        "@type": "AuditEntry",
        "actor": "user:alice",
    }

    # bad input: a TMF Error naming the parameter
    bad = client.get(ENTRIES, params={"from": "yesterday"})
    assert bad.status_code == 400 and "from" in bad.json()["message"]
    naive = client.get(ENTRIES, params={"to": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and "timezone" in naive.json()["message"]
    unknown = client.get(ENTRIES, params={"colour": "red"})
    assert unknown.status_code == 400
    assert client.get(f"{ENTRIES}/nope").status_code == 404


def test_the_audit_api_needs_audit_read(
    client: TestClient, anon_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from turnup.security import create_api_token, create_user

    with session_factory() as s:
        create_user(s, username="portal", password="Marigold-Thunder-Ferry-31", roles=["customer"])
        token = create_api_token(s, username="portal")
    refused = anon_client.get(ENTRIES, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and "audit:read" in refused.json()["message"]
    assert anon_client.get(ENTRIES).status_code == 401
    assert client.get(ENTRIES).status_code == 200
