"""Onboarding records with their steps, and portal invitations (token stored hashed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from turnup.kernel.db import Base, JSONDoc, UTCDateTime
from turnup.kernel.ids import new_id

STEP_NAMES = ("createAccount", "screenParties", "invitePortalUser", "sendWelcome")


class Onboarding(Base):
    __tablename__ = "onboarding"
    __table_args__ = (CheckConstraint("state IN ('inProgress', 'onHold', 'completed')", name="state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    state: Mapped[str] = mapped_column(String(20), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), nullable=True, index=True)
    contact_email: Mapped[str] = mapped_column(String(320))
    request: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    screening_case_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    portal_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    steps: Mapped[list[OnboardingStep]] = relationship(
        order_by="OnboardingStep.seq", lazy="selectin", cascade="all, delete-orphan"
    )


class OnboardingStep(Base):
    __tablename__ = "onboarding_step"
    __table_args__ = (UniqueConstraint("onboarding_id", "seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    onboarding_id: Mapped[str] = mapped_column(ForeignKey("onboarding.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)


class PortalInvitation(Base):
    """An invitation for a portal user (role ``customer``) bound to one customer account."""

    __tablename__ = "portal_invitation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    onboarding_id: Mapped[str] = mapped_column(ForeignKey("onboarding.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
