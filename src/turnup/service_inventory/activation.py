"""TMF640 Service Activation (server side): an external orchestrator activates, suspends, resumes, modifies
and terminates service instances directly, through the same provisioning adapters the order workflow uses.

- ``POST …/service`` with ``serviceSpecification.id`` (a specification with a provisioning entry),
  ``relatedParty`` (the customer) and ``state`` ``designed`` or ``active``: the service is stored
  ``designed`` (committed), then — for ``active`` — the adapter is called with key ``<service id>:activate``
  and the service becomes ``active``. If the adapter fails the designed service stays (the answer carries
  ``activationError``); ``PATCH state=active`` retries with the same key (no second effect).
- ``PATCH …/service/{id}`` with ``state`` (``active`` = activate/resume, ``inactive`` = suspend,
  ``terminated`` = deactivate) or ``serviceCharacteristic`` (modify): one change per request. PATCHing the
  state a service already has is a no-op (safe client retries). A service that is the subject of an
  unfinished product order is refused (409), like a second order would be.

The adapter call runs with no database transaction open, under the per-step timeout
(``TURNUP_STEP_TIMEOUT_SECONDS``). Adapter failures are 409 ``Adapter failed`` with nothing changed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from turnup import catalog
from turnup.accounts import find_customer
from turnup.catalog import SpecificationTerms
from turnup.kernel import audit
from turnup.kernel.errors import Conflict, InvalidInput
from turnup.kernel.ids import new_id
from turnup.kernel.text import InputModel
from turnup.provisioning import (
    AdapterContext,
    AdapterRegistry,
    AdapterRequest,
    AdapterResult,
    AdapterTimeout,
    available_adapters,
    call_with_timeout,
    step_timeout,
)
from turnup.service_inventory import services as inventory
from turnup.service_inventory.guards import open_order as open_order_of
from turnup.service_inventory.orm import Service

ACTIVATION_API = "ServiceActivationAndConfiguration"
ORIGIN = "tmf640"  # the "order" recorded in a service's history for changes made through this API


class _Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class Ref(_Strict):
    id: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=50)
    referredType: str | None = Field(default=None, alias="@referredType")


class Characteristic(_Strict):
    name: str = Field(min_length=1, max_length=100)
    value: str | int | float | bool | None = None


class ServiceActivationCreate(_Strict):
    name: str | None = Field(default=None, max_length=200)
    state: Literal["designed", "active"] = "active"
    serviceSpecification: Ref
    relatedParty: list[Ref] = Field(min_length=1, max_length=5)
    serviceCharacteristic: list[Characteristic] = Field(default_factory=list, max_length=50)
    type_: str | None = Field(default=None, alias="@type")


class ServiceActivationUpdate(_Strict):
    state: Literal["active", "inactive", "terminated"] | None = None
    serviceCharacteristic: list[Characteristic] | None = Field(default=None, max_length=50)


def _call(
    session: Session,
    adapter: str,
    operation: str,
    key: str,
    service_id: str,
    action: str,
    parameters: dict[str, Any],
) -> AdapterResult | Conflict:
    """Call the adapter under the workflow steps' timeout rule; a failure is returned as a ``Conflict``."""
    registry = AdapterRegistry(
        AdapterContext(sessions=sessionmaker(bind=session.get_bind(), expire_on_commit=False), settings={})
    )
    request = AdapterRequest(
        idempotency_key=key,
        service_id=service_id,
        action=action,
        parameters={k: v for k, v in parameters.items() if not k.startswith("_")},
    )
    timeout = step_timeout(parameters)
    try:
        return call_with_timeout(registry, adapter, operation, request, timeout)
    except AdapterTimeout as exc:
        return Conflict(str(exc), reason="Adapter failed")
    except Exception as exc:
        return Conflict(f"adapter {adapter!r} {operation} failed: {exc}", reason="Adapter failed")


def _provisioning_entry(spec: SpecificationTerms) -> dict[str, Any]:
    for entry in spec.delivery_requirements.get("provisioning") or []:
        if (entry.get("kind") or "serviceActivation") == "serviceActivation" and entry.get("adapter"):
            return dict(entry)
    raise InvalidInput(f"serviceSpecification.id: specification {spec.id!r} has no provisioning adapter")


