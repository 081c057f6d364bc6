"""Catalog input shapes: delivery requirements, prices and tiers, money, ECCN, channels, error paths."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from turnup.catalog.publish import FileOffering, format_errors, load_catalog_file
from turnup.catalog.render import money_str
from turnup.catalog.schemas import (
    DeliveryRequirements,
    ProductOfferingCreate,
    ProductOfferingPriceCreate,
    ProductSpecificationCreate,
)


def _problems(model: Any, data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return format_errors(caught.value)


def _usage(tiers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "Data",
        "priceType": "usage",
        "price": {"unit": "GBP", "value": "0"},
        "unitOfMeasure": {"units": "GB"},
        "tiers": tiers,
    }


def test_contiguous_tiers_are_accepted_and_exact() -> None:
    price = ProductOfferingPriceCreate.model_validate(
        _usage(
            [
                {"from": 0, "to": 10, "rate": "0.10"},
                {"from": 10, "to": "50.5", "rate": 0.05},
                {"from": "50.5", "rate": "0.0125"},
            ]
        )
    )
    assert price.tiers is not None
    assert [t.rate for t in price.tiers] == [Decimal("0.10"), Decimal("0.05"), Decimal("0.0125")]
    assert all(isinstance(t.rate, Decimal) for t in price.tiers)


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ([{"from": 5, "to": 10, "rate": 1}], ["tiers[0].from: the first tier must start at 0, not 5"]),
        (
            [{"from": 0, "to": 10, "rate": 1}, {"from": 11, "rate": 1}],
            ["tiers[1].from: must equal the previous tier's 'to' (10), got 11"],
        ),
        (
            [{"from": 0, "rate": 1}, {"from": 10, "rate": 1}],
            ["tiers[0].to: only the last tier may be open-ended"],
        ),
    ],
)
def test_tier_gaps_overlaps_and_open_ends_are_named(tiers: list[dict[str, Any]], expected: list[str]) -> None:
    assert _problems(ProductOfferingPriceCreate, _usage(tiers)) == expected


def test_tier_field_errors_have_paths() -> None:
    problems = _problems(
        ProductOfferingPriceCreate,
        _usage([{"from": 0, "to": 10, "rate": "abc"}, {"from": 10, "to": 5, "rate": 1}]),
    )
    assert problems == [
        "tiers[0].rate: Input should be a valid decimal",
        "tiers[1]: 'to' must be greater than 'from'",
    ]


def test_price_type_rules() -> None:
    assert _problems(
        ProductOfferingPriceCreate,
        {"name": "x", "priceType": "recurring", "price": {"unit": "GBP", "value": 1}},
    ) == ["recurringChargePeriodType: required for a recurring price (e.g. 'month')"]
    assert _problems(
        ProductOfferingPriceCreate,
        {
            "name": "x",
            "priceType": "oneTime",
            "price": {"unit": "GBP", "value": 1},
            "tiers": [{"from": 0, "rate": 1}],
        },
    ) == ["tiers: only usage prices have tiers, this one is oneTime"]
    assert _problems(
        ProductOfferingPriceCreate,
        {
            "name": "x",
            "priceType": "usage",
            "price": {"unit": "GBP", "value": 0},
            "tiers": [{"from": 0, "rate": 1}],
        },
    ) == ["unitOfMeasure: a usage price needs a unit (e.g. {units: GB})"]


def test_money_is_decimal_with_currency() -> None:
    price = ProductOfferingPriceCreate.model_validate(
        {"name": "x", "priceType": "oneTime", "price": {"unit": "EUR", "value": "0.1"}}
    )
    assert price.price.value == Decimal("0.1") and price.price.unit == "EUR"
    assert _problems(
        ProductOfferingPriceCreate,
        {"name": "x", "priceType": "oneTime", "price": {"unit": "euro", "value": "1"}},
    ) == ["price.unit: must be an ISO 4217 currency code such as 'GBP'"]
    assert money_str(Decimal("45")) == "45.00"
    assert money_str(Decimal("45.1000")) == "45.10"
    assert money_str(Decimal("0.0125")) == "0.0125"


def test_delivery_requirements_are_strict() -> None:
    ok = DeliveryRequirements.model_validate(
        {
            "physical": [{"sku": "CPE-1", "quantity": 2, "fulfilmentMethod": "pickup"}],
            "logicalResources": [
                {"kind": "ipv6Prefix", "parameters": {"prefixLength": 56}},
                {"kind": "phoneNumber"},
                {"kind": "circuitId"},
                {"kind": "vlan"},
                {"kind": "asn", "quantity": 1},
            ],
            "implementationProject": {"name": "P", "milestones": [{"name": "Kick-off", "offsetDays": 0}]},
        }
    )
    assert [r.kind for r in ok.logicalResources] == ["ipv6Prefix", "phoneNumber", "circuitId", "vlan", "asn"]
    assert ok.logicalResources[1].parameters.area == "buyer"  # type: ignore[union-attr]
    problems = _problems(
        DeliveryRequirements,
        {
            "physical": [{"sku": "CPE 1", "quantity": 0, "fulfilmentMethod": "drone"}],
            "logicalResources": [
                {"kind": "ipv4Prefix", "parameters": {"prefixLength": 29, "pool": "x"}},
                {"kind": "phoneNumber", "parameters": {"area": "north"}},
            ],
            "fieldVisit": {"workType": "install", "skills": ["a", "a"], "durationMinutes": 0},
            "provisioning": [{"adapter": "sim", "action": ""}],
        },
    )
    assert problems == [
        "physical[0].sku: must start with a letter or digit and contain only letters, digits, _ . : -",
        "physical[0].quantity: Input should be greater than or equal to 1",
        "physical[0].fulfilmentMethod: Input should be 'ship', 'technician' or 'pickup'",
        "logicalResources[0].parameters.pool: Extra inputs are not permitted",
        "logicalResources[1].parameters: area must be 'buyer' or an area code made of digits",
        "fieldVisit.skills: item 1 ('a') is repeated",
        "fieldVisit.durationMinutes: Input should be greater than or equal to 1",
        "provisioning[0].action: String should have at least 1 character",
    ]
    assert _problems(DeliveryRequirements, {"logicalResources": [{"kind": "wormhole"}]})[0].startswith(
        "logicalResources[0]: Input tag 'wormhole' found using 'kind' does not match any of the expected tags"
    )


def test_technician_items_need_a_visit_and_milestone_revenue_sums_to_100() -> None:
    assert _problems(
        DeliveryRequirements, {"physical": [{"sku": "CPE", "quantity": 1, "fulfilmentMethod": "technician"}]}
    ) == ["(document): physical items fulfilled by 'technician' need a fieldVisit"]
    assert _problems(
        DeliveryRequirements,
        {
            "implementationProject": {
                "name": "P",
                "milestones": [
                    {"name": "A", "offsetDays": 0, "revenuePercent": 50},
                    {"name": "B", "offsetDays": 5, "revenuePercent": 40},
                ],
            }
        },
    ) == ["implementationProject: milestone revenuePercent must be given for every milestone and sum to 100"]


def test_eccn_channels_recognition_and_bundle_shape() -> None:
    spec = ProductSpecificationCreate.model_validate(
        {"name": "x", "exportClassification": "5D992.c", "channel": [{"id": "partner"}]}
    )
    assert spec.exportClassification == "5D992.c"
    assert ProductSpecificationCreate.model_validate({"name": "x", "exportClassification": "EAR99"})
    assert _problems(ProductSpecificationCreate, {"name": "x", "exportClassification": "ear99"}) == [
        "exportClassification: must be an ECCN such as '5A002' or '5D992.c', or 'EAR99'"
    ]
    assert _problems(ProductSpecificationCreate, {"name": "x", "channel": [{"id": "fax"}]}) == [
        "channel[0].id: Input should be 'web', 'mobile', 'partner' or 'sales'"
    ]
    assert _problems(
        ProductSpecificationCreate, {"name": "x", "revenueRecognition": {"method": "percentComplete"}}
    ) == [
        "revenueRecognition.method: percentComplete needs deliveryRequirements."
        "implementationProject (its milestones measure progress)"
    ]
    assert _problems(
        ProductOfferingCreate, {"name": "x", "isBundle": True, "bundledProductOffering": [{"id": "a"}]}
    ) == ["bundledProductOffering: a bundle (isBundle=true) needs at least 2 offerings"]
    single = ProductOfferingCreate.model_validate({"name": "x", "productSpecification": {"id": "s1"}})
    assert [r.id for r in single.productSpecification] == ["s1"]
    assert _problems(ProductOfferingCreate, {"name": "x", "productSpecification": [{"id": "a", "b": 1}]}) == [
        "productSpecification[0].b: Extra inputs are not permitted"
    ]


def test_discount_rules_are_data() -> None:
    offering = FileOffering.model_validate(
        {
            "name": "x",
            "discountRules": [
                {"kind": "approvalThreshold", "maxDiscountPercentWithoutApproval": "12.5"},
                {"kind": "volume", "minQuantity": 10, "discountPercent": 5},
                {"kind": "term", "minTermMonths": 36, "discountPercent": 15},
            ],
        }
    )
    assert [r.kind for r in offering.discountRules] == ["approvalThreshold", "volume", "term"]
    assert _problems(
        FileOffering,
        {"name": "x", "discountRules": [{"kind": "term", "minTermMonths": 12, "discountPercent": 120}]},
    ) == ["discountRules[0].discountPercent: Input should be less than or equal to 100"]


def test_yaml_numbers_are_decimals_and_versions_text(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "productOfferings:\n  - name: X\n    version: 2.0\n    prices:\n"
        "      - {name: P, priceType: oneTime, price: {unit: GBP, value: 0.10}}\n"
    )
    document = load_catalog_file(path)
    value = document["productOfferings"][0]["prices"][0]["price"]["value"]
    assert value == Decimal("0.10") and isinstance(value, Decimal)
    assert FileOffering.model_validate(document["productOfferings"][0]).version == "2.0"
