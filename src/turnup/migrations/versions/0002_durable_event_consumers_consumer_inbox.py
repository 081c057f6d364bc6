"""durable event consumers: consumer_inbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 13:53:54.458901
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import turnup.kernel.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consumer_inbox",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("resource_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("total_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", turnup.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", turnup.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", turnup.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("handled_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["outbox_event.id"],
            name=op.f("fk_consumer_inbox_event_id_outbox_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_consumer_inbox")),
        sa.UniqueConstraint("event_id", "consumer", name="uq_consumer_inbox_event_consumer"),
    )
    with op.batch_alter_table("consumer_inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consumer_inbox_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_consumer_inbox_key", ["consumer", "resource_key", "seq"], unique=False)
        batch_op.create_index("ix_consumer_inbox_status_seq", ["status", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consumer_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_consumer_inbox_status_seq")
        batch_op.drop_index("ix_consumer_inbox_key")
        batch_op.drop_index(batch_op.f("ix_consumer_inbox_event_id"))

    op.drop_table("consumer_inbox")
