"""Catalog authoring: publish_catalog validates the whole document, reports every problem with its path,
and publishes all or nothing; the demo catalog publishes; the ``turnup catalog`` CLI."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from turnup.catalog import get_offering_detail, list_offerings, load_catalog_file, publish_catalog
from turnup.catalog.orm import CATALOG_TABLES, ProductOffering, ProductSpecification
from turnup.cli.main import app as cli_app
from turnup.kernel.audit import AuditEntry
from turnup.kernel.errors import InvalidInput, NotFound
from turnup.kernel.outbox import OutboxEvent
from turnup.kernel.settings import get_settings

DEMO = Path(__file__).resolve().parents[2] / "src" / "turnup" / "demo" / "catalog.yaml"


def _small() -> dict[str, Any]:
    return {
        "catalog": "Test Telco",
        "categories": [{"name": "Connectivity"}, {"name": "Fibre", "parent": "Connectivity"}],
        "productSpecifications": [
            {
                "name": "Fibre Access",
                "version": "1.0",
                "deliveryRequirements": {
                    "physical": [{"sku": "CPE-1", "quantity": 1, "fulfilmentMethod": "ship"}],
                    "logicalResources": [{"kind": "ipv4Prefix", "parameters": {"prefixLength": 29}}],
                },
                "exportClassification": "5A991",
                "channels": ["web"],
            },
            {
                "name": "Voice Seat",
                "deliveryRequirements": {
                    "logicalResources": [{"kind": "phoneNumber", "parameters": {"area": "buyer"}}]
                },
            },
        ],
        "productOfferings": [
            {
                "name": "Fibre 1G",
                "categories": ["Fibre"],
                "productSpecifications": ["Fibre Access"],
                "prices": [
                    {
                        "name": "Monthly",
                        "priceType": "recurring",
                        "recurringChargePeriodType": "month",
                        "price": {"unit": "GBP", "value": "199.00"},
                    }
                ],
            },
            {
                "name": "Voice",
                "productSpecifications": ["Voice Seat"],
                "prices": [
                    {
                        "name": "Minutes",
                        "priceType": "usage",
                        "price": {"unit": "GBP", "value": "0"},
                        "unitOfMeasure": {"units": "minute"},
                        "tiers": [{"from": 0, "to": 100, "rate": "0.02"}, {"from": 100, "rate": "0.01"}],
                    }
                ],
            },
            {
                "name": "Fibre + Voice",
                "bundledProductOfferings": ["Fibre 1G", "Voice"],
                "prices": [
                    {
                        "name": "Bundle",
                        "priceType": "recurring",
                        "recurringChargePeriodType": "month",
                        "price": {"unit": "GBP", "value": "220"},
                    }
                ],
                "discountRules": [{"kind": "approvalThreshold", "maxDiscountPercentWithoutApproval": 10}],
            },
        ],
    }


def _counts(session: Session) -> dict[str, int]:
    counts = {
        m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0 for m in CATALOG_TABLES
    }
    counts["outbox_event"] = session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    counts["audit_entry"] = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    return counts


def test_publish_small_catalog_creates_everything_with_events(session: Session) -> None:
    result = publish_catalog(session, _small(), "test")
    created = (result.categories, result.specifications, result.prices, result.offerings)
    assert [len(ids) for ids in created] == [2, 2, 3, 3]
    bundle = get_offering_detail(session, result.offerings[-1])
    assert bundle["isBundle"] is True and bundle["lifecycleStatus"] == "active"
    assert [m["name"] for m in bundle["bundledProductOffering"]] == ["Fibre 1G", "Voice"]
    assert bundle["productOfferingPrice"][0]["price"] == {"unit": "GBP", "value": "220.00"}
    fibre = get_offering_detail(session, result.offerings[0])
    assert fibre["productSpecification"][0]["deliveryRequirements"]["logicalResources"][0]["parameters"] == {
        "prefixLength": 29
    }
    assert fibre["category"][0]["parentId"] == result.categories[0]
    types = sorted(session.scalars(select(OutboxEvent.event_type)))
    assert types == sorted(
        ["CategoryCreateEvent"] * 2
        + ["ProductSpecificationCreateEvent"] * 2
        + ["ProductOfferingPriceCreateEvent"] * 3
        + ["ProductOfferingCreateEvent"] * 3
    )


def test_file_with_three_errors_reports_all_three_and_changes_nothing(session: Session) -> None:
    # given a catalog already holding something, and a file with exactly three mistakes
    publish_catalog(session, {"categories": [{"name": "Existing"}]}, "test")
    before = _counts(session)
    document = _small()
    document["productOfferings"][0]["productSpecifications"].append("X")
    document["productOfferings"][1]["prices"][0]["tiers"][1]["rate"] = "-0.01"
    document["productSpecifications"][0]["deliveryRequirements"]["logicalResources"][0]["parameters"][
        "prefixLength"
    ] = 33
    # when publishing it
    with pytest.raises(InvalidInput) as caught:
        publish_catalog(session, document, "test")
    # then every problem is reported with its path
    problems = caught.value.details
    assert len(problems) == 3, problems
    assert problems[0] == (
        "productSpecifications[0].deliveryRequirements.logicalResources[0].parameters"
        ".prefixLength: Input should be less than or equal to 32"
    )
    assert problems[1] == (
        "productOfferings[1].prices[0].tiers[1].rate: Input should be greater than or equal to 0"
    )
    assert problems[2] == "productOfferings[0].productSpecifications[1]: unknown specification 'X'"
    assert "3 problems" in caught.value.message
    # and no catalog table (nor the outbox or audit) changed
    assert _counts(session) == before


def test_semantic_errors_have_paths(session: Session) -> None:
    document = _small()
    document["categories"].append({"name": "Fibre"})
    document["productOfferings"][2]["bundledProductOfferings"] = ["Fibre 1G"]
    document["productOfferings"][0]["prices"][0]["priceType"] = "oneTime"
    document["productOfferings"][1]["prices"][0]["tiers"][1]["from"] = 150
    document["productSpecifications"][1]["revenueRecognition"] = {"method": "percentComplete"}
    document["productOfferings"][2]["categories"] = ["Nowhere"]
    document["colour"] = "blue"
    with pytest.raises(InvalidInput) as caught:
        publish_catalog(session, document, "test")
    assert sorted(caught.value.details) == sorted(
        [
            "colour: unknown section; expected one of catalog, categories, description, productOfferings, "
            "productSpecifications",
            "productOfferings[0].prices[0].recurringChargePeriodType: not allowed on a oneTime price",
            "productOfferings[1].prices[0].tiers[1].from: must equal the previous tier's 'to' (100), got 150",
            "categories[2].name: 'Fibre' is already declared at categories[1]",
            "productSpecifications[1].revenueRecognition.method: percentComplete needs "
            "deliveryRequirements.implementationProject (its milestones measure progress)",
            "productOfferings[2].categories[0]: unknown category 'Nowhere'",
            "productOfferings[2].bundledProductOfferings: a bundle needs at least 2 offerings",
        ]
    )
    assert _counts(session)["catalog_category"] == 0


def test_demo_catalog_publishes_and_exercises_every_capability(session: Session) -> None:
    result = publish_catalog(session, load_catalog_file(DEMO), "test")
    assert result.catalog == "Northwind Fibre & Voice"
    assert len(result.offerings) == 6 and len(result.specifications) == 5
    page = list_offerings(session, lifecycle_status="active")
    assert page.total == 6
    specs = {s.name: s for s in session.scalars(select(ProductSpecification))}
    fibre = specs["Business Fibre Access"].delivery_requirements
    assert fibre["physical"][0]["fulfilmentMethod"] == "technician"
    ipv4 = {"kind": "ipv4Prefix", "quantity": 1, "parameters": {"prefixLength": 29}}
    assert ipv4 in fibre["logicalResources"]
    assert fibre["fieldVisit"]["workType"] == "install"
    assert fibre["provisioning"][0]["adapter"] == "network-simulator"
    voice = specs["Hosted Voice Seat"].delivery_requirements
    assert voice["logicalResources"][0]["parameters"] == {"area": "buyer"}
    assert voice["physical"][0]["fulfilmentMethod"] == "ship"
    colo = specs["Colocation Rack Space"].delivery_requirements
    assert {r["kind"] for r in colo["logicalResources"]} == {"circuitId", "asn"}
    firewall = specs["Managed Firewall"]
    assert firewall.revenue_recognition["method"] == "percentComplete"
    assert len(firewall.delivery_requirements["implementationProject"]["milestones"]) == 4
    assert firewall.eccn == "5A002"
    assert specs["Mobile Line"].delivery_requirements["physical"][0]["sku"] == "SIM-TRIPLE-CUT"
    bundle = next(o for o in page if o["isBundle"])
    detail = get_offering_detail(session, bundle["id"])
    assert detail["name"] == "Fibre + Voice"
    assert {m["name"] for m in detail["bundledProductOffering"]} == {"Business Fibre 1G", "Hosted Voice Seat"}
    assert detail["productOfferingPrice"][0]["price"] == {"unit": "GBP", "value": "249.00"}
    assert {r["kind"] for r in detail["discountRules"]} == {"approvalThreshold", "term", "volume"}
    price_types = {
        p["priceType"] for o in page for p in get_offering_detail(session, o["id"])["productOfferingPrice"]
    }
    assert price_types == {"recurring", "oneTime", "usage"}
    # publishing the same file again is refused: the versions already exist
    with pytest.raises(InvalidInput) as again:
        publish_catalog(session, load_catalog_file(DEMO), "test")
    assert len(again.value.details) == 11


def test_publishing_a_new_version_supersedes_the_old_one(session: Session) -> None:
    first = publish_catalog(session, _small(), "test")
    v2 = copy.deepcopy(_small())
    v2["productSpecifications"] = [dict(v2["productSpecifications"][0], version="2.0")]
    v2["productOfferings"] = [dict(v2["productOfferings"][0], version="2.0")]
    second = publish_catalog(session, v2, "test")
    assert second.reused_categories == first.categories
    old = session.get(ProductOffering, first.offerings[0])
    assert old is not None
    assert (old.lifecycle_status, old.superseded_by_id) == ("retired", second.offerings[0])
    assert sorted(second.superseded) == sorted([first.offerings[0], first.specifications[0]])
    # the old offering still reads, with the specification it was sold with
    detail = get_offering_detail(session, first.offerings[0])
    assert detail["productSpecification"][0]["version"] == "1.0"
    # the bundle still refers to the version it was built from
    bundle = get_offering_detail(session, first.offerings[2])
    assert bundle["bundledProductOffering"][0]["id"] == first.offerings[0]
    # an equal or older version is refused with its path
    with pytest.raises(InvalidInput) as caught:
        publish_catalog(session, {"productSpecifications": [{"name": "Fibre Access", "version": "1.5"}]}, "t")
    assert caught.value.details == [
        "productSpecifications[0].version: productSpecification 'Fibre Access' "
        "version 2.0 is active; a new version must be higher than that, not 1.5"
    ]


def test_list_offerings_search_category_paging(session: Session) -> None:
    result = publish_catalog(session, _small(), "test")
    assert [o["name"] for o in list_offerings(session, search="FIBRE")] == ["Fibre + Voice", "Fibre 1G"]
    by_category = list_offerings(session, category_id=result.categories[1])
    assert [o["name"] for o in by_category] == ["Fibre 1G"] and by_category.total == 1
    page = list_offerings(session, limit=1, offset=1)
    assert len(page) == 1 and page.total == 3
    with pytest.raises(NotFound):
        get_offering_detail(session, "nope")


def test_bad_yaml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories:\n  - name: [unclosed\n")
    with pytest.raises(InvalidInput) as caught:
        load_catalog_file(bad)
    assert "not valid YAML" in caught.value.message and "line 3" in caught.value.message
    with pytest.raises(InvalidInput, match="cannot read"):
        load_catalog_file(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        load_catalog_file(scalar)


# --- CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(db_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TURNUP_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "250")  # Rich tables and messages on one line each
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_publish_list_show_retire(cli_env: CliRunner, session_factory: sessionmaker[Session]) -> None:
    published = cli_env.invoke(cli_app, ["catalog", "publish", str(DEMO)])
    assert published.exit_code == 0, published.output
    assert "Northwind Fibre & Voice" in published.output and "6 product offerings" in published.output
    listed = cli_env.invoke(cli_app, ["catalog", "list", "--search", "mobile"])
    assert listed.exit_code == 0 and "Business Mobile Line" in listed.output and "1 of 1" in listed.output
    with session_factory() as s:
        mobile = s.scalar(select(ProductOffering).where(ProductOffering.name == "Business Mobile Line"))
        assert mobile is not None
    shown = cli_env.invoke(cli_app, ["catalog", "show", mobile.id])
    assert shown.exit_code == 0 and "SIM-TRIPLE-CUT" in shown.output
    retired = cli_env.invoke(cli_app, ["catalog", "retire", mobile.id, "--reason", "end of sale"])
    assert retired.exit_code == 0 and "now retired" in retired.output
    again = cli_env.invoke(cli_app, ["catalog", "retire", mobile.id])
    assert again.exit_code == 1 and "final" in again.output
    with session_factory() as s:
        row = s.get(ProductOffering, mobile.id)
        assert row is not None and (row.lifecycle_status, row.status_reason) == ("retired", "end of sale")
    missing = cli_env.invoke(cli_app, ["catalog", "show", "nope"])
    assert missing.exit_code == 1


def test_cli_publish_reports_every_error_and_publishes_nothing(
    cli_env: CliRunner, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    text = DEMO.read_text()
    text = text.replace("prefixLength: 29", "prefixLength: 40").replace(
        "productSpecifications: [Mobile Line]", "productSpecifications: [Mobile Line, X]"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    result = cli_env.invoke(cli_app, ["catalog", "publish", str(broken)])
    assert result.exit_code == 1
    assert (
        "productSpecifications[0].deliveryRequirements.logicalResources[0].parameters.prefixLength"
        in result.output
    )
    assert "productOfferings[4].productSpecifications[1]: unknown specification 'X'" in result.output
    with session_factory() as s:
        assert all(v == 0 for k, v in _counts(s).items() if k != "audit_entry")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("categories: [\n")
    assert cli_env.invoke(cli_app, ["catalog", "publish", str(bad_yaml)]).exit_code == 1
