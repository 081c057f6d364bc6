"""Issue 15 item 3: a portal user (role ``customer``) sees only their own customer's rows.

Two onboarded customers, A and B, each with a portal user and one row of every resource that carries
customer data (customer, contact, site, quote, agreement, product order, service). For every endpoint that
confines (found from the route table), A's user lists only A's rows and gets 404 for B's, exactly as for an
id that does not exist; every other endpoint answers A's user 403 (the grid in test_authz_matrix.py).
SQLite and PostgreSQL.
"""

from __future__ import annotations

import socket
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.accounts.orm import Contact, Site
from turnup.agreements.orm import Agreement
from turnup.api.deps import is_confinable
from turnup.api.introspect import dependency_calls, iter_api_routes
from turnup.kernel import clock
from turnup.kernel.ids import new_id
from turnup.ordering.orm import ProductOrder
from turnup.quoting.orm import Quote
from turnup.security import create_api_token
from turnup.service_inventory.orm import Service

ONBOARDING = "/tmf-api/turnupOnboarding/v1/onboarding"
CONFINED = {
    "/tmf-api/customerManagement/v4/customer": "customer",
    "/tmf-api/customerManagement/v4/contact": "contact",
    "/tmf-api/geographicSiteManagement/v4/geographicSite": "site",
    "/tmf-api/quoteManagement/v4/quote": "quote",
    "/tmf-api/agreementManagement/v4/agreement": "agreement",
    "/tmf-api/productOrderingManagement/v4/productOrder": "order",
    "/tmf-api/serviceInventory/v4/service": "service",
}


@pytest.fixture
def no_smtp(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TURNUP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TURNUP_SMTP_PORT", str(port))


def _onboard(client: TestClient, name: str, email: str) -> str:
    response = client.post(
        ONBOARDING,
        json={
            "customer": {"name": name, "country": "GB", "segment": "smb"},
            "sites": [{"name": f"{name} HQ", "city": "Leeds", "country": "GB"}],
            "primaryContact": {"name": f"{name} contact", "email": email},
        },
    )
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


def _rows_for(s: Session, customer_id: str, n: int) -> dict[str, str]:
    """One quote, agreement, order and service of the customer (written directly: their flows are tested
    elsewhere), with its onboarded contact and site."""
    now = clock.now()
    site_id = s.scalars(select(Site.id).where(Site.customer_id == customer_id)).one()
    contact_id = s.scalars(select(Contact.id).where(Contact.customer_id == customer_id)).one()
    quote = Quote(
        id=new_id(), customer_id=customer_id, state="inProgress", version=1, contract_term_months=12,
        quote_date=now, valid_until=now, compliance_hold=False, created_at=now, updated_at=now,
    )  # fmt: skip
    agreement = Agreement(
        id=new_id(), document_number=f"AGR-CONF-{n}", name="Agreement", agreement_type="commercial",
        status="signed", customer_id=customer_id, term_months=12, start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31), renewal="none", renewal_term_months=12, notice_period_days=30,
        notice_date=date(2026, 12, 1), created_at=now, updated_at=now,
    )  # fmt: skip
    order = ProductOrder(
        id=new_id(),
        state="completed",
        customer_id=customer_id,
        order_date=now,
        created_at=now,
        updated_at=now,
    )
    service = Service(
        id=new_id(), name="Business Fibre Access", state="active", customer_id=customer_id, site_id=site_id,
        offering_id="off", offering_name="Business Fibre 1G", adapter="fake", characteristics={},
        resources=[], created_at=now, updated_at=now,
    )  # fmt: skip
    s.add_all([quote, agreement, order, service])
    s.commit()
    return {
        "customer": customer_id,
        "contact": contact_id,
        "site": site_id,
        "quote": quote.id,
        "agreement": agreement.id,
        "order": order.id,
        "service": service.id,
    }


