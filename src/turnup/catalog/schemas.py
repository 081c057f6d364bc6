"""Input shapes for the product catalog (TMF620 v4.1) plus Turnup's delivery and commercial blocks.

Everything is strict (``extra="forbid"``); money is ``Decimal`` (JSON numbers or strings), never float.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from turnup.catalog.characteristics import value_problem
from turnup.kernel.text import InputModel

LifecycleStatus = Literal["inDesign", "active", "retired"]
Channel = Literal["web", "mobile", "partner", "sales"]
CHANNELS: tuple[str, ...] = ("web", "mobile", "partner", "sales")
PriceType = Literal["recurring", "oneTime", "usage"]
PeriodType = Literal["day", "week", "month", "year"]
FulfilmentMethod = Literal["ship", "technician", "pickup"]
RecognitionMethod = Literal["pointInTime", "overTime", "percentComplete"]

_VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ECCN = re.compile(r"^(EAR99|[0-9][A-E][0-9]{3}(\.[a-z0-9]{1,4})*)$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def _version(value: str) -> str:
    if not _VERSION.match(value):
        raise ValueError("must be a dotted number such as '1.0' or '2.1.3'")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError("must be an ISO 4217 currency code such as 'GBP'")
    return value


def _eccn(value: str) -> str:
    if not _ECCN.match(value):
        raise ValueError("must be an ECCN such as '5A002' or '5D992.c', or 'EAR99'")
    return value


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError("must start with a letter or digit and contain only letters, digits, _ . : -")
    return value


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ValueError(f"item {i} ({v!r}) is repeated")
        seen.add(v)
    return values


Version = Annotated[str, Field(max_length=20), AfterValidator(_version)]
Currency = Annotated[str, AfterValidator(_currency)]
Eccn = Annotated[str, Field(max_length=40), AfterValidator(_eccn)]
Slug = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_slug)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4, allow_inf_nan=False)]
Channels = Annotated[list[Channel], AfterValidator(_unique)]
ReportingValue = str | StrictInt | StrictBool | Decimal


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


# --- common TMF pieces -------------------------------------------------------------------------------


class Money(Strict):
    unit: Currency
    value: Amount


class TimePeriod(Strict):
    startDateTime: AwareDatetime | None = None
    endDateTime: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TimePeriod:
        if self.startDateTime and self.endDateTime and self.endDateTime <= self.startDateTime:
            raise ValueError("endDateTime must be after startDateTime")
        return self


class Ref(Strict):
    """A TMF entity reference; only ``id`` is used, the rest is accepted as sent by TMF clients."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1, max_length=32)
    href: str | None = Field(default=None, max_length=2000)
    name: str | None = Field(default=None, max_length=200)
    version: str | None = Field(default=None, max_length=20)
    type_: str | None = Field(default=None, alias="@type", max_length=100)
    referredType: str | None = Field(default=None, alias="@referredType", max_length=100)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


# Turnup offerings compose one or more specifications: an array (a single TMF ref object is also accepted).
SpecRefs = Annotated[list[Ref], BeforeValidator(_one_or_many)]


