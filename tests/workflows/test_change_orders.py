"""Change orders against the catalog: a modify's characteristics are checked against the offering's
specification characteristics (allowed values, ranges, types, unknown names: 400 naming the characteristic,
nothing written), and a valid modify is priced with the quotes' rules: the order item shows the price before
and after and the difference (TMF622 itemPrice / itemTotalPrice with priceAlteration, and priceChange),
also in the ProductOrder events. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.catalog import publish_catalog
from turnup.catalog.orm import ProductOffering
from turnup.kernel.outbox import OutboxEvent
from turnup.ordering.orm import ProductOrder
from turnup.testing import order_body, wait_until

ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
SERVICES = "/tmf-api/serviceInventory/v4/service"
ACTIVATE = {"adapter": "network-simulator", "action": "activate-access"}


def _values(*values: Any, default: Any = None) -> list[dict[str, Any]]:
    return [{"value": v, **({"isDefault": True} if v == default else {})} for v in values]


def _monthly(name: str, value: str, bandwidth: int | None = None) -> dict[str, Any]:
    use = [{"name": "bandwidthMbps", "productSpecCharacteristicValue": [{"value": bandwidth}]}]
    return {
        "name": name,
        "priceType": "recurring",
        "recurringChargePeriodType": "month",
        "price": {"unit": "GBP", "value": value},
        **({"prodSpecCharValueUse": use} if bandwidth else {}),
    }


CATALOG: dict[str, Any] = {
    "catalog": "Change orders",
    "productSpecifications": [
        {
            "name": "Fibre Access 1G",
            "deliveryRequirements": {"provisioning": [{**ACTIVATE, "parameters": {"bandwidthMbps": 1000}}]},
            "productSpecCharacteristic": [
                {
                    "name": "bandwidthMbps",
                    "valueType": "integer",
                    "productSpecCharacteristicValue": _values(1000, default=1000),
                }
            ],
        },
        {
            "name": "Fibre Access Flex",
            "deliveryRequirements": {
                "provisioning": [{**ACTIVATE, "parameters": {"bandwidthMbps": 500, "staticIps": 1}}]
            },
            "productSpecCharacteristic": [
                {
                    "name": "bandwidthMbps",
                    "valueType": "integer",
                    "productSpecCharacteristicValue": _values(500, 1000, 2000, default=500),
                },
                {
                    "name": "staticIps",
                    "valueType": "integer",
                    "productSpecCharacteristicValue": [{"valueFrom": 1, "valueTo": 8}],
                },
            ],
        },
    ],
    "productOfferings": [
        {
            "name": "Business Fibre 1G",
            "productSpecifications": ["Fibre Access 1G"],
            "prices": [_monthly("1G monthly", "99.00")],
        },
        {
            "name": "Business Fibre Flex",
            "productSpecifications": ["Fibre Access Flex"],
            "prices": [
                _monthly("Flex 500 monthly", "45.50", 500),
                _monthly("Flex 1000 monthly", "79.99", 1000),
                _monthly("Flex 2000 monthly", "129.00", 2000),
                {
                    "name": "High-speed activation",
                    "priceType": "oneTime",
                    "price": {"unit": "GBP", "value": "150.00"},
                    "prodSpecCharValueUse": [
                        {"name": "bandwidthMbps", "productSpecCharacteristicValue": [{"valueFrom": 1000}]}
                    ],
                },
            ],
        },
    ],
}


def _offerings(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as s:
        result = publish_catalog(s, CATALOG, "test")
        return {
            o.name: o.id
            for o in s.scalars(select(ProductOffering).where(ProductOffering.id.in_(result.offerings)))
        }


def _final(client: TestClient, order_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            client.get(f"{ORDERS}/{order_id}").json()
            if client.get(f"{ORDERS}/{order_id}").json()["state"] in ("completed", "failed", "partial")
            else None
        ),
        60,
        message="order end",
    )


def _active_service(client: TestClient, customer_id: str, offering_id: str) -> str:
    order = client.post(ORDERS, json=order_body(customer_id, offering_id))
    assert order.status_code == 201, order.text
    assert _final(client, order.json()["id"])["state"] == "completed"
    return str(client.get(f"{ORDERS}/{order.json()['id']}/plan").json()[0]["service"]["id"])


def _modify(customer_id: str, service_id: str, **chars: Any) -> dict[str, Any]:
    return {
        "relatedParty": [{"id": customer_id, "role": "customer"}],
        "productOrderItem": [
            {
                "id": "1",
                "action": "modify",
                "product": {
                    "id": service_id,
                    "productCharacteristic": [{"name": k, "value": v} for k, v in chars.items()],
                },
            }
        ],
    }


def _orders(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(ProductOrder)) or 0


def test_a_modify_outside_the_offerings_characteristics_is_refused_naming_it(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    offerings = _offerings(session_factory)
    one_gig = _active_service(client, customer_id, offerings["Business Fibre 1G"])
    flex = _active_service(client, customer_id, offerings["Business Fibre Flex"])
    before = _orders(session_factory)
    where = "productOrderItem[0].product.productCharacteristic"
    cases = [
        (
            _modify(customer_id, one_gig, bandwidthMbps=500),
            f"{where}[bandwidthMbps]: 500 is not an allowed value of 'Business Fibre 1G' (allowed: 1000)",
        ),
        (
            _modify(customer_id, flex, staticIps=9),
            f"{where}[staticIps]: 9 is not an allowed value of 'Business Fibre Flex' (allowed: 1..8)",
        ),
        (
            _modify(customer_id, flex, bandwidthMbps="fast"),
            f"{where}[bandwidthMbps]: 'fast' is not an integer: bandwidthMbps takes integer values on "
            "'Business Fibre Flex'",
        ),
        (
            _modify(customer_id, flex, colour="blue"),
            f"{where}[colour]: unknown characteristic of 'Business Fibre Flex' "
            "(known: bandwidthMbps, staticIps)",
        ),
    ]
    for body, message in cases:
        refused = client.post(ORDERS, json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["message"] == message
        assert refused.json()["reason"] == "Characteristic value not allowed"
    # nothing was written and the services are unchanged
    assert _orders(session_factory) == before
    assert client.get(f"{SERVICES}/{one_gig}").json()["state"] == "active"
    with session_factory() as s:
        from turnup.service_inventory.orm import Service

        assert s.get(Service, flex).characteristics == {"bandwidthMbps": 500, "staticIps": 1}  # type: ignore[union-attr]


def test_a_valid_modify_is_priced_before_after_and_difference(
    client: TestClient, customer_id: str, session_factory: sessionmaker[Session], orchestrator: None
) -> None:
    # Given an active Flex service at 500 Mbps (45.50 a month)
    offerings = _offerings(session_factory)
    flex = _active_service(client, customer_id, offerings["Business Fibre Flex"])
    # When a modify order raises it to 1000 Mbps with 4 static IPs (inside the 1..8 range)
    created = client.post(ORDERS, json=_modify(customer_id, flex, bandwidthMbps=1000, staticIps=4))
    assert created.status_code == 201, created.text
    item = created.json()["productOrderItem"][0]
    # Then the item shows the price before and after and the difference (exact decimals)
    assert item["priceChange"] == {
        "@type": "TurnupPriceChange",
        "currency": "GBP",
        "before": {"recurring": "45.50", "oneTime": "0.00"},
        "after": {"recurring": "79.99", "oneTime": "150.00"},
        "difference": {"recurring": "34.49", "oneTime": "150.00"},
    }
    assert [
        (p["name"], p["priceType"], p["price"]["dutyFreeAmount"]["value"]) for p in item["itemPrice"]
    ] == [
        ("Flex 1000 monthly", "recurring", "79.99"),
        ("High-speed activation", "oneTime", "150.00"),
    ]
    assert [
        (
            t["priceType"],
            t["recurringChargePeriod"],
            t["price"]["dutyFreeAmount"],
            [a["price"]["dutyFreeAmount"]["value"] for a in t["priceAlteration"]],
        )
        for t in item["itemTotalPrice"]
    ] == [
        ("recurring", "month", {"unit": "GBP", "value": "79.99"}, ["34.49"]),
        ("oneTime", None, {"unit": "GBP", "value": "150.00"}, ["150.00"]),
    ]
    # and so does the ProductOrderCreateEvent; the order completes with the new characteristics
    with session_factory() as s:
        event = s.scalars(
            select(OutboxEvent).where(
                OutboxEvent.event_type == "ProductOrderCreateEvent",
                OutboxEvent.resource_id == created.json()["id"],
            )
        ).one()
    assert event.payload["event"]["productOrder"]["productOrderItem"][0]["priceChange"] == item["priceChange"]
    final = _final(client, created.json()["id"])
    assert final["state"] == "completed"
    assert final["productOrderItem"][0]["priceChange"]["difference"] == {
        "recurring": "34.49",
        "oneTime": "150.00",
    }
    with session_factory() as s:
        from turnup.service_inventory.orm import Service

        assert s.get(Service, flex).characteristics == {"bandwidthMbps": 1000, "staticIps": 4}  # type: ignore[union-attr]
    # A modify that leaves the price unchanged shows a zero difference
    same = client.post(ORDERS, json=_modify(customer_id, flex, staticIps=2))
    assert same.status_code == 201, same.text
    assert same.json()["productOrderItem"][0]["priceChange"]["difference"] == {
        "recurring": "0.00",
        "oneTime": "0.00",
    }
    _final(client, same.json()["id"])


def test_quotes_check_characteristic_values_and_price_by_them(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from tests.e2e.test_quote_to_order import QUOTES, customer_and_site, quote_body

    offerings = _offerings(session_factory)
    customer_id, site_id = customer_and_site(client)
    # a value outside the allowed ones is refused, naming the line and the characteristic
    refused = client.post(
        QUOTES,
        json=quote_body(
            customer_id,
            site_id,
            offerings["Business Fibre 1G"],
            characteristics=[{"name": "bandwidthMbps", "value": 500}],
        ),
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["message"] == (
        "quoteItem[0].product.productCharacteristic[0].value: 500 is not an allowed value of "
        "'Business Fibre 1G' (allowed: 1000)"
    )
    # prices with prodSpecCharValueUse follow the line's characteristics over the offering's defaults
    totals = {}
    for chars in ([], [{"name": "bandwidthMbps", "value": 1000}]):
        quote = client.post(
            QUOTES,
            json=quote_body(customer_id, site_id, offerings["Business Fibre Flex"], characteristics=chars),
        )
        assert quote.status_code == 201, quote.text
        priced = client.post(f"{QUOTES}/{quote.json()['id']}/price", json={})
        assert priced.status_code == 200, priced.text
        item = priced.json()["quoteItem"][0]
        totals[len(chars)] = [(p["name"], p["price"]["value"]) for p in item["quoteItemPrice"]]
    assert totals == {
        0: [("Flex 500 monthly", "45.50")],
        1: [("Flex 1000 monthly", "79.99"), ("High-speed activation", "150.00")],
    }
