"""Input shapes for product orders (TMF622, the subset Turnup accepts today)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class OfferingRef(Strict):
    id: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=200)


class PartyRef(Strict):
    id: str = Field(min_length=1, max_length=32)
    role: Literal["customer"] = "customer"
    name: str | None = Field(default=None, max_length=200)
    referredType: str | None = Field(default=None, alias="@referredType")


class OrderItemCreate(Strict):
    id: str = Field(min_length=1, max_length=50)
    action: Literal["add", "modify", "delete", "noChange"] = "add"
    quantity: int = Field(default=1, ge=1, le=100)
    productOffering: OfferingRef


class ProductOrderCreate(Strict):
    externalId: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    priority: int = Field(default=4, ge=0, le=9)
    requestedCompletionDate: AwareDatetime | None = None
    relatedParty: list[PartyRef] = Field(min_length=1, max_length=5)
    productOrderItem: list[OrderItemCreate] = Field(min_length=1, max_length=50)


class CancelProductOrderCreate(Strict):
    productOrder: OfferingRef  # {id}
    cancellationReason: str | None = Field(default=None, max_length=500)
    requestedCancellationDate: datetime | None = None


class FalloutDecision(Strict):
    reason: str | None = Field(default=None, max_length=500)