class ChannelRef(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Channel
    name: str | None = Field(default=None, max_length=100)
    href: str | None = Field(default=None, max_length=2000)
    referredType: str | None = Field(default=None, alias="@referredType", max_length=100)


# --- delivery requirements ---------------------------------------------------------------------------


class PhysicalItem(Strict):
    sku: Slug
    quantity: StrictInt = Field(ge=1, le=10_000)
    fulfilmentMethod: FulfilmentMethod
    description: str | None = Field(default=None, max_length=500)


class PrefixV4Parameters(Strict):
    prefixLength: StrictInt = Field(ge=8, le=32)


class PrefixV6Parameters(Strict):
    prefixLength: StrictInt = Field(ge=16, le=128)


class PhoneNumberParameters(Strict):
    area: str = Field(
        default="buyer",
        min_length=1,
        max_length=20,
        description="'buyer' (the buyer's area) or an area code such as '0113'",
    )

    @model_validator(mode="after")
    def _area(self) -> PhoneNumberParameters:
        if self.area != "buyer" and not self.area.isdigit():
            raise ValueError("area must be 'buyer' or an area code made of digits")
        return self


class VlanParameters(Strict):
    tagging: Literal["single", "qinq"] = "single"


class AsnParameters(Strict):
    private: StrictBool = False


class CircuitIdParameters(Strict):
    circuitType: Slug = "crossConnect"


class _Logical(Strict):
    quantity: StrictInt = Field(default=1, ge=1, le=10_000)


class Ipv4PrefixResource(_Logical):
    kind: Literal["ipv4Prefix"]
    parameters: PrefixV4Parameters


class Ipv6PrefixResource(_Logical):
    kind: Literal["ipv6Prefix"]
    parameters: PrefixV6Parameters


class PhoneNumberResource(_Logical):
    kind: Literal["phoneNumber"]
    parameters: PhoneNumberParameters = Field(default_factory=PhoneNumberParameters)


class VlanResource(_Logical):
    kind: Literal["vlan"]
    parameters: VlanParameters = Field(default_factory=VlanParameters)


class AsnResource(_Logical):
    kind: Literal["asn"]
    parameters: AsnParameters = Field(default_factory=AsnParameters)


class CircuitIdResource(_Logical):
    kind: Literal["circuitId"]
    parameters: CircuitIdParameters = Field(default_factory=CircuitIdParameters)


LogicalResource = Annotated[
    Ipv4PrefixResource
    | Ipv6PrefixResource
    | PhoneNumberResource
    | VlanResource
    | AsnResource
    | CircuitIdResource,
    Field(discriminator="kind"),
]
LOGICAL_KINDS = ("ipv4Prefix", "ipv6Prefix", "phoneNumber", "vlan", "asn", "circuitId")


class FieldVisit(Strict):
    workType: Slug
    skills: Annotated[list[Slug], AfterValidator(_unique)] = Field(min_length=1, max_length=20)
    durationMinutes: StrictInt = Field(ge=1, le=24 * 60)


class ProvisioningAction(Strict):
    adapter: Slug
    action: Slug
    parameters: dict[str, ReportingValue] = Field(default_factory=dict)


class Milestone(Strict):
    name: Name
    offsetDays: StrictInt = Field(ge=0, le=3650)
    revenuePercent: Percent | None = None


class ProjectTemplate(Strict):
    name: Name
    milestones: list[Milestone] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _milestones(self) -> ProjectTemplate:
        _unique([m.name for m in self.milestones])
        percents = [m.revenuePercent for m in self.milestones if m.revenuePercent is not None]
        if percents and (len(percents) != len(self.milestones) or sum(percents) != 100):
            raise ValueError("milestone revenuePercent must be given for every milestone and sum to 100")
        return self


class DeliveryRequirements(Strict):
    physical: list[PhysicalItem] = Field(default_factory=list, max_length=50)
    logicalResources: list[LogicalResource] = Field(default_factory=list, max_length=50)
    fieldVisit: FieldVisit | None = None
    provisioning: list[ProvisioningAction] = Field(default_factory=list, max_length=50)
    implementationProject: ProjectTemplate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DeliveryRequirements:
        _unique([p.sku for p in self.physical])
        if any(p.fulfilmentMethod == "technician" for p in self.physical) and self.fieldVisit is None:
            raise ValueError("physical items fulfilled by 'technician' need a fieldVisit")
        return self


# --- commercial attributes shared by specifications and offerings ------------------------------------


class RevenueRecognition(Strict):
    method: RecognitionMethod
    standaloneSellingPrice: Money | None = None


ReportingAttributes = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=100)], ReportingValue], Field(max_length=50)
]


class ApprovalThresholdRule(Strict):
    kind: Literal["approvalThreshold"]
    name: Name | None = None
    maxDiscountPercentWithoutApproval: Percent


class VolumeDiscountRule(Strict):
    kind: Literal["volume"]
    name: Name | None = None
    minQuantity: StrictInt = Field(ge=2)
    discountPercent: Percent


class TermDiscountRule(Strict):
    kind: Literal["term"]
    name: Name | None = None
    minTermMonths: StrictInt = Field(ge=1, le=240)
    discountPercent: Percent


DiscountRule = Annotated[
    ApprovalThresholdRule | VolumeDiscountRule | TermDiscountRule, Field(discriminator="kind")
]
DISCOUNT_KINDS = ("approvalThreshold", "volume", "term")


# --- prices -----------------------------------------------------------------------------------------


class Tier(Strict):
    from_: Amount = Field(alias="from")
    to: Amount | None = None
    rate: Amount

    @model_validator(mode="after")
    def _bounds(self) -> Tier:
        if self.to is not None and self.to <= self.from_:
            raise ValueError("'to' must be greater than 'from'")
        return self


def tier_problems(tiers: list[Tier]) -> list[str]:
    """Tiers must start at 0, be contiguous (each 'from' = previous 'to') and only the last may be open."""
    problems: list[str] = []
    for i, tier in enumerate(tiers):
        if i == 0 and tier.from_ != 0:
            problems.append(f"tiers[0].from: the first tier must start at 0, not {tier.from_}")
        if i > 0:
            previous = tiers[i - 1]
            if previous.to is None:
                problems.append(f"tiers[{i - 1}].to: only the last tier may be open-ended")
            elif tier.from_ != previous.to:
                problems.append(
                    f"tiers[{i}].from: must equal the previous tier's 'to' ({previous.to}), got {tier.from_}"
                )
    return problems


