"""authentication: login counters, token expiry, scopes and last use, TOTP

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:59:22.029044

Tokens issued before this revision get ``expires_at = created_at + 90 days`` (the new default lifetime);
``scopes`` stays NULL for them (all of the user's roles).
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import turnup.kernel.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_TOKEN_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    op.create_table(
        "login_counter",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", turnup.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", turnup.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_counter")),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", turnup.kernel.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_used_at", turnup.kernel.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "scopes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
                nullable=True,
            )
        )
    tokens = sa.table(
        "api_token",
        sa.column("id", sa.String(32)),
        sa.column("created_at", turnup.kernel.db.UTCDateTime(timezone=True)),
        sa.column("expires_at", turnup.kernel.db.UTCDateTime(timezone=True)),
    )
    bind = op.get_bind()
    for token_id, created_at in bind.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        bind.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(expires_at=created_at + LEGACY_TOKEN_LIFETIME)
        )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at", existing_type=turnup.kernel.db.UTCDateTime(timezone=True), nullable=False
        )

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_secret")

    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("scopes")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")

    op.drop_table("login_counter")
