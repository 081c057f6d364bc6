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
  ``specification_terms`` and ``offerings_with_specification`` answer the same way for a specification.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from turnup.catalog.publish import PublishResult, load_catalog_file, publish_catalog
from turnup.catalog.queries import (
    OfferingTerms,
    PriceTerms,
    SpecificationTerms,
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
    "OfferingPage",
    "OfferingTerms",
    "PriceTerms",
    "PublishResult",
    "SpecificationTerms",
    "get_offering_detail",
    "list_offerings",
    "load_catalog_file",
    "offering_terms",
    "offerings_with_specification",
    "publish_catalog",
    "specification_terms",
]
