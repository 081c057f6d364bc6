"""Agreement tables: the agreement, every version of its document (the bytes themselves) and signatures."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from turnup.kernel.db import Base, UTCDateTime
from turnup.kernel.ids import new_id


class Agreement(Base):
    __tablename__ = "agreement"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    document_number: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    agreement_type: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(30), index=True)  # inProgress | signed
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    quote_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    term_months: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    renewal: Mapped[str] = mapped_column(String(20))  # automatic | none
    renewal_term_months: Mapped[int] = mapped_column(Integer)
    notice_period_days: Mapped[int] = mapped_column(Integer)
    notice_date: Mapped[date] = mapped_column(Date)  # last day to give notice before the term ends
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    documents: Mapped[list[AgreementDocument]] = relationship(
        order_by="AgreementDocument.version", lazy="selectin", viewonly=True
    )
    signatures: Mapped[list[AgreementSignature]] = relationship(
        order_by="(AgreementSignature.signed_at, AgreementSignature.id)", lazy="selectin", viewonly=True
    )


class AgreementDocument(Base):
    """One version of the agreement text, stored as the exact bytes that are hashed and signed."""

    __tablename__ = "agreement_document"
    __table_args__ = (UniqueConstraint("agreement_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreement.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementSignature(Base):
    """An electronic signature: who signed which version, when, over which SHA-256 of its bytes."""

    __tablename__ = "agreement_signature"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreement.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    signer_role: Mapped[str] = mapped_column(String(20))  # customer | provider
    signer_name: Mapped[str] = mapped_column(String(200))
    signer_email: Mapped[str] = mapped_column(String(320))
    organisation: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sha256: Mapped[str] = mapped_column(String(64))
    # HMAC-SHA256, with the key outside the database (turnup.kernel.keys), over the signature's fields and the
    # SHA-256 of the signed bytes: recomputing SHA-256 after editing rows does not make a matching MAC.
    # NULL only for a signature made before migration 0011 that no longer matched its document then.
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)
