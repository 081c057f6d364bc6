"""Imports every ORM module so ``Base.metadata`` is complete (Alembic and test fixtures use this)."""

from turnup.accounts import orm as accounts_orm  # noqa: F401
from turnup.agreements import orm as agreements_orm  # noqa: F401
from turnup.billing import orm as billing_orm  # noqa: F401
from turnup.catalog import orm as catalog_orm  # noqa: F401
from turnup.compliance import orm as compliance_orm  # noqa: F401
from turnup.inventory.logical import orm as logical_inventory_orm  # noqa: F401
from turnup.inventory.physical import orm as physical_inventory_orm  # noqa: F401
from turnup.kernel import audit, endpoint, idempotency, outbox  # noqa: F401
from turnup.kernel import mail as outbound_mail  # noqa: F401
from turnup.kernel.db import Base
from turnup.onboarding import orm as onboarding_orm  # noqa: F401
from turnup.ordering import orm as ordering_orm  # noqa: F401
from turnup.provisioning import orm as provisioning_orm  # noqa: F401
from turnup.quoting import orm as quoting_orm  # noqa: F401
from turnup.revenue import orm as revenue_orm  # noqa: F401
from turnup.security import orm as security_orm  # noqa: F401
from turnup.service_inventory import orm as service_inventory_orm  # noqa: F401
from turnup.usage import orm as usage_orm  # noqa: F401

metadata = Base.metadata
