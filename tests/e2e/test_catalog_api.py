"""The product catalog through the TMF620 HTTP API: conventions, bad input, lifecycle, versions, events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from turnup.catalog.orm import CATALOG_TABLES, ProductOffering, ProductSpecification
from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.outbox import OutboxEvent

BASE = "/tmf-api/productCatalogManagement/v4"
OFFERINGS = f"{BASE}/productOffering"
SPECS = f"{BASE}/productSpecification"
PRICES = f"{BASE}/productOfferingPrice"
CATEGORIES = f"{BASE}/category"
MERGE = {"Content-Type": "application/merge-patch+json"}

FIBRE_DELIVERY = {
    "physical": [{"sku": "CPE-1", "quantity": 1, "fulfilmentMethod": "technician"}],
    "logicalResources": [{"kind": "ipv4Prefix", "parameters": {"prefixLength": 29}}],
    "fieldVisit": {"workType": "install", "skills": ["fibre-splicing"], "durationMinutes": 120},
    "provisioning": [{"adapter": "network-simulator", "action": "activate", "parameters": {"mbps": 1000}}],
}


def _post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _spec(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Business Fibre Access",
        "lifecycleStatus": "active",
        "deliveryRequirements": FIBRE_DELIVERY,
        "exportClassification": "5A991",
        "channel": [{"id": "web"}],
    }
    body.update(overrides)
    return _post(client, SPECS, body)


def _price(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Monthly",
        "priceType": "recurring",
        "recurringChargePeriodType": "month",
        "price": {"unit": "GBP", "value": "199.00"},
        "lifecycleStatus": "active",
    }
    body.update(overrides)
    return _post(client, PRICES, body)


def _offering(client: TestClient, spec: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    spec = spec or _spec(client, name=f"Spec for {overrides.get('name', 'Fibre 1G')}")
    body = {
        "name": "Fibre 1G",
        "productSpecification": [{"id": spec["id"]}],
        "productOfferingPrice": [{"id": _price(client)["id"]}],
        "lifecycleStatus": "active",
    }
    body.update(overrides)
    return _post(client, OFFERINGS, body)


def _events(factory: sessionmaker[Session], resource_id: str | None = None) -> list[str]:
    with factory() as s:
        stmt = select(OutboxEvent.event_type).order_by(OutboxEvent.event_time, OutboxEvent.id)
        if resource_id:
            stmt = stmt.where(OutboxEvent.resource_id == resource_id)
        return list(s.scalars(stmt))


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0 for m in CATALOG_TABLES}
        counts["outbox_event"] = s.scalar(select(func.count()).select_from(OutboxEvent)) or 0
        return counts


def test_acceptance_fields_and_limit_return_two_items_with_counts(client: TestClient) -> None:
    # given three offerings
    spec = _spec(client)
    for name in ("Alpha", "Bravo", "Charlie"):
        _offering(client, spec, name=name)
    # when listing with fields=name&limit=2
    response = client.get(f"{OFFERINGS}?fields=name&limit=2")
    # then exactly two items with only id, href, @type, name, and correct counts
    assert response.status_code == 200
    items = response.json()
    assert len(items) == 2
    assert [set(i) for i in items] == [{"id", "href", "@type", "name"}] * 2
    assert [i["name"] for i in items] == ["Alpha", "Bravo"]
    assert response.headers["X-Total-Count"] == "3"
    assert response.headers["X-Result-Count"] == "2"


def test_create_offering_renders_tmf_document_with_money_as_strings(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    spec = _spec(
        client,
        revenueRecognition={"method": "overTime", "standaloneSellingPrice": {"unit": "GBP", "value": 180}},
        reportingAttributes={"productLine": "connectivity", "weight": "1.5"},
    )
    category = _post(client, CATEGORIES, {"name": "Connectivity", "lifecycleStatus": "active"})
    offering = _offering(
        client,
        spec,
        category=[{"id": category["id"]}],
        channel=[{"id": "web"}, {"id": "sales"}],
        discountRules=[{"kind": "approvalThreshold", "maxDiscountPercentWithoutApproval": 10}],
    )
    assert offering["@type"] == "ProductOffering"
    assert offering["href"].endswith(f"{OFFERINGS}/{offering['id']}")
    assert offering["lifecycleStatus"] == "active" and offering["version"] == "1.0"
    assert [r["id"] for r in offering["productSpecification"]] == [spec["id"]]
    assert [c["id"] for c in offering["channel"]] == ["web", "sales"]
    assert offering["category"][0]["name"] == "Connectivity"
    assert offering["discountRules"] == [
        {"kind": "approvalThreshold", "maxDiscountPercentWithoutApproval": "10"}
    ]
    price = client.get(f"{PRICES}/{offering['productOfferingPrice'][0]['id']}").json()
    assert price["price"] == {"unit": "GBP", "value": "199.00"}
    assert price["recurringChargePeriodType"] == "month" and price["recurringChargePeriodLength"] == 1
    got_spec = client.get(f"{SPECS}/{spec['id']}").json()
    assert got_spec["revenueRecognition"] == {
        "method": "overTime",
        "standaloneSellingPrice": {"unit": "GBP", "value": "180.00"},
    }
    assert got_spec["deliveryRequirements"]["logicalResources"] == [
        {"kind": "ipv4Prefix", "quantity": 1, "parameters": {"prefixLength": 29}}
    ]
    assert got_spec["exportClassification"] == "5A991"
    with session_factory() as s:
        audits = s.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == offering["id"])).all()
    assert audits == ["productOffering.create"]
    assert _events(session_factory, offering["id"]) == ["ProductOfferingCreateEvent"]


def test_usage_price_with_tiers_is_exact(client: TestClient) -> None:
    price = _price(
        client,
        name="Data",
        priceType="usage",
        recurringChargePeriodType=None,
        price={"unit": "GBP", "value": "0"},
        unitOfMeasure={"units": "GB"},
        tiers=[
            {"from": 0, "to": 10, "rate": "0"},
            {"from": 10, "to": 50, "rate": 1.5},
            {"from": 50, "rate": "0.0125"},
        ],
    )
    assert price["tiers"] == [
        {"from": "0", "to": "10", "rate": "0.00"},
        {"from": "10", "to": "50", "rate": "1.50"},
        {"from": "50", "to": None, "rate": "0.0125"},
    ]
    assert price["price"] == {"unit": "GBP", "value": "0.00"}
    assert price["recurringChargePeriodLength"] is None


def test_filters_by_status_name_version_comma_or_and_date(client: TestClient) -> None:
    spec = _spec(client)
    first = _offering(client, spec, name="Alpha")
    clock.advance(timedelta(seconds=1))
    _offering(client, spec, name="Bravo", lifecycleStatus="inDesign")
    _offering(client, spec, name="Charlie", version="2.5")

    def names(**params: str) -> list[str]:
        response = client.get(OFFERINGS, params={**params, "fields": "name"})
        assert response.status_code == 200, response.text
        assert response.headers["X-Total-Count"] == str(len(response.json()))
        return [i["name"] for i in response.json()]

    assert names(lifecycleStatus="inDesign") == ["Bravo"]
    assert names(lifecycleStatus="active") == ["Alpha", "Charlie"]
    assert names(name="Charlie") == ["Charlie"]
    assert names(version="2.5") == ["Charlie"]
    assert names(name="Alpha,Charlie") == ["Alpha", "Charlie"]
    assert names(**{"lastUpdate.gt": first["lastUpdate"]}) == ["Bravo", "Charlie"]
    assert names(**{"lastUpdate.lte": first["lastUpdate"]}) == ["Alpha"]
    assert names(isBundle="false", lifecycleStatus="active,inDesign") == ["Alpha", "Bravo", "Charlie"]
    # prices filter by type and amount; specs by ECCN
    _price(
        client,
        name="Install",
        priceType="oneTime",
        recurringChargePeriodType=None,
        price={"unit": "GBP", "value": "350"},
    )
    cheap = client.get(PRICES, params={"price.value.lt": "300", "fields": "name"}).json()
    assert sorted(p["name"] for p in cheap) == ["Monthly"] * 3
    assert [p["name"] for p in client.get(PRICES, params={"priceType": "oneTime"}).json()] == ["Install"]
    assert client.get(SPECS, params={"exportClassification": "5A991"}).headers["X-Total-Count"] == "1"


def test_bad_filters_and_unknown_ids(client: TestClient) -> None:
    for params in ({"colour": "red"}, {"lastUpdate.gt": "yesterday"}, {"limit": "0"}, {"isBundle": "maybe"}):
        response = client.get(OFFERINGS, params=params)
        assert response.status_code == 400, params
        assert response.json()["@type"] == "Error"
    for path in (OFFERINGS, SPECS, PRICES, CATEGORIES):
        for method in ("GET", "PATCH", "DELETE"):
            response = client.request(method, f"{path}/nope", json={} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path)
            assert response.json()["status"] == "404"


def test_malformed_json_wrong_types_and_unknown_fields_are_400_and_change_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    spec = _spec(client, name="Existing")
    before = _counts(session_factory)
    cases: list[tuple[str, dict[str, Any]]] = [
        (OFFERINGS, dict(content=b'{"name": "x",', headers={"Content-Type": "application/json"})),
        (OFFERINGS, dict(json={"name": 42})),
        (OFFERINGS, dict(json={"name": "x", "colour": "blue"})),
        (OFFERINGS, dict(json={"name": "x", "isBundle": "yes"})),
        (OFFERINGS, dict(json={"name": "x", "channel": [{"id": "fax"}]})),
        (OFFERINGS, dict(json={"name": "x", "version": "one"})),
        (OFFERINGS, dict(json={"name": "x", "isBundle": True, "bundledProductOffering": [{"id": "a"}]})),
        (OFFERINGS, dict(json={"name": "x", "productSpecification": [{"id": spec["id"], "extra": 1}]})),
        (
            OFFERINGS,
            dict(
                json={
                    "name": "x",
                    "discountRules": [{"kind": "volume", "minQuantity": 1, "discountPercent": 5}],
                }
            ),
        ),
        (OFFERINGS, dict(json=["not", "an", "object"])),
        (SPECS, dict(json={"name": "x", "exportClassification": "5X002"})),
        (
            SPECS,
            dict(
                json={
                    "name": "x",
                    "deliveryRequirements": {
                        "physical": [{"sku": "A", "quantity": 1, "fulfilmentMethod": "drone"}]
                    },
                }
            ),
        ),
        (
            SPECS,
            dict(
                json={
                    "name": "x",
                    "deliveryRequirements": {
                        "logicalResources": [{"kind": "ipv4Prefix", "parameters": {"prefixLength": 33}}]
                    },
                }
            ),
        ),
        (
            SPECS,
            dict(json={"name": "x", "deliveryRequirements": {"logicalResources": [{"kind": "teleporter"}]}}),
        ),
        (
            SPECS,
            dict(
                json={
                    "name": "x",
                    "deliveryRequirements": {
                        "fieldVisit": {"workType": "install", "skills": [], "durationMinutes": 60}
                    },
                }
            ),
        ),
        (SPECS, dict(json={"name": "x", "revenueRecognition": {"method": "percentComplete"}})),
        (PRICES, dict(json={"name": "x", "priceType": "recurring", "price": {"unit": "GBP", "value": "1"}})),
        (PRICES, dict(json={"name": "x", "priceType": "oneTime", "price": {"unit": "gbp", "value": "1"}})),
        (PRICES, dict(json={"name": "x", "priceType": "oneTime", "price": {"unit": "GBP", "value": "-1"}})),
        (
            PRICES,
            dict(json={"name": "x", "priceType": "oneTime", "price": {"unit": "GBP", "value": "1.00001"}}),
        ),
        (
            PRICES,
            dict(
                json={
                    "name": "x",
                    "priceType": "usage",
                    "price": {"unit": "GBP", "value": "0"},
                    "unitOfMeasure": {"units": "GB"},
                    "tiers": [{"from": 0, "to": 10, "rate": 1}, {"from": 12, "rate": 1}],
                }
            ),
        ),
        (CATEGORIES, dict(json={"name": "x", "lifecycleStatus": "deleted"})),
    ]
    for path, case in cases:
        response = client.post(path, **case)  # type: ignore[arg-type]
        assert response.status_code == 400, (path, case, response.text)
        body = response.json()
        assert set(body) >= {"code", "reason", "message", "status", "@type"}
    assert _counts(session_factory) == before


def test_tier_gap_message_names_the_tier(client: TestClient) -> None:
    response = client.post(
        PRICES,
        json={
            "name": "x",
            "priceType": "usage",
            "price": {"unit": "GBP", "value": "0"},
            "unitOfMeasure": {"units": "GB"},
            "tiers": [{"from": 0, "to": 10, "rate": 1}, {"from": 12, "rate": 1}],
        },
    )
    assert response.status_code == 400
    assert "tiers[1].from: must equal the previous tier's 'to' (10), got 12" in response.json()["message"]


def test_references_must_exist_and_not_be_retired(client: TestClient) -> None:
    missing = client.post(OFFERINGS, json={"name": "x", "productSpecification": [{"id": "nope"}]})
    assert missing.status_code == 404
    assert missing.json()["message"] == "productSpecification[0].id: productSpecification 'nope' not found"
    spec = _spec(client)
    client.patch(f"{SPECS}/{spec['id']}", json={"lifecycleStatus": "retired"}, headers=MERGE)
    retired = client.post(OFFERINGS, json={"name": "x", "productSpecification": [{"id": spec["id"]}]})
    assert retired.status_code == 409 and "is retired" in retired.json()["message"]


def test_lifecycle_transitions_and_409s(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    spec = _spec(client, lifecycleStatus="inDesign")
    price = _price(client, lifecycleStatus="inDesign")
    offering = _post(
        client,
        OFFERINGS,
        {
            "name": "Fibre 1G",
            "productSpecification": {"id": spec["id"]},
            "productOfferingPrice": [{"id": price["id"]}],
        },
    )
    assert offering["lifecycleStatus"] == "inDesign"
    url = f"{OFFERINGS}/{offering['id']}"
    # inDesign content can change
    edited = client.patch(url, json={"description": "Fast"}, headers=MERGE)
    assert edited.status_code == 200 and edited.json()["description"] == "Fast"
    # activation needs active specifications and prices
    blocked = client.patch(url, json={"lifecycleStatus": "active"}, headers=MERGE)
    assert blocked.status_code == 409
    assert blocked.json()["message"] == (
        "productSpecification[0].id: productSpecification "
        "'Business Fibre Access' "
        "is inDesign; an active offering only refers to active entities"
    )
    assert (
        client.patch(f"{SPECS}/{spec['id']}", json={"lifecycleStatus": "active"}, headers=MERGE).status_code
        == 200
    )
    assert (
        client.patch(f"{PRICES}/{price['id']}", json={"lifecycleStatus": "active"}, headers=MERGE).status_code
        == 200
    )
    active = client.patch(url, json={"lifecycleStatus": "active"}, headers=MERGE)
    assert active.status_code == 200 and active.json()["lifecycleStatus"] == "active"
    # an active offering's content is frozen
    frozen = client.patch(url, json={"description": "Faster", "lifecycleStatus": "retired"}, headers=MERGE)
    assert frozen.status_code == 409
    assert "its content (description) cannot be changed, only its lifecycleStatus" in frozen.json()["message"]
    # active cannot go back to inDesign
    back = client.patch(url, json={"lifecycleStatus": "inDesign"}, headers=MERGE)
    assert back.status_code == 409 and back.json()["message"] == (
        "lifecycleStatus: an active productOffering cannot become inDesign"
    )
    # only inDesign entities can be deleted
    assert client.delete(url).status_code == 409
    retired = client.patch(
        url, json={"lifecycleStatus": "retired", "statusReason": "end of sale"}, headers=MERGE
    )
    assert retired.status_code == 200 and retired.json()["statusReason"] == "end of sale"
    # retired is terminal
    again = client.patch(url, json={"lifecycleStatus": "active"}, headers=MERGE)
    assert again.status_code == 409 and "retired, which is final" in again.json()["message"]
    row = client.get(url).json()
    assert (row["lifecycleStatus"], row["description"]) == ("retired", "Fast")
    assert _events(session_factory, offering["id"]) == [
        "ProductOfferingCreateEvent",
        "ProductOfferingAttributeValueChangeEvent",
        "ProductOfferingStateChangeEvent",
        "ProductOfferingStateChangeEvent",
        "ProductOfferingAttributeValueChangeEvent",
    ]


def test_failed_requests_write_no_events(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    offering = _offering(client)
    before = _events(session_factory)
    renamed = client.patch(f"{OFFERINGS}/{offering['id']}", json={"name": "Other"}, headers=MERGE)
    assert renamed.status_code == 409
    assert client.post(OFFERINGS, json={"name": "x", "colour": "red"}).status_code == 400
    assert client.delete(f"{OFFERINGS}/{offering['id']}").status_code == 409
    dangling = client.post(OFFERINGS, json={"name": "x", "productSpecification": [{"id": "nope"}]})
    assert dangling.status_code == 404
    assert _events(session_factory) == before


def test_delete_in_design_entities_emits_delete_events(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    spec = _spec(client, lifecycleStatus="inDesign")
    category = _post(client, CATEGORIES, {"name": "Drafts"})
    offering = _post(
        client,
        OFFERINGS,
        {"name": "Draft", "productSpecification": [{"id": spec["id"]}], "category": [{"id": category["id"]}]},
    )
    # a referenced specification cannot go
    refused = client.delete(f"{SPECS}/{spec['id']}")
    assert refused.status_code == 409 and offering["id"] in refused.json()["message"]
    assert client.delete(f"{OFFERINGS}/{offering['id']}").status_code == 204
    assert client.delete(f"{SPECS}/{spec['id']}").status_code == 204
    assert client.delete(f"{CATEGORIES}/{category['id']}").status_code == 204
    assert client.get(f"{OFFERINGS}/{offering['id']}").status_code == 404
    assert _events(session_factory, offering["id"]) == [
        "ProductOfferingCreateEvent",
        "ProductOfferingDeleteEvent",
    ]
    assert _events(session_factory, spec["id"]) == [
        "ProductSpecificationCreateEvent",
        "ProductSpecificationDeleteEvent",
    ]
    assert _events(session_factory, category["id"]) == ["CategoryCreateEvent", "CategoryDeleteEvent"]


def test_event_families_for_category_specification_and_price(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    category = _post(client, CATEGORIES, {"name": "Voice"})
    spec = _spec(client, lifecycleStatus="inDesign")
    price = _price(client, lifecycleStatus="inDesign")
    for path, item in ((CATEGORIES, category), (SPECS, spec), (PRICES, price)):
        response = client.patch(
            f"{path}/{item['id']}", json={"lifecycleStatus": "active", "name": "Renamed"}, headers=MERGE
        )
        assert response.status_code == 200, response.text
    assert _events(session_factory, category["id"]) == [
        "CategoryCreateEvent",
        "CategoryStateChangeEvent",
        "CategoryAttributeValueChangeEvent",
    ]
    assert _events(session_factory, spec["id"]) == [
        "ProductSpecificationCreateEvent",
        "ProductSpecificationStateChangeEvent",
        "ProductSpecificationAttributeValueChangeEvent",
    ]
    assert _events(session_factory, price["id"]) == [
        "ProductOfferingPriceCreateEvent",
        "ProductOfferingPriceStateChangeEvent",
        "ProductOfferingPriceAttributeValueChangeEvent",
    ]
    with session_factory() as s:
        event = s.scalars(select(OutboxEvent).where(OutboxEvent.resource_id == price["id"])).first()
        assert event is not None and event.payload["event"]["productOfferingPrice"]["name"] == "Monthly"


def test_new_version_supersedes_previous_which_stays_readable(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    spec_v1 = _spec(client, name="Fibre Access")
    offering_v1 = _offering(client, spec_v1, name="Fibre 1G")
    # same name and version again is a conflict
    dup = client.post(OFFERINGS, json={"name": "Fibre 1G", "version": "1.0"})
    assert dup.status_code == 409 and "version 1.0 already exists" in dup.json()["message"]
    # publish version 2 of the specification and the offering
    spec_v2 = _spec(client, name="Fibre Access", version="2.0")
    offering_v2 = _offering(client, spec_v2, name="Fibre 1G", version="2.0")
    old_spec = client.get(f"{SPECS}/{spec_v1['id']}").json()
    assert old_spec["lifecycleStatus"] == "retired" and old_spec["supersededBy"]["id"] == spec_v2["id"]
    old = client.get(f"{OFFERINGS}/{offering_v1['id']}").json()
    assert old["lifecycleStatus"] == "retired"
    assert old["statusReason"] == "superseded by version 2.0"
    assert old["supersededBy"]["id"] == offering_v2["id"]
    assert [s["id"] for s in old["productSpecification"]] == [spec_v1["id"]]  # still what was ordered
    # both versions are queryable
    by_name = client.get(OFFERINGS, params={"name": "Fibre 1G", "fields": "version,lifecycleStatus"}).json()
    assert sorted((i["version"], i["lifecycleStatus"]) for i in by_name) == [
        ("1.0", "retired"),
        ("2.0", "active"),
    ]
    assert [i["id"] for i in client.get(OFFERINGS, params={"name": "Fibre 1G", "version": "1.0"}).json()] == [
        offering_v1["id"]
    ]
    # an older version cannot be activated over a newer one
    old_again = client.post(
        OFFERINGS,
        json={
            "name": "Fibre 1G",
            "version": "1.5",
            "lifecycleStatus": "active",
            "productSpecification": [{"id": spec_v2["id"]}],
            "productOfferingPrice": offering_v2["productOfferingPrice"],
        },
    )
    assert old_again.status_code == 409 and "version 2.0 is active" in old_again.json()["message"]
    assert _events(session_factory, offering_v1["id"]) == [
        "ProductOfferingCreateEvent",
        "ProductOfferingStateChangeEvent",
    ]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(ProductOffering)) == 2
        assert (
            s.scalar(
                select(func.count())
                .select_from(ProductSpecification)
                .where(ProductSpecification.lifecycle_status == "active")
            )
            == 1
        )


def test_bundle_with_its_own_price(client: TestClient) -> None:
    fibre = _offering(client, name="Fibre")
    voice = _offering(client, name="Voice")
    bundle_price = _price(client, name="Bundle monthly", price={"unit": "GBP", "value": "249"})
    bundle = _post(
        client,
        OFFERINGS,
        {
            "name": "Fibre + Voice",
            "isBundle": True,
            "lifecycleStatus": "active",
            "bundledProductOffering": [{"id": fibre["id"]}, {"id": voice["id"]}],
            "productOfferingPrice": [{"id": bundle_price["id"]}],
            "discountRules": [{"kind": "term", "minTermMonths": 24, "discountPercent": "10"}],
        },
    )
    assert [m["name"] for m in bundle["bundledProductOffering"]] == ["Fibre", "Voice"]
    assert bundle["productOfferingPrice"][0]["name"] == "Bundle monthly"
    nested = client.post(
        OFFERINGS,
        json={
            "name": "Mega",
            "isBundle": True,
            "bundledProductOffering": [{"id": bundle["id"]}, {"id": fibre["id"]}],
        },
    )
    assert nested.status_code == 400 and "is itself a bundle" in nested.json()["message"]
    in_use = client.delete(f"{OFFERINGS}/{fibre['id']}")
    assert in_use.status_code == 409
    assert client.get(OFFERINGS, params={"isBundle": "true"}).headers["X-Total-Count"] == "1"


def test_category_tree_and_hub(client: TestClient) -> None:
    root = _post(client, CATEGORIES, {"name": "Connectivity"})
    child = _post(client, CATEGORIES, {"name": "Fibre", "parentId": root["id"]})
    assert (root["isRoot"], child["isRoot"], child["parentId"]) == (True, False, root["id"])
    cycle = client.patch(f"{CATEGORIES}/{root['id']}", json={"parentId": child["id"]}, headers=MERGE)
    assert cycle.status_code == 409 and "own ancestor" in cycle.json()["message"]
    assert client.get(CATEGORIES, params={"parentId": root["id"]}).headers["X-Total-Count"] == "1"
    hub = client.post(f"{BASE}/hub", json={"callback": "http://listener.example/cb"})
    assert hub.status_code == 201


def test_single_get_honours_fields(client: TestClient) -> None:
    offering = _offering(client)
    body = client.get(f"{OFFERINGS}/{offering['id']}", params={"fields": "lifecycleStatus"}).json()
    assert body == {
        "id": offering["id"],
        "href": offering["href"],
        "@type": "ProductOffering",
        "lifecycleStatus": "active",
    }


def test_viewer_reads_but_cannot_write(
    anon_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from turnup.security import create_api_token, create_user

    with session_factory() as s:
        create_user(s, username="vera", roles=["viewer"])
        token = create_api_token(s, username="vera")
    headers = {"Authorization": f"Bearer {token}"}
    assert anon_client.get(OFFERINGS, headers=headers).status_code == 200
    denied = anon_client.post(CATEGORIES, json={"name": "x"}, headers=headers)
    assert denied.status_code == 403 and "catalog:write" in denied.json()["message"]


def test_every_catalog_route_declares_one_catalog_permission(app: Any) -> None:
    from turnup.api.deps import declared_permission
    from turnup.api.introspect import dependency_calls, iter_api_routes

    found = {}
    for info in iter_api_routes(app):
        if info.path.startswith(BASE):
            declared = [p for p in map(declared_permission, dependency_calls(info.route.dependant)) if p]
            for method in info.methods:
                found[(method, info.path)] = declared
    resources = [key for key in found if not key[1].startswith(f"{BASE}/hub")]
    assert len(resources) == 4 * 5  # four resources x (list, get, post, patch, delete)
    assert len(found) > len(resources)  # plus the hub
    assert {(m, p): d for (m, p), d in found.items() if len(d) != 1} == {}
    assert found[("GET", OFFERINGS)] == ["catalog:read"]
    assert found[("POST", OFFERINGS)] == ["catalog:write"]
    assert found[("PATCH", f"{PRICES}/{{item_id}}")] == ["catalog:write"]
    assert found[("POST", f"{BASE}/hub")] == ["catalog:subscribe"]
