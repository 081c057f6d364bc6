"""Product catalog (TMF620): categories, specifications, offerings, prices; YAML publishing.

Public helpers (other features and the web console use these, not the ORM directly):

- ``publish_catalog(session, document, actor) -> PublishResult``: validate a whole catalog document and
  publish it in one transaction; raises ``InvalidInput`` with ``details`` = every ``"path: problem"``.
- ``load_catalog_file(path) -> dict``: read a YAML catalog file (exact decimals; clear error on bad YAML).
- ``list_offerings(session, *, lifecycle_status=None, search=None, category_id=None, limit=50, offset=0)``:
  a list of rendered offerings (TMF JSON dicts) with ``.total`` = every match.
- ``get_offering_detail(session, offering_id) -> dict``: one offering with its specifications (incl.
  ``deliveryRequirements``), prices, categories and bundle members resolved to full documents.
- ``offering_terms(session, offering_id) -> OfferingTerms | None``: a frozen snapshot of an offering with
  its specifications, prices and bundle members, for features that price or deliver it (quotes, orders);
  ``specification_terms`` and ``offerings_with_specification`` answer the same way for a specification;
  ``bundle_members_of`` is the light answer for a product tree (members, the specifications each delivers).
- characteristics (``turnup.catalog.characteristics``): ``characteristic_problem`` (is a value allowed for
  an offering's product), ``characteristic_definitions``, ``default_characteristics``, ``bundle_members``.
- pricing (``turnup.catalog.pricing``, ``turnup.catalog.money``): ``price_offering`` prices an offering for
  a quantity and characteristics with the rules quotes and change orders share; the ``Decimal`` arithmetic.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from turnup.catalog.characteristics import (
    bundle_members,
    characteristic_definitions,
    characteristic_problem,
    default_characteristics,
    describe_allowed,
    price_applies,
    value_allowed,
)
from turnup.catalog.money import (
    CENT,
    HUNDRED,
    ZERO,
    Component,
    TierSpec,
    Totals,
    add_totals,
    allocate,
    component,
    discounted,
    money_text,
    q2,
    tiered_charge,
    totals,
)
from turnup.catalog.pricing import (
    USAGE_PREFIX,
    OfferingPrice,
    discounts,
    live_price,
    price_offering,
    price_rows,
    standalone_weight,
)
from turnup.catalog.publish import PublishResult, load_catalog_file, publish_catalog
from turnup.catalog.queries import (
    BundleMember,
    OfferingTerms,
    PriceTerms,
    SpecificationTerms,
    bundle_members_of,
    offering_terms,
    offerings_with_specification,
    specification_terms,
)
from turnup.catalog.render import render_offering_detail
from turnup.catalog.services import OfferingPage, get_offering, list_offerings


def get_offering_detail(session: Session, offering_id: str) -> dict[str, Any]:
    """Raises ``NotFound`` for an unknown id."""
    return render_offering_detail(get_offering(session, offering_id))


__all__ = [
    "CENT",
    "HUNDRED",
    "USAGE_PREFIX",
    "ZERO",
    "BundleMember",
    "Component",
    "OfferingPage",
    "OfferingPrice",
    "OfferingTerms",
    "PriceTerms",
    "PublishResult",
    "SpecificationTerms",
    "TierSpec",
    "Totals",
    "add_totals",
    "allocate",
    "bundle_members",
    "bundle_members_of",
    "characteristic_definitions",
    "characteristic_problem",
    "component",
    "default_characteristics",
    "describe_allowed",
    "discounted",
    "discounts",
    "get_offering_detail",
    "list_offerings",
    "live_price",
    "load_catalog_file",
    "money_text",
    "offering_terms",
    "offerings_with_specification",
    "price_applies",
    "price_offering",
    "price_rows",
    "publish_catalog",
    "q2",
    "specification_terms",
    "standalone_weight",
    "tiered_charge",
    "totals",
    "value_allowed",
]
