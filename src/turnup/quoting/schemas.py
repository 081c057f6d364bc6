"""Input shapes for quotes (TMF648 v4 subset plus Turnup's pricing inputs) and approval rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StrictInt, model_validator

from turnup.agreements import nest_flat_signer
from turnup.kernel.text import InputModel

Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4, allow_inf_nan=False)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4, allow_inf_nan=False)]
Role = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class Ref(Strict):
    id: str = Field(min_length=1, max_length=32)
    href: str | None = Field(default=None, max_length=2000)
    name: str | None = Field(default=None, max_length=200)
    type_: str | None = Field(default=None, alias="@type", max_length=100)
    referredType: str | None = Field(default=None, alias="@referredType", max_length=100)


class PartyRef(Ref):
    role: Literal["customer"] = "customer"


class Characteristic(Strict):
    name: str = Field(min_length=1, max_length=100)
    value: str | StrictInt | Decimal | bool
    valueType: str | None = Field(default=None, max_length=50)


class ProductIn(Strict):
    """TMF648 ``quoteItem.product``: where (``place``) and how (``productCharacteristic``)."""

    place: list[Ref] = Field(min_length=1, max_length=1)
    productCharacteristic: list[Characteristic] = Field(default_factory=list, max_length=50)


class QuoteItemIn(Strict):
    id: str = Field(min_length=1, max_length=50)
    action: Literal["add"] = "add"
    quantity: StrictInt = Field(default=1, ge=1, le=1000)
    productOffering: Ref
    product: ProductIn
    discountPercent: Percent = Decimal(0)


class ValidFor(Strict):
    startDateTime: AwareDatetime | None = None
    endDateTime: AwareDatetime


class QuoteCreate(Strict):
    description: str | None = Field(default=None, max_length=2000)
    externalId: str | None = Field(default=None, max_length=100)
    contractTermMonths: StrictInt = Field(default=12, ge=1, le=120)
    validFor: ValidFor | None = None
    relatedParty: list[PartyRef] = Field(min_length=1, max_length=1)
    quoteItem: list[QuoteItemIn] = Field(min_length=1, max_length=50)
    instantSyncQuote: bool = False  # true: price (and hold inventory) in the same request

    @model_validator(mode="after")
    def _unique_items(self) -> QuoteCreate:
        refs = [i.id for i in self.quoteItem]
        if len(set(refs)) != len(refs):
            raise ValueError("quoteItem: item ids must be unique within the quote")
        return self


class QuoteUpdate(Strict):
    """Merge-patch. Content changes start a new version (a priced quote is re-priced and its holds
    adjusted); ``state`` may be ``cancelled`` (seller) or ``rejected`` (customer declines)."""

    description: str | None = Field(default=None, max_length=2000)
    contractTermMonths: StrictInt | None = Field(default=None, ge=1, le=120)
    validFor: ValidFor | None = None
    quoteItem: list[QuoteItemIn] | None = Field(default=None, min_length=1, max_length=50)
    state: Literal["cancelled", "rejected", "inProgress", "pending", "approved", "accepted"] | None = None
    stateReason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _unique_items(self) -> QuoteUpdate:
        if self.quoteItem is not None:
            refs = [i.id for i in self.quoteItem]
            if len(set(refs)) != len(refs):
                raise ValueError("quoteItem: item ids must be unique within the quote")
        return self


class Signer(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    organisation: str | None = Field(default=None, max_length=200)


class QuoteAccept(Strict):
    """The customer accepts: ``signer`` signs the generated agreement (its SHA-256 is recorded).
    Preferred shape: ``signer: {name, email, organisation}``; the flat ``signerName``/``signerEmail``/
    ``organisation`` spelling of the agreement signature endpoint is accepted too."""

    signer: Signer
    comment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="before")
    @classmethod
    def _accept_flat_signer(cls, data: Any) -> Any:
        return nest_flat_signer(data)


class ApprovalDecisionIn(Strict):
    quoteId: str = Field(min_length=1, max_length=32)
    # optional: the step the decider means to decide (409 if another is next); the user's roles, not this
    # field, decide whether they may decide it
    role: Role | None = None
    decision: Literal["approved", "rejected"]
    comment: str = Field(min_length=1, max_length=2000)


class RuleConditions(Strict):
    discountPercentOver: Percent | None = None
    dealValueOver: Amount | None = None
    marginPercentBelow: Annotated[Decimal, Field(ge=-1000, le=100, allow_inf_nan=False)] | None = None
    offerings: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=100
    )
    segments: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(
        default=None, max_length=50
    )

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class ApprovalRuleCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    priority: StrictInt = Field(default=100, ge=0, le=10_000)
    active: bool = True
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    chain: list[Role] = Field(min_length=1, max_length=10)
    maxDiscountPercent: Percent | None = None

    @model_validator(mode="after")
    def _chain(self) -> ApprovalRuleCreate:
        if len(set(self.chain)) != len(self.chain):
            raise ValueError("chain: a role may appear only once")
        return self


class ApprovalRuleUpdate(Strict):
    description: str | None = Field(default=None, max_length=2000)
    priority: StrictInt | None = Field(default=None, ge=0, le=10_000)
    active: bool | None = None
    conditions: RuleConditions | None = None
    chain: list[Role] | None = Field(default=None, min_length=1, max_length=10)
    maxDiscountPercent: Percent | None = None


class ApprovalRuleImport(Strict):
    """``{"yaml": "<text>"}``: a document ``{rules: [ApprovalRuleCreate, …]}``; rules are upserted by name."""

    yaml: str = Field(min_length=1, max_length=1_000_000)