def create(session: Session, data: ServiceActivationCreate, actor: str) -> dict[str, Any]:
    customers = [p for p in data.relatedParty if (p.role or "customer") == "customer"]
    if len(customers) != 1:
        raise InvalidInput("relatedParty: exactly one party with role 'customer' is required")
    customer = find_customer(session, customers[0].id)
    if customer is None:
        raise InvalidInput(f"relatedParty[0].id: unknown customer {customers[0].id!r}")
    spec = catalog.specification_terms(session, data.serviceSpecification.id)
    if spec is None:
        raise InvalidInput(f"serviceSpecification.id: unknown specification {data.serviceSpecification.id!r}")
    entry = _provisioning_entry(spec)
    if entry["adapter"] not in available_adapters():
        raise InvalidInput(f"serviceSpecification.id: adapter {entry['adapter']!r} is not installed")
    offering = next(iter(catalog.offerings_with_specification(session, spec.id)), None)
    if offering is None:
        raise InvalidInput(f"serviceSpecification.id: specification {spec.id!r} is in no product offering")
    characteristics = {
        **dict(entry.get("parameters") or {}),
        **{c.name: c.value for c in data.serviceCharacteristic},
    }
    service_id = new_id()
    service = inventory.design_service(
        session,
        service_id=service_id,
        name=data.name or spec.name,
        customer_id=customer.id,
        offering_id=offering.id,
        offering_name=offering.name,
        specification_id=spec.id,
        adapter=entry["adapter"],
        characteristics=characteristics,
        order_id=ORIGIN,
        order_item_id=service_id,
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="service.create",
        resource_type="service",
        resource_id=service_id,
        details={"api": ACTIVATION_API, "state": data.state},
    )
    session.commit()
    if data.state == "designed":
        return {"service": service}
    return {
        "service": service,
        **_change(session, service, "active", None, actor, action=entry.get("action") or "activate"),
    }


def update(session: Session, service_id: str, data: ServiceActivationUpdate, actor: str) -> dict[str, Any]:
    if (data.state is None) == (data.serviceCharacteristic is None):
        raise InvalidInput("state: give either state or serviceCharacteristic (one change per request)")
    service = inventory.get_service(session, service_id)
    if data.serviceCharacteristic is not None and not data.serviceCharacteristic:
        raise InvalidInput("serviceCharacteristic: nothing to modify")
    changes = (
        {c.name: c.value for c in data.serviceCharacteristic}
        if data.serviceCharacteristic is not None
        else None
    )
    return {"service": service, **_change(session, service, data.state, changes, actor, action=None)}


def _change(
    session: Session,
    service: Service,
    state: str | None,
    changes: dict[str, Any] | None,
    actor: str,
    action: str | None,
) -> dict[str, Any]:
    locked = inventory.lock_service(session, service.id)
    assert locked is not None
    service = locked
    open_order = open_order_of(session, service.id)  # guards registered by the ordering feature
    if open_order is not None:
        raise Conflict(
            f"service {service.id} is the subject of productOrder {open_order}, which is not finished",
            reason="Service has an order in progress",
        )
    if state is not None and state == service.state:
        session.rollback()
        return {}
    if changes is not None:
        if service.state != "active":
            raise Conflict(
                f"service {service.id} is {service.state}; only active services can be modified",
                reason="Illegal state transition",
            )
        operation, target = "modify", "active"
    else:
        operation = {
            ("designed", "active"): "activate",
            ("reserved", "active"): "activate",
            ("inactive", "active"): "resume",
            ("active", "inactive"): "suspend",
            ("active", "terminated"): "deactivate",
            ("inactive", "terminated"): "deactivate",
        }.get((service.state, str(state)), "")
        if not operation:
            raise Conflict(
                f"state: a {service.state} service cannot become {state}", reason="Illegal state transition"
            )
        target = str(state)
    seq = len(service.history)
    key = f"{service.id}:{operation}" if operation == "activate" else f"{service.id}:{operation}:{seq}"
    adapter, parameters = service.adapter, dict(service.characteristics) | (changes or {})
    service_id = service.id
    session.rollback()  # no transaction is held while the adapter works (touch no ORM object until done)
    result = _call(session, adapter, operation, key, service_id, action or operation, parameters)
    if isinstance(result, Conflict):
        if operation == "activate":
            return {"activationError": str(result)}
        raise result
    service = session.get(Service, service_id, with_for_update=True, populate_existing=True)  # type: ignore[assignment]
    if service.state != target or changes is not None:
        ids = {"order_id": ORIGIN, "order_item_id": service_id}
        if changes is not None:
            inventory.modify_characteristics(session, service, changes, **ids)
        else:
            inventory.change_state(
                session, service, target, action=operation, network_ref=result.network_ref, **ids
            )
        if target == "terminated":
            inventory.release_resources(session, service, actor=actor, **ids)
    audit.record(
        session,
        actor=actor,
        action=f"service.{operation}",
        resource_type="service",
        resource_id=service.id,
        details={"api": ACTIVATION_API, "key": key},
    )
    session.commit()
    return {}
