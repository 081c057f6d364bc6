"""Usage input (TMF635 ``Usage_Create``) and its normal form.

How a record names its service: ``relatedService: {"id": <service id>}`` (a Turnup extension; TMF635 v4 has
no service reference), or a ``usageCharacteristic`` named ``serviceId``. The quantity is the
``usageCharacteristic`` named ``quantity`` (a number >= 0, in the unit ``usageType`` names: ``minute``,
``GB``, ``sms`` …, the ``unitOfMeasure.units`` of the catalog's usage price). ``id`` is the sender's and is
required: it is how a record resent is recognised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import AwareDatetime, Field, ValidationError

from turnup.accounts import Strict

MAX_QUANTITY = Decimal("999999999999")  # Numeric(18, 6)


class Ref(Strict):
    id: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=100)
    href: str | None = Field(default=None, max_length=500)
    referredType: str | None = Field(default=None, alias="@referredType", max_length=100)


class UsageCharacteristic(Strict):
    name: str = Field(min_length=1, max_length=100)
    value: Any = None
    valueType: str | None = Field(default=None, max_length=40)


class UsageCreate(Strict):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")
    usageDate: AwareDatetime
    usageType: str = Field(min_length=1, max_length=40)
    description: str | None = Field(default=None, max_length=500)
    usageSpecification: Ref | None = None
    relatedService: Ref | None = None
    relatedParty: list[Ref] = Field(default_factory=list, max_length=10)
    usageCharacteristic: list[UsageCharacteristic] = Field(min_length=1, max_length=50)
    type_: str | None = Field(default=None, alias="@type", max_length=100)


@dataclass(frozen=True)
class UsageInput:
    """A usage record in normal form (what de-duplication compares)."""

    id: str
    usage_date: datetime  # UTC
    usage_type: str
    quantity: Decimal
    service_id: str
    description: str | None
    customer_id: str | None  # relatedParty with role customer, if the sender named one

    @property
    def period(self) -> str:
        return self.usage_date.strftime("%Y-%m")

    def content_hash(self) -> str:
        """Same id + same hash: the same record sent again."""
        doc = {
            "usageDate": self.usage_date.isoformat(),
            "usageType": self.usage_type,
            "quantity": format(self.quantity.normalize(), "f"),
            "serviceId": self.service_id,
            "description": self.description,
            "customerId": self.customer_id,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class UsageProblem(ValueError):
    """A record that cannot be accepted; ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def normalise(data: UsageCreate) -> UsageInput:
    """The normal form of a validated record, or ``UsageProblem``."""
    chars = {c.name: (i, c.value) for i, c in enumerate(data.usageCharacteristic)}
    if "quantity" not in chars:
        raise UsageProblem("usageCharacteristic", "a characteristic named 'quantity' is required")
    i, raw = chars["quantity"]
    where = f"usageCharacteristic[{i}].value"
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
        raise UsageProblem(where, "quantity must be a number")
    try:
        quantity = Decimal(str(raw).strip())
    except InvalidOperation:
        raise UsageProblem(where, f"quantity {raw!r} is not a number") from None
    if not quantity.is_finite():
        raise UsageProblem(where, "quantity must be a finite number")
    if quantity < 0:
        raise UsageProblem(where, f"quantity cannot be negative, got {raw}")
    if quantity > MAX_QUANTITY or quantity != quantity.quantize(Decimal("0.000001")):
        raise UsageProblem(where, "quantity must be below 10^12 with at most 6 decimal places")
    service_id = data.relatedService.id if data.relatedService else None
    if service_id is None and "serviceId" in chars:
        j, value = chars["serviceId"]
        if not isinstance(value, str) or not value.strip() or len(value) > 32:
            raise UsageProblem(f"usageCharacteristic[{j}].value", "serviceId must be a service id")
        service_id = value.strip()
    if service_id is None:
        raise UsageProblem(
            "relatedService", "the service is required (relatedService.id or a 'serviceId' characteristic)"
        )
    customers = [p.id for p in data.relatedParty if (p.role or "").lower() == "customer"]
    return UsageInput(
        id=data.id,
        usage_date=data.usageDate.astimezone(UTC),
        usage_type=data.usageType,
        quantity=quantity,
        service_id=service_id,
        description=data.description,
        customer_id=customers[0] if customers else None,
    )


def parse_record(doc: Any) -> UsageInput:
    """Validate one record (a TMF dict); ``UsageProblem`` naming the first problem."""
    if not isinstance(doc, dict):
        raise UsageProblem("record", "must be a JSON object")
    try:
        data = UsageCreate.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "record"
        raise UsageProblem(field, str(first["msg"])) from None
    return normalise(data)


CSV_COLUMNS = ("id", "usageDate", "usageType", "quantity", "serviceId")  # description: optional 6th


def csv_row_to_doc(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row (header ``id,usageDate,usageType,quantity,serviceId[,description]``) as a TMF record."""
    doc: dict[str, Any] = {
        "id": row.get("id") or "",
        "usageDate": row.get("usageDate") or "",
        "usageType": row.get("usageType") or "",
        "usageCharacteristic": [
            {"name": "quantity", "value": row.get("quantity") or ""},
            {"name": "serviceId", "value": row.get("serviceId") or ""},
        ],
    }
    if row.get("description"):
        doc["description"] = row["description"]
    return doc


class ReviewRerate(Strict):
    force: bool = False  # bill it although the activity record says the service was not active
    note: str | None = Field(default=None, max_length=500)


class ReviewWriteOff(Strict):
    note: str = Field(min_length=1, max_length=500)