class UnitOfMeasure(Strict):
    amount: Amount = Decimal(1)
    units: Slug


# --- characteristics (TMF620 productSpecCharacteristic, prodSpecCharValueUse) ----------------------------
# (checking a product's values against them: ``turnup.catalog.characteristics``)

CharacteristicType = Literal["string", "integer", "number", "boolean"]
CharacteristicScalar = StrictBool | StrictInt | Decimal | str


class CharacteristicValue(Strict):
    """One allowed value (``value``) or an inclusive range (``valueFrom``/``valueTo``) of a characteristic."""

    value: CharacteristicScalar | None = None
    valueFrom: Decimal | None = None
    valueTo: Decimal | None = None
    unitOfMeasure: str | None = Field(default=None, max_length=50)
    isDefault: StrictBool = False

    @model_validator(mode="after")
    def _one_shape(self) -> CharacteristicValue:
        ranged = self.valueFrom is not None or self.valueTo is not None
        if (self.value is None) == (not ranged):
            raise ValueError("give either value or a range (valueFrom and/or valueTo), not both or neither")
        if self.valueFrom is not None and self.valueTo is not None and self.valueFrom > self.valueTo:
            raise ValueError(f"valueFrom ({self.valueFrom}) is above valueTo ({self.valueTo})")
        return self


class SpecCharacteristic(Strict):
    """A characteristic a product of the specification carries: its type and allowed values or ranges (none
    listed: any value of the type)."""

    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    valueType: CharacteristicType = "string"
    configurable: StrictBool = True
    productSpecCharacteristicValue: list[CharacteristicValue] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _typed_values(self) -> SpecCharacteristic:
        for i, v in enumerate(self.productSpecCharacteristicValue):
            if v.value is not None and value_problem(self.valueType, v.value) is not None:
                raise ValueError(
                    f"productSpecCharacteristicValue[{i}].value: {v.value!r} is not a {self.valueType}"
                )
            if v.value is None and self.valueType not in ("integer", "number"):
                raise ValueError(
                    f"productSpecCharacteristicValue[{i}]: ranges need an integer or number type"
                )
        return self


class CharValueUse(Strict):
    """A price applies only to products whose characteristic ``name`` takes one of these values."""

    name: str = Field(min_length=1, max_length=100)
    productSpecCharacteristicValue: list[CharacteristicValue] = Field(min_length=1, max_length=100)


def check_characteristic_names(items: list[SpecCharacteristic]) -> None:
    _unique([c.name for c in items])


class _PriceFields(Strict):
    description: str | None = Field(default=None, max_length=2000)
    validFor: TimePeriod | None = None
    priceType: PriceType
    recurringChargePeriodType: PeriodType | None = None
    recurringChargePeriodLength: StrictInt | None = Field(default=None, ge=1, le=120)
    price: Money
    unitOfMeasure: UnitOfMeasure | None = None
    tiers: list[Tier] | None = Field(default=None, min_length=1, max_length=50)
    prodSpecCharValueUse: list[CharValueUse] | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _by_type(self) -> _PriceFields:
        check_price_shape(self.priceType, self.recurringChargePeriodType, self.tiers, self.unitOfMeasure)
        return self


def check_price_shape(
    price_type: str, period: str | None, tiers: list[Tier] | None, unit: UnitOfMeasure | None
) -> None:
    """Raise ValueError describing the first rule a price of this type breaks."""
    if price_type == "recurring" and period is None:
        raise ValueError("recurringChargePeriodType: required for a recurring price (e.g. 'month')")
    if price_type != "recurring" and period is not None:
        raise ValueError(f"recurringChargePeriodType: not allowed on a {price_type} price")
    if price_type == "usage":
        if not tiers:
            raise ValueError("tiers: a usage price needs at least one tier")
        if unit is None:
            raise ValueError("unitOfMeasure: a usage price needs a unit (e.g. {units: GB})")
        problems = tier_problems(tiers)
        if problems:
            raise ValueError("; ".join(problems))
    elif tiers:
        raise ValueError(f"tiers: only usage prices have tiers, this one is {price_type}")


class ProductOfferingPriceCreate(_PriceFields):
    name: Name
    version: Version = "1.0"
    lifecycleStatus: LifecycleStatus = "inDesign"


class ProductOfferingPriceUpdate(Strict):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    version: Version | None = None
    lifecycleStatus: LifecycleStatus | None = None
    validFor: TimePeriod | None = None
    priceType: PriceType | None = None
    recurringChargePeriodType: PeriodType | None = None
    recurringChargePeriodLength: StrictInt | None = Field(default=None, ge=1, le=120)
    price: Money | None = None
    unitOfMeasure: UnitOfMeasure | None = None
    tiers: list[Tier] | None = Field(default=None, min_length=1, max_length=50)


