"""Outbound mail port: messages are rows written in the caller's transaction, sent after commit.

``enqueue`` adds an ``OutboundMail`` (status ``pending``) to the current transaction, so a rolled-back
change never sends anything. ``deliver_pending`` sends due messages over SMTP (stdlib ``smtplib``) and
records the outcome on each row: ``sent``, or ``pending`` again with ``last_error`` and a later
``next_attempt_at`` (exponential backoff), or ``failed`` after ``TURNUP_SMTP_MAX_ATTEMPTS``. Once a message
is sent its body is replaced by ``redacted_body`` when one was given.

Secrets never go into the table: a message that must carry one (an invitation link) is stored with a
placeholder, and the sender's ``personalise`` callback makes the secret at send time, in the transaction
that records the sending, returning the body to send (only that body, never stored, holds it).

Settings: ``TURNUP_SMTP_HOST``, ``TURNUP_SMTP_PORT``, ``TURNUP_SMTP_FROM`` (read on every call).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from turnup.kernel import clock
from turnup.kernel.db import Base, UTCDateTime
from turnup.kernel.ids import new_id


class MailSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TURNUP_", env_file=None, extra="ignore")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "Turnup <noreply@turnup.invalid>"
    smtp_timeout_seconds: float = 10.0
    smtp_max_attempts: int = 8
    smtp_backoff_base_seconds: float = 30.0


def mail_settings() -> MailSettings:
    return MailSettings()


class OutboundMail(Base):
    __tablename__ = "outbound_mail"
    __table_args__ = (Index("ix_outbound_mail_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    redacted_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ref_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ref_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MailTransport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass
class SmtpTransport:
    host: str
    port: int
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: MailSettings | None = None) -> SmtpTransport:
        settings = settings or mail_settings()
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds)

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(message)


def enqueue(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    ref_type: str | None = None,
    ref_id: str | None = None,
    redacted_body: str | None = None,
) -> OutboundMail:
    """Add a message to the caller's transaction; it is sent only after that transaction commits."""
    now = clock.now()
    mail = OutboundMail(
        id=new_id(),
        to_address=to,
        subject=subject,
        body=body,
        redacted_body=redacted_body,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        ref_type=ref_type,
        ref_id=ref_id,
        created_at=now,
    )
    session.add(mail)
    return mail


# Given a locked pending message, the body to send (it may write, e.g. a fresh secret's hash, in the session).
Personalise = Callable[[Session, OutboundMail], str]


def build_message(mail: OutboundMail, sender: str, body: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Message-ID"] = f"<{mail.id}@turnup>"
    message.set_content(mail.body if body is None else body)
    return message


def deliver_pending(
    session: Session,
    transport: MailTransport | None = None,
    *,
    ref_id: str | None = None,
    limit: int = 100,
    personalise: Personalise | None = None,
) -> list[OutboundMail]:
    """Send due pending messages (optionally only those of one ``ref_id``); commits after each one.

    Each message is locked while it is sent (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
    writers), so two deliverers never send the same message twice.
    """
    settings = mail_settings()
    transport = transport or SmtpTransport.from_settings(settings)
    session.commit()  # start from a clean transaction
    done: list[OutboundMail] = []
    for _ in range(limit):
        stmt = (
            select(OutboundMail)
            .where(OutboundMail.status == "pending", OutboundMail.next_attempt_at <= clock.now())
            .order_by(OutboundMail.next_attempt_at, OutboundMail.id)
            .limit(1)
        )
        if ref_id is not None:
            stmt = stmt.where(OutboundMail.ref_id == ref_id)
        if session.get_bind().dialect.name != "sqlite":
            stmt = stmt.with_for_update(skip_locked=True)
        mail = session.scalars(stmt).first()
        if mail is None:
            session.rollback()
            break
        mail.attempts += 1
        body = personalise(session, mail) if personalise is not None else mail.body
        try:
            transport.send(build_message(mail, settings.smtp_from, body))
        except (OSError, smtplib.SMTPException) as exc:
            mail.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if mail.attempts >= settings.smtp_max_attempts:
                mail.status = "failed"
            else:
                delay = settings.smtp_backoff_base_seconds * 2 ** (mail.attempts - 1)
                mail.next_attempt_at = clock.now() + timedelta(seconds=delay)
        else:
            mail.status, mail.sent_at, mail.last_error = "sent", clock.now(), None
            if mail.redacted_body is not None:
                mail.body, mail.redacted_body = mail.redacted_body, None
        session.commit()
        done.append(mail)
    return done
