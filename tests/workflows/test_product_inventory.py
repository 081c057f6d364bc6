"""TMF637 product inventory: a product per ordered item, realised by the item's services, its status
following them (created -> active -> suspended -> active -> terminated; cancelled when never active)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup import ordering, service_inventory
from turnup.kernel.consumers import ConsumerWorker
from turnup.kernel.outbox import OutboxEvent
from turnup.testing import make_offering, order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
CANCEL = "/tmf-api/productOrderingManagement/v4/cancelProductOrder"
PRODUCTS = "/tmf-api/productInventory/v4/product"


def _final(client: TestClient, order_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"]
            in ("completed", "failed", "partial", "cancelled")
            else None
        ),
        60,
        message="order end",
    )


def _products(client: TestClient, order_id: str) -> list[dict[str, Any]]:
    found = client.get(PRODUCTS, params={"productOrderItem.productOrderId": order_id})
    assert found.status_code == 200, found.text
    return sorted(found.json(), key=lambda p: p["name"])


def _change(client: TestClient, customer_id: str, product_id: str, action: str, **product: Any) -> None:
    order = client.post(
        ORDERS,
        json={
            "relatedParty": [{"id": customer_id, "role": "customer"}],
            "productOrderItem": [{"id": "1", "action": action, "product": {"id": product_id, **product}}],
        },
    )
    assert order.status_code == 201, order.text
    assert _final(client, order.json()["id"])["state"] == "completed"


def test_products_follow_their_services_through_the_lifecycle(
    client: TestClient,
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    # Given an order for a one-service fibre and a two-service colocation
    order = client.post(ORDERS, json=order_body(customer_id, catalog["fibre"], catalog["colo"])).json()
    plan = client.get(f"{ORDERS}/{order['id']}/plan").json()
    # Then there is one product per order item, created, realised by that item's services
    created = _products(client, order["id"])
    assert [p["name"] for p in created] == ["Business Fibre 1G", "Colocation 4U"]
    # (the orchestrator runs in the background: by now a product may already be active; each was announced
    # as created, checked below from its ProductCreateEvent)
    assert {p["status"] for p in created} <= {"created", "active"}
    fibre, colo = created
    assert [s["id"] for s in fibre["realizingService"]] == [plan[0]["service"]["id"]]
    assert [s["id"] for s in colo["realizingService"]] == [plan[1]["service"]["id"], plan[2]["service"]["id"]]
    assert fibre["productOffering"]["id"] == catalog["fibre"] and fibre["startDate"] is None
    assert fibre["relatedParty"] == [{"id": customer_id, "role": "customer", "@referredType": "Customer"}]
    assert fibre["productOrderItem"][0]["productOrderId"] == order["id"]
    assert fibre["href"].endswith(f"/tmf-api/productInventory/v4/product/{fibre['id']}")
    # When the order completes: both products are active, with a start date
    assert _final(client, order["id"])["state"] == "completed"
    fibre = client.get(f"{PRODUCTS}/{fibre['id']}").json()
    assert fibre["status"] == "active" and fibre["startDate"] is not None
    assert client.get(f"{PRODUCTS}/{colo['id']}").json()["status"] == "active"
    # When the fibre product is suspended, resumed, then disconnected by orders naming the product id
    _change(client, customer_id, fibre["id"], "modify", status="suspended")
    assert client.get(f"{PRODUCTS}/{fibre['id']}").json()["status"] == "suspended"
    _change(client, customer_id, fibre["id"], "modify", status="active")
    assert client.get(f"{PRODUCTS}/{fibre['id']}").json()["status"] == "active"
    _change(client, customer_id, fibre["id"], "delete")
    ended = client.get(f"{PRODUCTS}/{fibre['id']}").json()
    assert ended["status"] == "terminated" and ended["terminationDate"] is not None
    assert client.get(f"{PRODUCTS}/{colo['id']}").json()["status"] == "active"  # untouched

    # and every status change was published (by product inventory's consumer of the service events)
    def changes() -> list[str]:
        with session_factory() as s:
            return [
                e.payload["event"]["product"]["status"]
                for e in s.scalars(
                    select(OutboxEvent)
                    .where(
                        OutboxEvent.event_type == "ProductStateChangeEvent",
                        OutboxEvent.resource_id == fibre["id"],
                    )
                    .order_by(OutboxEvent.event_time)
                )
            ]

    wait_until(lambda: len(changes()) >= 4, 30, message="product events")
    assert changes() == ["active", "suspended", "active", "terminated"]
    with session_factory() as s:  # each product announced once, as created, at acceptance
        announced = s.execute(
            select(OutboxEvent.resource_id, OutboxEvent.payload).where(
                OutboxEvent.event_type == "ProductCreateEvent"
            )
        ).all()
    assert sorted(r for r, _ in announced) == sorted([fibre["id"], colo["id"]])
    assert [p["event"]["product"]["status"] for _, p in announced] == ["created", "created"]
    # TMF conventions: filters, field selection, 404
    mine = client.get(
        PRODUCTS, params={"relatedParty.id": customer_id, "productOffering.id": catalog["colo"]}
    )
    assert [(p["id"], p["status"]) for p in mine.json()] == [(colo["id"], "active")]
    assert client.get(PRODUCTS, params={"relatedParty.id": "someone-else"}).json() == []
    assert client.get(PRODUCTS, params={"fields": "status", "id": colo["id"]}).json() == [
        {"id": colo["id"], "href": colo["href"], "@type": "Product", "status": "active"}
    ]
    assert client.get(f"{PRODUCTS}/nope").status_code == 404


def test_a_product_whose_order_is_cancelled_before_activation_is_cancelled(
    client: TestClient,
    customer_id: str,
    session_factory: sessionmaker[Session],
    orchestrator: None,
) -> None:
    with session_factory() as s:
        offering = make_offering(
            s,
            "Fibre with install",
            [
                {"kind": "fieldVisit", "jeopardySeconds": 3600},
                {"adapter": "network-simulator", "action": "activate-access", "parameters": {}},
            ],
        )
    order = client.post(ORDERS, json=order_body(customer_id, offering)).json()
    wait_until(lambda: client.get(f"{ORDERS}/{order['id']}/plan").json()[0]["state"] == "inProgress", 30)
    assert client.post(CANCEL, json={"productOrder": {"id": order["id"]}}).status_code == 201
    assert _final(client, order["id"])["state"] == "cancelled"
    [product] = _products(client, order["id"])
    assert product["status"] == "cancelled" and product["startDate"] is None


def test_product_events_are_derived_as_of_each_service_event_even_when_the_consumer_runs_late(
    catalog: dict[str, str],
    customer_id: str,
    session_factory: sessionmaker[Session],
    dbos_schema_cleanup: None,
) -> None:
    # Given an accepted fibre order (no workflow runs: the service is changed by hand below)
    with session_factory() as s:
        order = ordering.create_order(
            s, ordering.ProductOrderCreate.model_validate(order_body(customer_id, catalog["fibre"])), "test"
        )
        [product] = ordering.ordered_products(s, order.id)
        [service_id] = product.service_ids
    # When its service is activated, suspended and terminated, one transaction each, before any consumer runs
    for state, action in (("active", "add"), ("inactive", "suspend"), ("terminated", "delete")):
        with session_factory() as s:
            service = service_inventory.get_service(s, service_id)
            service_inventory.change_state(
                s, service, state, order_id=order.id, order_item_id=product.id, action=action
            )
            s.commit()

    def product_events() -> list[tuple[str, str]]:
        with session_factory() as s:
            return [
                (e.event_type, e.payload["event"]["product"]["status"])
                for e in s.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.resource_id == product.id)
                    .order_by(OutboxEvent.event_time, OutboxEvent.id)
                )
            ]

    assert product_events() == []  # nothing yet: product inventory follows through its consumers
    # Then draining the consumers announces the product (as it is now) and publishes each status it went
    # through, in order: before and after each change come from the service event, not from the service now
    assert ConsumerWorker(session_factory).drain() >= 4  # 1 order event + 3 service events, at least
    events = product_events()
    assert [e for e in events if e[0] == "ProductCreateEvent"] == [("ProductCreateEvent", "terminated")]
    assert [e for e in events if e[0] != "ProductCreateEvent"] == [
        ("ProductStateChangeEvent", "active"),
        ("ProductStateChangeEvent", "suspended"),
        ("ProductStateChangeEvent", "terminated"),
    ]
    assert ConsumerWorker(session_factory).drain() == 0  # each event applied once
