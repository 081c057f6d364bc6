"""Quote unhappy paths through the HTTP API: expiry, rejection, cancellation, compliance hold, bad input.

Each refusal is a TMF Error naming the line and the reason, and leaves every table as it was.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e.test_quote_to_order import (
    APPROVAL,
    QUOTES,
    RULES_YAML,
    SIGNER,
    STOCK,
    counts,
    customer_and_site,
    dbos_cleanup,
    decide,
    logical_state,
    post,
    publish_demo_catalog,
    quote_body,
    seed_inventory,
    stock_status,
)
from turnup.kernel import clock

__all__ = ["dbos_cleanup"]
COMPLIANCE = "/tmf-api/turnupCompliance/v1"


def _available(client: TestClient, sku: str) -> int:
    result = post(client, f"{STOCK}/queryProductStock", {"skus": [sku], "locations": ["WH-LEEDS"]})[
        "searchResult"
    ]
    return result[0]["availableQuantity"]["amount"]


def _setup(
    client: TestClient, factory: sessionmaker[Session], **inventory: Any
) -> tuple[dict[str, str], str, str]:
    offerings = publish_demo_catalog(factory)
    seed_inventory(client, **inventory)
    post(client, f"{APPROVAL}/approvalRuleImport", {"yaml": RULES_YAML})
    customer_id, site_id = customer_and_site(client)
    return offerings, customer_id, site_id


def _priced(
    client: TestClient, customer_id: str, site_id: str, offering_id: str, **kw: Any
) -> dict[str, Any]:
    quote = post(client, QUOTES, quote_body(customer_id, site_id, offering_id, **kw))
    return post(client, f"{QUOTES}/{quote['id']}/price", {}, 200)


def test_expiry_refuses_acceptance_and_the_sweep_releases_holds(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    offerings, customer_id, site_id = _setup(client, session_factory)
    end = (clock.now() + timedelta(days=2)).isoformat()
    quote = _priced(client, customer_id, site_id, offerings["Fibre + Voice"], validFor={"endDateTime": end})
    assert quote["state"] == "approved" and quote["approvalStatus"] == "notRequired"
    assert _available(client, "CPE-NW-FTTP-R1") == 4

    # when the quote's validity has passed, acceptance is refused and nothing changes
    clock.advance(timedelta(days=3))
    before = counts(session_factory)
    refused = client.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER)
    assert refused.status_code == 409
    assert refused.json()["reason"] == "Quote expired" and "expired at" in refused.json()["message"]
    assert counts(session_factory) == before
    # the stock is already free again for others (an expired hold counts as free)
    assert _available(client, "CPE-NW-FTTP-R1") == 5

    # when the sweep runs, the quote is cancelled as expired and its holds are released
    swept = post(client, f"{QUOTES}/sweepExpired", {}, 200)
    assert swept == {"expired": [quote["id"]]}
    after = client.get(f"{QUOTES}/{quote['id']}").json()
    assert after["state"] == "cancelled" and after["stateReason"].startswith("expired at ")
    assert after["holds"]["state"] == "released"
    assert stock_status(session_factory, quote["holds"]["stockReservationId"]) == "expired"
    assert logical_state(session_factory, quote["holds"]["resourceReservationId"]) == "released"
    assert post(client, f"{QUOTES}/sweepExpired", {}, 200) == {"expired": []}


def test_rejection_by_an_approver_releases_holds_and_is_final(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    offerings, customer_id, site_id = _setup(client, session_factory)
    quote = _priced(client, customer_id, site_id, offerings["Fibre + Voice"], discount="20")
    assert quote["state"] == "pending"

    rejected = decide(client, quote["id"], "salesManager", "rejected", comment="discount too deep")
    assert rejected["state"] == "rejected" and rejected["approvalStatus"] == "rejected"
    assert rejected["stateReason"] == "rejected by salesManager: discount too deep"
    assert [(a["name"], a["state"]) for a in rejected["authorization"]] == [
        ("salesManager", "rejected"),
        ("finance", "superseded"),
    ]
    assert stock_status(session_factory, quote["holds"]["stockReservationId"]) == "released"
    assert logical_state(session_factory, quote["holds"]["resourceReservationId"]) == "released"
    assert _available(client, "CPE-NW-FTTP-R1") == 5
    audit = [
        e for e in client.get("/tmf-api/quoteManagement/v4/quote/" + quote["id"]).json()["authorization"]
    ]
    assert audit[0]["approver"] == "user:approver-salesManager" and audit[0]["comment"] == "discount too deep"

    before = counts(session_factory)
    again = decide(client, quote["id"], "finance", status=409)
    assert "is rejected; only a pending quote awaits approval" in again["message"]
    accept = client.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER)
    assert accept.status_code == 409 and "rejected quote cannot become accepted" in accept.json()["message"]
    assert counts(session_factory) == before


def test_customer_rejection_and_cancellation_release_holds_and_illegal_transitions_are_409(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    offerings, customer_id, site_id = _setup(client, session_factory)
    first = _priced(client, customer_id, site_id, offerings["Fibre + Voice"])
    second = _priced(client, customer_id, site_id, offerings["Fibre + Voice"])
    assert _available(client, "CPE-NW-FTTP-R1") == 3

    # a quote's state is set by pricing and approval, not by request
    before = counts(session_factory)
    for state in ("approved", "pending", "inProgress", "accepted"):
        response = client.patch(f"{QUOTES}/{first['id']}", json={"state": state})
        if state == first["state"]:
            assert response.status_code == 200
        else:
            assert response.status_code == 409, state
    assert counts(session_factory) == before

    declined = client.patch(
        f"{QUOTES}/{first['id']}", json={"state": "rejected", "stateReason": "too expensive"}
    )
    assert declined.status_code == 200 and declined.json()["state"] == "rejected"
    cancelled = client.patch(f"{QUOTES}/{second['id']}", json={"state": "cancelled"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert _available(client, "CPE-NW-FTTP-R1") == 5
    for quote in (first, second):
        assert stock_status(session_factory, quote["holds"]["stockReservationId"]) == "released"

    before = counts(session_factory)
    again = client.patch(f"{QUOTES}/{second['id']}", json={"state": "cancelled"})
    assert (
        again.status_code == 409
        and again.json()["message"] == "state: a cancelled quote cannot become cancelled"
    )
    edit = client.patch(f"{QUOTES}/{first['id']}", json={"description": "changed"})
    assert edit.status_code == 409 and edit.json()["message"] == "a rejected quote cannot be changed"
    price = client.post(f"{QUOTES}/{first['id']}/price")
    assert price.status_code == 409
    assert counts(session_factory) == before


def test_a_screening_hit_holds_the_quote_until_the_case_is_cleared(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    # a name close to a (synthetic) screening list entry
    customer_id, site_id = customer_and_site(client, name="Zorblax Dynamics, L.L.C.")
    quote = _priced(client, customer_id, site_id, offerings["Fibre + Voice"])

    # the deal is not lost: priced, resources held, approved commercially, but on compliance hold
    assert quote["state"] == "approved"
    hold = quote["complianceHold"]
    assert hold["held"] is True and hold["screening"] == "held" and hold["caseId"]
    assert any("Zorblax Dynamics LLC" in reason for reason in hold["reasons"])
    assert quote["holds"]["state"] == "held"

    before = counts(session_factory)
    refused = client.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER)
    assert refused.status_code == 409 and refused.json()["reason"] == "Compliance hold"
    assert "Zorblax Dynamics LLC" in refused.json()["message"]
    assert counts(session_factory) == before

    # a reviewer clears the case (false positive) and the customer can accept
    cleared = post(
        client,
        f"{COMPLIANCE}/screeningCase/{hold['caseId']}/clear",
        {"reason": "different company, verified registration number"},
        200,
    )
    assert cleared["state"] == "cleared"
    accepted = post(client, f"{QUOTES}/{quote['id']}/accept", SIGNER, 200)
    assert accepted["state"] == "accepted" and accepted["complianceHold"]["held"] is False
    assert accepted["productOrder"]["id"]


def test_bad_input_names_the_line_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session], dbos_cleanup: None
) -> None:
    offerings, customer_id, site_id = _setup(client, session_factory, cpe=1)
    bundle = offerings["Fibre + Voice"]

    # a discount beyond any rule's maximum (30%)
    quote = post(client, QUOTES, quote_body(customer_id, site_id, bundle, discount="40"))
    before = counts(session_factory)
    response = client.post(f"{QUOTES}/{quote['id']}/price")
    assert response.status_code == 400
    assert response.json()["message"] == (
        "quoteItem[0].discountPercent: 40% on 'Fibre + Voice' exceeds the largest "
        "discount any approval rule can approve (30%)"
    )
    assert counts(session_factory) == before

    # unknown characteristics
    response = client.post(
        QUOTES,
        json=quote_body(customer_id, site_id, bundle, characteristics=[{"name": "colour", "value": "red"}]),
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith(
        "quoteItem[0].product.productCharacteristic[0].name: unknown characteristic 'colour' for offering "
        "'Fibre + Voice'; allowed: "
    )
    assert counts(session_factory) == before

    # a quote that holds the last router, and a second one that cannot get it
    ok = _priced(client, customer_id, site_id, bundle)
    other = post(client, QUOTES, quote_body(customer_id, site_id, bundle))
    before = counts(session_factory)
    short = client.post(f"{QUOTES}/{other['id']}/price")
    assert short.status_code == 409
    assert short.json()["message"] == (
        "insufficient stock to hold the quote: quoteItem[0] (Fibre + Voice): SKU CPE-NW-FTTP-R1 in region "
        "Yorkshire: requested 1, available 0"
    )
    assert counts(session_factory) == before
    assert client.get(f"{QUOTES}/{other['id']}").json()["holds"]["state"] is None

    # holds lost: somebody released the stock hold behind the quote's back
    released = client.patch(
        f"{STOCK}/reserveProductStock/{ok['holds']['stockReservationId']}",
        json={"reservationState": "cancelled"},
    )
    assert released.status_code == 200, released.text
    before = counts(session_factory)
    lost = client.post(f"{QUOTES}/{ok['id']}/accept", json=SIGNER)
    assert lost.status_code == 409 and lost.json()["reason"] == "Holds lost"
    assert lost.json()["message"].startswith("quoteItem[0] (Fibre + Voice): holds were lost (the stock hold ")
    assert counts(session_factory) == before

    # re-pricing takes fresh holds; then the offering is retired before acceptance
    repriced = post(client, f"{QUOTES}/{ok['id']}/price", {}, 200)
    assert repriced["holds"]["state"] == "held" and repriced["version"] == "3"
    retire = client.patch(
        f"/tmf-api/productCatalogManagement/v4/productOffering/{bundle}", json={"lifecycleStatus": "retired"}
    )
    assert retire.status_code == 200, retire.text
    before = counts(session_factory)
    retired = client.post(f"{QUOTES}/{ok['id']}/accept", json=SIGNER)
    assert retired.status_code == 409
    assert retired.json()["message"] == (
        "quoteItem[0].productOffering: offering 'Fibre + Voice' is retired; it cannot be accepted"
    )
    assert counts(session_factory) == before
    # and a retired offering cannot be quoted at all
    new = client.post(QUOTES, json=quote_body(customer_id, site_id, bundle))
    assert new.status_code == 400
    assert (
        new.json()["message"]
        == "quoteItem[0].productOffering: offering 'Fibre + Voice' is retired; it cannot be quoted"
    )
    assert counts(session_factory) == before


def test_editing_a_priced_quote_reprices_adjusts_holds_and_restarts_approval(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    offerings, customer_id, site_id = _setup(client, session_factory)
    bundle = offerings["Fibre + Voice"]
    quote = _priced(client, customer_id, site_id, bundle, discount="20")
    decide(client, quote["id"], "salesManager")
    old_stock = quote["holds"]["stockReservationId"]

    body = quote_body(customer_id, site_id, bundle, discount="20", quantity=2)
    edited = client.patch(f"{QUOTES}/{quote['id']}", json={"quoteItem": body["quoteItem"]})
    assert edited.status_code == 200, edited.text
    doc = edited.json()
    assert doc["version"] == "3" and doc["state"] == "pending"
    assert [(a["name"], a["state"]) for a in doc["authorization"]] == [
        ("salesManager", "pending"),
        ("finance", "pending"),
    ]
    stock = sorted(
        (h["sku"], h["quantity"], h["unit"])
        for h in doc["quoteItem"][0]["reservedResource"]
        if h["resource"] == "stock"
    )
    # one hold line per unit: each unit's services get their own stock when ordered
    assert stock == [
        ("CPE-NW-FTTP-R1", 1, 1),
        ("CPE-NW-FTTP-R1", 1, 2),
        ("HANDSET-NW-DESK-2", 1, 1),
        ("HANDSET-NW-DESK-2", 1, 2),
    ]
    assert sum(1 for h in doc["quoteItem"][0]["reservedResource"] if h["resource"] == "ipv4Prefix") == 2
    assert stock_status(session_factory, old_stock) == "released"
    assert doc["holds"]["stockReservationId"] != old_stock
    assert _available(client, "CPE-NW-FTTP-R1") == 3
    totals = {t["priceType"]: t["price"]["dutyFreeAmount"]["value"] for t in doc["quoteTotalPrice"]}
    assert totals["recurring"] == "398.40"


def test_open_quotes_are_rescreened_when_the_screening_list_changes(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from turnup.compliance import load_list
    from turnup.compliance.config import SAMPLE_LIST
    from turnup.quoting import screening

    offerings = publish_demo_catalog(session_factory)
    seed_inventory(client)
    customer_id, site_id = customer_and_site(client, name="Quillfeather Optics Limited")
    quote = _priced(client, customer_id, site_id, offerings["Fibre + Voice"])
    assert quote["complianceHold"]["held"] is False and quote["state"] == "approved"
    with session_factory() as s:
        assert [ref for _, ref, _ in screening.open_deals(s)] == [quote["id"]]

    # the list changes and now names the customer: the open quote is held, not lost
    content = SAMPLE_LIST.read_text(encoding="utf-8").replace(
        "Zorblax Dynamics LLC", "Quillfeather Optics Ltd"
    )
    with session_factory() as s:
        _, result = load_list(s, content, "list with a new entry", "test")
    assert [(ref_type, ref_id) for ref_type, ref_id, _ in result.held] == [("quote", quote["id"])]
    before = counts(session_factory)
    refused = client.post(f"{QUOTES}/{quote['id']}/accept", json=SIGNER)
    assert refused.status_code == 409 and refused.json()["reason"] == "Compliance hold"
    assert counts(session_factory) == before
    assert client.get(f"{QUOTES}/{quote['id']}").json()["holds"]["state"] == "held"
