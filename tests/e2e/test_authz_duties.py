"""Issue 15 item 3, separation of duties (the findings): approval steps are bound to roles, a user decides
at most one step of a chain and never a quote they created or changed; the operator role may not change or
delete approval rules nor delete customers. SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    APPROVAL,
    QUOTES,
    RULES_YAML,
    counts,
    customer_and_site,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.accounts.orm import Customer
from turnup.quoting.orm import ApprovalRule, QuoteApproval
from turnup.security import create_api_token, create_user

RULES = f"{APPROVAL}/approvalRule"
DECISION = f"{APPROVAL}/approvalDecision"
CUSTOMERS = "/tmf-api/customerManagement/v4/customer"


def _users(factory: sessionmaker[Session], **users: list[str]) -> dict[str, dict[str, str]]:
    """Create users with the given roles; their bearer headers by username."""
    headers = {}
    with factory() as s:
        for name, roles in users.items():
            create_user(s, username=name, roles=roles)
            headers[name] = {"Authorization": f"Bearer {create_api_token(s, username=name)}"}
    return headers


def _pending_quote(
    client: TestClient, factory: sessionmaker[Session], creator: dict[str, str] | None = None
) -> Any:
    """A priced Fibre + Voice quote at 20% off: its chain is salesManager then finance."""
    offerings = publish_demo_catalog(factory)
    seed_inventory(client)
    post(client, f"{APPROVAL}/approvalRuleImport", {"yaml": RULES_YAML})
    customer_id, site_id = customer_and_site(client)
    body = quote_body(customer_id, site_id, offerings["Fibre + Voice"], discount="20")
    quote = client.post(QUOTES, json=body, headers=creator or {})
    assert quote.status_code == 201, quote.text
    priced = client.post(f"{QUOTES}/{quote.json()['id']}/price", headers=creator or {})
    assert priced.status_code == 200, priced.text
    doc = priced.json()
    assert [(a["name"], a["state"]) for a in doc["authorization"]] == [
        ("salesManager", "pending"),
        ("finance", "pending"),
    ]
    return doc


def _steps(factory: sessionmaker[Session], quote_id: str) -> list[tuple[str, str, str | None]]:
    with factory() as s:
        rows = s.scalars(
            select(QuoteApproval).where(QuoteApproval.quote_id == quote_id).order_by(QuoteApproval.step)
        )
        return [(a.role, a.state, a.decided_by) for a in rows]


def _decide(client: TestClient, quote_id: str, headers: dict[str, str], **extra: Any) -> Any:
    body = {"quoteId": quote_id, "decision": "approved", "comment": "ok", **extra}
    return client.post(DECISION, json=body, headers=headers)


def test_admin_cannot_approve_any_step_let_alone_two(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # given a quote waiting for the sales manager then finance (created by another user)
    users = _users(session_factory, seller=["sales"])
    quote = _pending_quote(client, session_factory, creator=users["seller"])
    before = counts(session_factory)
    # when the admin decides the first step, naming its role as the old API let it: refused
    for claimed in ({"role": "salesManager"}, {}):
        refused = client.post(
            DECISION, json={"quoteId": quote["id"], "decision": "approved", "comment": "x", **claimed}
        )
        assert refused.status_code == 403
        assert refused.json()["message"] == (
            f"step 1 (salesManager) of quote {quote['id']!r} is decided by role sales_manager; "
            "your roles: admin"
        )
    # then nothing changed
    assert counts(session_factory) == before
    assert _steps(session_factory, quote["id"]) == [
        ("salesManager", "pending", None),
        ("finance", "pending", None),
    ]


def test_one_user_decides_at_most_one_step_of_a_chain(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # given a user holding both approver roles, and a finance user
    users = _users(session_factory, both=["sales_manager", "finance"], fiona=["finance"])
    quote = _pending_quote(client, session_factory)
    # when the user with both roles approves step 1: fine
    first = _decide(client, quote["id"], users["both"])
    assert first.status_code == 201 and first.json()["state"] == "pending"
    # and then tries step 2 (which one of their roles is bound to): refused, nothing changes
    before = counts(session_factory)
    second = _decide(client, quote["id"], users["both"], role="finance")
    assert second.status_code == 403
    assert second.json()["message"] == (
        f"you already decided step 1 (salesManager) of quote {quote['id']!r}; "
        "one user decides at most one step of a chain"
    )
    rejecting = _decide(client, quote["id"], users["both"], decision="rejected")
    assert rejecting.status_code == 403
    assert counts(session_factory) == before
    # a different finance user completes the chain
    done = _decide(client, quote["id"], users["fiona"])
    assert done.status_code == 201 and done.json()["state"] == "approved"
    assert _steps(session_factory, quote["id"]) == [
        ("salesManager", "approved", "user:both"),
        ("finance", "approved", "user:fiona"),
    ]


def test_nobody_approves_their_own_quote(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    # given a sales manager who created and priced the quote
    users = _users(session_factory, sam=["sales_manager"], other=["sales_manager"])
    quote = _pending_quote(client, session_factory, creator=users["sam"])
    before = counts(session_factory)
    # when they approve its sales manager step: refused
    own = _decide(client, quote["id"], users["sam"])
    assert own.status_code == 403
    assert (
        own.json()["message"] == f"you created or changed quote {quote['id']!r}; its approvals are for others"
    )
    assert counts(session_factory) == before
    # another sales manager may
    assert _decide(client, quote["id"], users["other"]).status_code == 201


def test_a_step_is_decided_only_by_its_bound_role(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    users = _users(session_factory, fiona=["finance"], appr=["approver"], sam=["sales_manager"])
    quote = _pending_quote(client, session_factory)
    # finance cannot decide the sales manager step, whatever it claims
    wrong = _decide(client, quote["id"], users["fiona"])
    assert (
        wrong.status_code == 403
        and "is decided by role sales_manager; your roles: finance" in wrong.json()["message"]
    )
    claimed = _decide(client, quote["id"], users["fiona"], role="salesManager")
    assert claimed.status_code == 403
    # the legacy approver role reads and calls the API, but is bound to no step
    assert _decide(client, quote["id"], users["appr"]).status_code == 403
    # a role naming a step other than the next one is still an out-of-order 409
    early = _decide(client, quote["id"], users["sam"], role="finance")
    assert early.status_code == 409 and "is for salesManager, not finance" in early.json()["message"]
    assert _steps(session_factory, quote["id"])[0] == ("salesManager", "pending", None)
    assert _decide(client, quote["id"], users["sam"]).status_code == 201


def test_a_rule_chain_must_name_steps_some_role_decides(client: TestClient) -> None:
    refused = client.post(RULES, json={"name": "Nobody decides", "chain": ["finance", "cfoOfTheMoon"]})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("chain[1]: no role decides approval step 'cfoOfTheMoon'")
    assert client.get(RULES).json() == []


def test_operator_may_not_change_or_delete_approval_rules_nor_delete_customers(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # given a rule and a customer, and users of the operator, product and customer success roles
    rule = post(client, RULES, {"name": "Legal for government", "chain": ["legal"]})
    customer = post(client, CUSTOMERS, {"name": "Keep Me Ltd", "country": "GB"})
    users = _users(session_factory, olga=["operator"], pat=["product"], cass=["customer_success"])
    # when the operator patches or deletes the rule, imports rules, or deletes the customer: 403
    op = users["olga"]
    assert client.patch(f"{RULES}/{rule['id']}", json={"active": False}, headers=op).status_code == 403
    assert client.delete(f"{RULES}/{rule['id']}", headers=op).status_code == 403
    imported = client.post(f"{APPROVAL}/approvalRuleImport", json={"yaml": "rules: []"}, headers=op)
    assert imported.status_code == 403
    deleted = client.delete(f"{CUSTOMERS}/{customer['id']}", headers=op)
    assert deleted.status_code == 403 and "accounts:delete" in deleted.json()["message"]
    # then both are unchanged; the operator still edits customers
    with session_factory() as s:
        stored = s.get(ApprovalRule, rule["id"])
        assert stored is not None and stored.active is True
        assert s.get(Customer, customer["id"]) is not None
    assert (
        client.patch(f"{CUSTOMERS}/{customer['id']}", json={"segment": "smb"}, headers=op).status_code == 200
    )
    # product administers rules; customer success deletes customers
    assert (
        client.patch(f"{RULES}/{rule['id']}", json={"active": False}, headers=users["pat"]).status_code == 200
    )
    assert client.delete(f"{RULES}/{rule['id']}", headers=users["pat"]).status_code == 204
    assert client.delete(f"{CUSTOMERS}/{customer['id']}", headers=users["cass"]).status_code == 204
