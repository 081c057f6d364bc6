"""Approval rules as data (API + YAML import) and the chains they produce. SQLite and PostgreSQL."""

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
    decide,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
)
from turnup.catalog.publish import publish_catalog
from turnup.kernel.audit import AuditEntry
from turnup.quoting.orm import ApprovalRule

RULES = f"{APPROVAL}/approvalRule"


def _chain(quote: dict[str, Any]) -> list[str]:
    return [a["name"] for a in quote["authorization"]]


def test_rule_crud_and_yaml_import_are_validated_and_audited(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    rule = post(
        client,
        RULES,
        {
            "name": "Legal for government",
            "conditions": {"segments": ["government"]},
            "chain": ["legal"],
            "priority": 50,
        },
    )
    assert rule["chain"] == ["legal"] and rule["active"] is True and rule["maxDiscountPercent"] is None
    duplicate = client.post(RULES, json={"name": "Legal for government", "chain": ["legal"]})
    assert duplicate.status_code == 409
    bad = client.post(RULES, json={"name": "x", "chain": ["finance", "finance"]})
    assert bad.status_code == 400
    patched = client.patch(RULES + "/" + rule["id"], json={"chain": ["finance", "legal"], "active": False})
    assert patched.status_code == 200 and patched.json()["chain"] == ["finance", "legal"]
    assert patched.json()["active"] is False

    # an import with a bad rule changes nothing and names the rule
    before = counts(session_factory)
    broken = client.post(
        f"{APPROVAL}/approvalRuleImport",
        json={"yaml": ("rules:\n  - {name: ok, chain: [finance]}\n  - {name: broken, chain: []}\n")},
    )
    assert broken.status_code == 400 and "rules[1].chain" in broken.json()["message"]
    not_yaml = client.post(f"{APPROVAL}/approvalRuleImport", json={"yaml": "rules: [unclosed"})
    assert not_yaml.status_code == 400 and not_yaml.json()["message"].startswith("yaml: not valid YAML")
    assert counts(session_factory) == before

    # a good import creates, and a second import updates by name
    first = post(client, f"{APPROVAL}/approvalRuleImport", {"yaml": RULES_YAML})
    assert len(first["created"]) == 2
    second = post(
        client,
        f"{APPROVAL}/approvalRuleImport",
        {"yaml": RULES_YAML.replace("maxDiscountPercent: 30", "maxDiscountPercent: 35")},
    )
    assert second["created"] == [] and sorted(second["updated"]) == sorted(first["created"])
    listed = client.get(RULES, params={"sort": "priority"}).json()
    assert [(r["name"], r["maxDiscountPercent"]) for r in listed] == [
        ("Discounts over 15%", "35"),
        ("Large deals", None),
        ("Legal for government", None),
    ]
    assert client.delete(RULES + "/" + rule["id"]).status_code == 204
    with session_factory() as s:
        actions = [
            a
            for (a,) in s.execute(select(AuditEntry.action).where(AuditEntry.resource_type == "approvalRule"))
        ]
        assert sorted(set(actions)) == ["approvalRule.create", "approvalRule.delete", "approvalRule.update"]
        assert s.scalar(select(ApprovalRule).where(ApprovalRule.name == "Legal for government")) is None


def test_conditions_select_the_chain(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client, cpe=50, handsets=50, ipv4_pool="10.20.0.0/20")
    post(
        client,
        f"{APPROVAL}/approvalRuleImport",
        {
            "yaml": RULES_YAML
            + """
  - name: Colocation needs legal
    priority: 30
    conditions: {offerings: [Hosted Voice Seat], segments: [enterprise]}
    chain: [legal]
"""
        },
    )
    customer_id, site_id = customer_and_site(client)
    bundle = offerings["Fibre + Voice"]

    def priced(**kw: Any) -> dict[str, Any]:
        quote = post(client, QUOTES, quote_body(customer_id, site_id, bundle, **kw))
        return post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)

    # within the catalog's 12% sales discretion: no approval
    assert priced(discount="12")["approvalStatus"] == "notRequired"
    # over the catalog threshold but under every rule: the default chain
    q = priced(discount="14")
    assert _chain(q) == ["salesManager"] and "catalog threshold 12%" in q["authorization"][0]["reason"][0]
    # over 15%: sales manager then finance
    assert _chain(priced(discount="16")) == ["salesManager", "finance"]
    # a large deal (20 bundles over 120 months) adds legal after finance, each role once
    big = priced(discount="16", quantity=20, term=120)
    assert _chain(big) == ["salesManager", "finance", "legal"]
    assert big["authorization"][2]["rule"] == ["Large deals"]
    # product + segment conditions must both hold
    assert priced()["approvalStatus"] == "notRequired"  # segment smb does not match
    enterprise = client.patch(
        f"/tmf-api/customerManagement/v4/customer/{customer_id}", json={"segment": "enterprise"}
    )
    assert enterprise.status_code == 200
    assert _chain(priced()) == ["legal"]


def test_approvals_are_audited_with_comments(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    post(client, f"{APPROVAL}/approvalRuleImport", {"yaml": RULES_YAML})
    customer_id, site_id = customer_and_site(client)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offerings["Fibre + Voice"], discount="20"))
    quote = post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)
    queue = client.get(
        f"{APPROVAL}/approvalRequest", params={"state": "pending", "quoteId": quote["id"]}
    ).json()
    assert [(r["step"], r["name"]) for r in queue] == [(1, "salesManager"), (2, "finance")]
    decide(client, quote["id"], "salesManager", comment="key account")
    decide(client, quote["id"], "finance", comment="within budget")
    with session_factory() as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.comment, AuditEntry.actor)
            .where(AuditEntry.resource_id == quote["id"], AuditEntry.action.like("quote.approval.%"))
            .order_by(AuditEntry.at, AuditEntry.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("quote.approval.approved", "key account", "user:approver-salesManager"),
        ("quote.approval.approved", "within budget", "user:approver-finance"),
    ]


def test_margin_condition_uses_the_offerings_monthly_cost(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        publish_catalog(
            s,
            {
                "catalog": "margins",
                "productSpecifications": [{"name": "Plain link", "deliveryRequirements": {}}],
                "productOfferings": [
                    {
                        "name": "Thin link",
                        "productSpecifications": ["Plain link"],
                        "reportingAttributes": {"monthlyCost": "90.00"},
                        "prices": [
                            {
                                "name": "monthly",
                                "priceType": "recurring",
                                "recurringChargePeriodType": "month",
                                "price": {"unit": "GBP", "value": "100.00"},
                            }
                        ],
                        "discountRules": [
                            {"kind": "approvalThreshold", "maxDiscountPercentWithoutApproval": 50}
                        ],
                    }
                ],
            },
            "test",
        )
        from turnup.catalog.orm import ProductOffering

        offering_id = s.scalar(select(ProductOffering.id).where(ProductOffering.name == "Thin link"))
    post(
        client,
        RULES,
        {"name": "Thin margins", "conditions": {"marginPercentBelow": 15}, "chain": ["finance"]},
    )
    customer_id, site_id = customer_and_site(client)
    healthy = post(
        client,
        QUOTES,
        quote_body(customer_id, site_id, offering_id, characteristics=[], instantSyncQuote=True),
    )
    assert healthy["marginPercent"] == "10.00" and _chain(healthy) == ["finance"]
    assert "margin 10% is below 15%" in healthy["authorization"][0]["reason"][0]