@pytest.fixture
def two_customers(
    client: TestClient, session_factory: sessionmaker[Session], no_smtp: None
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(A's rows, B's rows, portal headers by customer letter)."""
    a_id = _onboard(client, "Alder Ltd", "pat@alder.test")
    b_id = _onboard(client, "Birch Ltd", "kim@birch.test")
    with session_factory() as s:
        a, b = _rows_for(s, a_id, 1), _rows_for(s, b_id, 2)
        headers = {
            "A": {"Authorization": f"Bearer {create_api_token(s, username='pat@alder.test')}"},
            "B": {"Authorization": f"Bearer {create_api_token(s, username='kim@birch.test')}"},
        }
    return a, b, headers


def test_the_confining_endpoints_are_exactly_the_customer_data_lists_and_gets(app: Any) -> None:
    confining = set()
    for info in iter_api_routes(app):
        if any(is_confinable(c) for c in dependency_calls(info.route.dependant)):
            confining.add((",".join(sorted(info.methods)), info.path))
    expected = {("GET", path) for path in CONFINED} | {("GET", path + "/{item_id}") for path in CONFINED}
    assert confining == expected


def test_a_portal_user_lists_and_gets_only_their_own_rows(
    client: TestClient, two_customers: tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]
) -> None:
    a, b, headers = two_customers
    for mine, theirs, me in ((a, b, headers["A"]), (b, a, headers["B"])):
        for path, kind in CONFINED.items():
            # the list holds only my row (staff see both)
            listed = client.get(path, headers=me)
            assert listed.status_code == 200, (path, listed.text)
            assert [r["id"] for r in listed.json()] == [mine[kind]], path
            assert listed.headers["X-Total-Count"] == "1"
            assert {r["id"] for r in client.get(path).json()} >= {mine[kind], theirs[kind]}
            # a filter naming the other customer's row finds nothing
            assert client.get(path, params={"id": theirs[kind]}, headers=me).json() == []
            # my row: 200; theirs: 404 exactly like an unknown id
            assert client.get(f"{path}/{mine[kind]}", headers=me).status_code == 200
            other = client.get(f"{path}/{theirs[kind]}", headers=me)
            unknown = client.get(f"{path}/nope", headers=me)
            assert other.status_code == 404 and unknown.status_code == 404, path
            assert other.json()["message"] == unknown.json()["message"].replace("'nope'", f"'{theirs[kind]}'")


def test_a_portal_user_cannot_reach_customer_data_elsewhere(
    client: TestClient, two_customers: tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]
) -> None:
    a, b, headers = two_customers
    me = headers["A"]
    for path in (
        f"/tmf-api/quoteManagement/v4/quote/{b['quote']}/version",
        f"/tmf-api/agreementManagement/v4/agreement/{b['agreement']}/document",
        f"/tmf-api/productOrderingManagement/v4/productOrder/{b['order']}/plan",
        "/tmf-api/serviceOrdering/v4/serviceOrder",
        "/tmf-api/productInventory/v4/product",
        "/tmf-api/stock/v4/stockUnit",
        "/tmf-api/turnupOnboarding/v1/onboarding",
        "/tmf-api/turnupApproval/v1/approvalRequest",
        "/customers",
    ):
        assert client.get(path, headers=me).status_code == 403, path
    # writes to confined resources stay refused
    patched = client.patch(f"/tmf-api/customerManagement/v4/customer/{a['customer']}", json={}, headers=me)
    assert patched.status_code == 403
    # and their own account page still answers
    mine = client.get("/tmf-api/turnupOnboarding/v1/myAccount", headers=me)
    assert mine.status_code == 200 and mine.json()["id"] == a["customer"]


def test_a_customer_role_user_without_a_linked_account_gets_403(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from turnup.security import create_user

    with session_factory() as s:
        create_user(s, username="loose", roles=["customer"])
        token = create_api_token(s, username="loose")
    response = client.get(
        "/tmf-api/customerManagement/v4/customer", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert response.json()["message"] == "no customer account is linked to this user"
