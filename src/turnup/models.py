"""Imports every ORM module so ``Base.metadata`` is complete (Alembic and test fixtures use this)."""

from turnup.accounts import orm as accounts_orm  # noqa: F401
from turnup.kernel import audit, outbox  # noqa: F401
from turnup.kernel.db import Base
from turnup.security import orm as security_orm  # noqa: F401

metadata = Base.metadata
