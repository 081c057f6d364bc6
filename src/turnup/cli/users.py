"""``turnup users …``: users, their passwords and second factor, and API tokens."""

from __future__ import annotations

import re
from datetime import timedelta

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console
from turnup.kernel import clock
from turnup.kernel.errors import InvalidInput
from turnup.security import (
    activate_user,
    create_api_token,
    create_user,
    deactivate_user,
    disable_totp,
    enable_totp,
    list_api_tokens,
    revoke_api_token,
    rotate_api_token,
    set_password,
)
from turnup.security.orm import User
from turnup.security.services import token_state
from turnup.security.totp import provisioning_uri

app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
totp_app = typer.Typer(help="TOTP second factor for a user's web login.", no_args_is_help=True)
app.add_typer(totp_app, name="totp")

_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m``."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(f"--expires-in: {text!r} is not a positive duration like 90d, 12h or 30m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _when(value: object) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"  # type: ignore[attr-defined]


@app.command("create")
def users_create(
    username: str,
    password: str | None = typer.Option(None, help="for web login (12+ characters, not a common password)"),
    role: list[str] = typer.Option(["viewer"], help="admin | operator | viewer | … (repeatable)"),
) -> None:
    """Create a user."""
    with cli_session() as session:
        user = create_user(session, username=username, password=password, roles=role, actor=CLI_ACTOR)
        console.print(f"Created user [bold]{user.username}[/] with roles {', '.join(user.roles)}")


@app.command("password")
def users_password(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Set a user's password (checked against the password policy)."""
    with cli_session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise InvalidInput(f"user {username!r} not found")
        set_password(session, user.id, password, actor=CLI_ACTOR)
        session.commit()
        console.print(f"Password of [bold]{username}[/] set")


@app.command("deactivate")
def users_deactivate(username: str) -> None:
    """Deactivate a user: web sessions end and API tokens are revoked at once."""
    with cli_session() as session:
        ended = deactivate_user(session, username, actor=CLI_ACTOR)
        console.print(
            f"Deactivated [bold]{username}[/]: {ended['sessions']} session(s) ended, "
            f"{ended['tokens']} token(s) revoked"
        )


@app.command("activate")
def users_activate(username: str) -> None:
    """Let a deactivated user sign in again (revoked tokens stay revoked)."""
    with cli_session() as session:
        activate_user(session, username, actor=CLI_ACTOR)
        console.print(f"Activated [bold]{username}[/]")


@app.command("token")
def users_token(
    username: str,
    name: str = typer.Option("cli"),
    role: list[str] = typer.Option([], help="scope the token to these of the user's roles (repeatable)"),
    expires_in: str | None = typer.Option(
        None, help="lifetime like 90d, 12h, 30m (default TURNUP_API_TOKEN_DEFAULT_DAYS)"
    ),
) -> None:
    """Issue an API token for a user (printed once)."""
    with cli_session() as session:
        lifetime = parse_duration(expires_in) if expires_in else None
        secret = create_api_token(
            session, username=username, name=name, roles=role or None, expires_in=lifetime, actor=CLI_ACTOR
        )
        console.print(f"API token: {secret}")


@app.command("revoke")
def users_revoke(token: str = typer.Argument(..., help="token id or prefix (as listed)")) -> None:
    """Revoke an API token: refused from the next request on."""
    with cli_session() as session:
        row = revoke_api_token(session, token, actor=CLI_ACTOR)
        console.print(f"Revoked API token {row.id} ({row.prefix}…)")


@app.command("rotate")
def users_rotate(token: str = typer.Argument(..., help="token id or prefix (as listed)")) -> None:
    """Replace an API token with a new secret (same user, name, scopes, lifetime); the old one is revoked."""
    with cli_session() as session:
        row, secret = rotate_api_token(session, token, actor=CLI_ACTOR)
        console.print(f"New API token {row.id}: {secret}")


@app.command("list")
def users_list(tokens: bool = typer.Option(True, help="also list API tokens")) -> None:
    """List users, and their API tokens with scopes, expiry and last use."""
    with cli_session() as session:
        table = Table("username", "name", "roles", "active", "totp")
        for u in session.scalars(select(User).order_by(User.username)):
            table.add_row(
                u.username, u.display_name, ", ".join(u.roles), str(u.active), str(bool(u.totp_secret))
            )
        console.print(table)
        if not tokens:
            return
        now = clock.now()
        listing = Table("id", "prefix", "user", "name", "scopes", "state", "expires", "last used", "created")
        for t, username in list_api_tokens(session):
            listing.add_row(
                t.id,
                t.prefix,
                username,
                t.name,
                ", ".join(t.scopes) if t.scopes is not None else "(all roles)",
                token_state(t, now),
                _when(t.expires_at),
                _when(t.last_used_at),
                _when(t.created_at),
            )
        console.print(listing)


@totp_app.command("enable")
def totp_enable(username: str) -> None:
    """Give USER a new TOTP secret (shown once); their login then needs the 6-digit code."""
    with cli_session() as session:
        secret = enable_totp(session, username, actor=CLI_ACTOR)
        console.print(f"TOTP secret (shown once): {secret}")
        console.print(f"otpauth URI: {provisioning_uri(secret, username)}", soft_wrap=True)


@totp_app.command("disable")
def totp_disable(username: str) -> None:
    """Remove USER's TOTP second factor."""
    with cli_session() as session:
        disable_totp(session, username, actor=CLI_ACTOR)
        console.print(f"TOTP disabled for [bold]{username}[/]")
