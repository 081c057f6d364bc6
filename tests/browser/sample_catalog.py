"""A small catalog for the web tests, published through ``turnup.catalog.publish_catalog`` (the real path)."""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy.orm import Session

from turnup.catalog import publish_catalog

SAMPLE_CATALOG = """
catalog: Web test operator
categories:
  - {name: Connectivity}
  - {name: Voice}
productSpecifications:
  - name: Business Fibre Access
    version: "2.1"
    brand: Northwind
    productNumber: NW-FIB-1G
    description: Symmetric fibre access delivered to the customer's premises.
    deliveryRequirements:
      physical:
        - {sku: ont-xgs, quantity: 1, fulfilmentMethod: technician, description: Optical network terminal}
      logicalResources:
        - {kind: ipv4Prefix, parameters: {prefixLength: 29}}
        - {kind: vlan}
      fieldVisit: {workType: fibre-install, skills: [splicing, ont-setup], durationMinutes: 180}
      provisioning:
        - {adapter: olt, action: activate-port}
    revenueRecognition: {method: overTime}
    exportClassification: 5A991
    channels: [web, sales]
  - name: Hosted Voice Seat Spec
    deliveryRequirements:
      logicalResources:
        - {kind: phoneNumber, quantity: 1}
    revenueRecognition: {method: overTime}
    channels: [web]
productOfferings:
  - name: Business Fibre 1G
    description: One gigabit symmetric business fibre with a static /29.
    categories: [Connectivity]
    productSpecifications: [Business Fibre Access]
    revenueRecognition: {method: overTime, standaloneSellingPrice: {unit: GBP, value: "2400.00"}}
    exportClassification: 5A991
    channels: [web, sales]
    prices:
      - {name: Fibre monthly, priceType: recurring, recurringChargePeriodType: month,
         price: {unit: GBP, value: "199.00"}}
      - {name: Fibre installation, priceType: oneTime, price: {unit: GBP, value: "450.00"}}
    discountRules:
      - {kind: term, minTermMonths: 36, discountPercent: 10}
  - name: Hosted Voice Seat
    description: A cloud PBX seat with a geographic number.
    categories: [Voice]
    productSpecifications: [Hosted Voice Seat Spec]
    channels: [web]
    prices:
      - {name: Seat monthly, priceType: recurring, recurringChargePeriodType: month,
         price: {unit: GBP, value: "12.50"}}
  - name: Legacy ADSL
    lifecycleStatus: inDesign
    description: Copper broadband, being drafted for a regional partner.
    categories: [Connectivity]
    productSpecifications: [Hosted Voice Seat Spec]
    channels: [partner]
"""


def sample_document() -> dict[str, Any]:
    return yaml.safe_load(SAMPLE_CATALOG)


def publish_sample(session: Session) -> dict[str, str]:
    """Publish the sample catalog; returns offering name -> id."""
    from turnup.catalog import list_offerings

    publish_catalog(session, sample_document(), "test")
    return {o["name"]: o["id"] for o in list_offerings(session, limit=100)}