# --- categories -------------------------------------------------------------------------------------


class CategoryCreate(Strict):
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    version: Version = "1.0"
    lifecycleStatus: LifecycleStatus = "inDesign"
    parentId: str | None = Field(default=None, min_length=1, max_length=32)
    isRoot: StrictBool | None = None
    validFor: TimePeriod | None = None


class CategoryUpdate(Strict):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    version: Version | None = None
    lifecycleStatus: LifecycleStatus | None = None
    parentId: str | None = Field(default=None, min_length=1, max_length=32)
    isRoot: StrictBool | None = None
    validFor: TimePeriod | None = None


# --- specifications ---------------------------------------------------------------------------------


class _ComponentFields(Strict):
    revenueRecognition: RevenueRecognition | None = None
    reportingAttributes: ReportingAttributes = Field(default_factory=dict)
    exportClassification: Eccn | None = None


class ProductSpecificationCreate(_ComponentFields):
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    brand: str | None = Field(default=None, max_length=100)
    productNumber: str | None = Field(default=None, max_length=100)
    version: Version = "1.0"
    lifecycleStatus: LifecycleStatus = "inDesign"
    validFor: TimePeriod | None = None
    deliveryRequirements: DeliveryRequirements = Field(default_factory=DeliveryRequirements)
    channel: list[ChannelRef] = Field(default_factory=list)
    productSpecCharacteristic: list[SpecCharacteristic] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _recognition(self) -> ProductSpecificationCreate:
        check_recognition(self.revenueRecognition, self.deliveryRequirements)
        _unique([c.id for c in self.channel])
        check_characteristic_names(self.productSpecCharacteristic)
        return self


def check_recognition(recognition: RevenueRecognition | None, delivery: DeliveryRequirements | None) -> None:
    if (
        recognition
        and recognition.method == "percentComplete"
        and (delivery is None or delivery.implementationProject is None)
    ):
        raise ValueError(
            "revenueRecognition.method: percentComplete needs "
            "deliveryRequirements.implementationProject (its milestones measure progress)"
        )


class ProductSpecificationUpdate(Strict):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    brand: str | None = Field(default=None, max_length=100)
    productNumber: str | None = Field(default=None, max_length=100)
    version: Version | None = None
    lifecycleStatus: LifecycleStatus | None = None
    statusReason: str | None = Field(default=None, max_length=500)
    validFor: TimePeriod | None = None
    deliveryRequirements: DeliveryRequirements | None = None
    channel: list[ChannelRef] | None = None
    revenueRecognition: RevenueRecognition | None = None
    reportingAttributes: ReportingAttributes | None = None
    exportClassification: Eccn | None = None


# --- offerings --------------------------------------------------------------------------------------


class ProductOfferingCreate(_ComponentFields):
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    version: Version = "1.0"
    lifecycleStatus: LifecycleStatus = "inDesign"
    statusReason: str | None = Field(default=None, max_length=500)
    isBundle: StrictBool = False
    isSellable: StrictBool = True
    validFor: TimePeriod | None = None
    productSpecification: SpecRefs = Field(default_factory=list)
    bundledProductOffering: list[Ref] = Field(default_factory=list)
    productOfferingPrice: list[Ref] = Field(default_factory=list)
    category: list[Ref] = Field(default_factory=list)
    channel: list[ChannelRef] = Field(default_factory=list)
    discountRules: list[DiscountRule] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _shape(self) -> ProductOfferingCreate:
        check_offering_shape(self.isBundle, self.productSpecification, self.bundledProductOffering)
        for attr in (
            "productSpecification",
            "bundledProductOffering",
            "productOfferingPrice",
            "category",
            "channel",
        ):
            _unique([r.id for r in getattr(self, attr)])
        return self


def check_offering_shape(is_bundle: bool, specs: list[Any], members: list[Any]) -> None:
    if is_bundle and len(members) < 2:
        raise ValueError("bundledProductOffering: a bundle (isBundle=true) needs at least 2 offerings")
    if not is_bundle and members:
        raise ValueError("bundledProductOffering: only allowed when isBundle is true")


class ProductOfferingUpdate(Strict):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    version: Version | None = None
    lifecycleStatus: LifecycleStatus | None = None
    statusReason: str | None = Field(default=None, max_length=500)
    isBundle: StrictBool | None = None
    isSellable: StrictBool | None = None
    validFor: TimePeriod | None = None
    productSpecification: SpecRefs | None = None
    bundledProductOffering: list[Ref] | None = None
    productOfferingPrice: list[Ref] | None = None
    category: list[Ref] | None = None
    channel: list[ChannelRef] | None = None
    discountRules: list[DiscountRule] | None = None
    revenueRecognition: RevenueRecognition | None = None
    reportingAttributes: ReportingAttributes | None = None
    exportClassification: Eccn | None = None
