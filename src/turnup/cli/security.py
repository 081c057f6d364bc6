"""``turnup security …``: the permission matrix and the access review; ``turnup users roles``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from turnup import security
from turnup.cli.common import CLI_ACTOR, cli_session, console
from turnup.security.permissions import (
    APPROVAL_STEPS,
    CONFINED_PERMISSIONS,
    MATRIX,
    PERMISSIONS,
    ROLE_PERMISSIONS,
    confined_permissions,
)

app = typer.Typer(help="Roles, permissions and the access review.", no_args_is_help=True)


def _matrix_json() -> dict[str, object]:
    return {
        "permissions": PERMISSIONS,
        "roles": {
            role: {
                "description": MATRIX.descriptions.get(role, ""),
                "grants": sorted(ROLE_PERMISSIONS[role]),
                "confined": sorted(CONFINED_PERMISSIONS.get(role, set())),
                "permissions": security.effective_permissions([role]),
                "decidesApprovalSteps": sorted(s for s, rs in APPROVAL_STEPS.items() if role in rs),
            }
            for role in ROLE_PERMISSIONS
        },
        "approvalSteps": APPROVAL_STEPS,
    }


@app.command("roles")
def roles(
    as_json: bool = typer.Option(False, "--json", help="the matrix as JSON"),
    by_permission: bool = typer.Option(False, "--by-permission", help="one row per permission"),
) -> None:
    """Print the permission matrix: each role, what it grants, which approval steps it decides."""
    if as_json:
        typer.echo(json.dumps(_matrix_json(), indent=2))
        return
    if by_permission:
        table = Table("permission", "what it allows", "roles (* = confined to own customer)")
        for permission, text in PERMISSIONS.items():
            holders = [r for r in ROLE_PERMISSIONS if permission in security.effective_permissions([r])]
            holders += [f"{r}*" for r in ROLE_PERMISSIONS if permission in confined_permissions([r])]
            table.add_row(permission, text, ", ".join(holders))
        console.print(table)
        return
    table = Table("role", "who", "grants", "decides approval steps")
    for role in ROLE_PERMISSIONS:
        granted = sorted(ROLE_PERMISSIONS[role])
        confined = sorted(CONFINED_PERMISSIONS.get(role, set()))
        text = ", ".join(granted) + (f"; own customer only: {', '.join(confined)}" if confined else "")
        steps = sorted(s for s, rs in APPROVAL_STEPS.items() if role in rs)
        table.add_row(role, MATRIX.descriptions.get(role, ""), text, ", ".join(steps))
    console.print(table)


@app.command("access-review")
def access_review(
    as_json: bool = typer.Option(False, "--json", help="the review as JSON"),
    dormant_days: int = typer.Option(90, help="no login or token use for this many days: dormant"),
    changes_days: int = typer.Option(90, help="privilege changes of this many recent days"),
) -> None:
    """Who can do what: per user roles, permissions, last login, tokens' last use, dormancy, changes."""
    with cli_session() as session:
        review = security.access_review(session, dormant_days=dormant_days, changes_days=changes_days)
    if as_json:
        typer.echo(json.dumps([u.as_json() for u in review], indent=2))
        return
    table = Table(
        "user", "active", "roles", "permissions", "last login", "tokens (last used)", "dormant", "changes"
    )
    for column in table.columns:
        column.overflow = "fold"
    for u in review:
        tokens = "; ".join(
            f"{t.name} {t.prefix}… "
            + ("revoked" if t.revoked_at else (t.last_used_at.isoformat() if t.last_used_at else "never"))
            for t in u.tokens
        )
        changes = "; ".join(
            " ".join(
                [c["at"][:10], c["actor"], *(f"+{r}" for r in c["added"]), *(f"-{r}" for r in c["removed"])]
            )
            for c in u.privilege_changes
        )
        table.add_row(
            u.username,
            "yes" if u.active else "no",
            ", ".join(u.roles),
            str(len(u.permissions))
            + (f" (+{len(u.confined_permissions)} confined)" if u.confined_permissions else ""),
            u.last_login_at.isoformat() if u.last_login_at else "never",
            tokens or "none",
            "DORMANT" if u.dormant else "",
            changes,
        )
    console.print(table)


def user_roles(
    username: str,
    add: list[str] = typer.Option([], "--add", help="a role to add (repeatable)"),
    remove: list[str] = typer.Option([], "--remove", help="a role to remove (repeatable)"),
) -> None:
    """Add or remove roles of a user (audited as user.roles)."""
    with cli_session() as session:
        after = security.change_roles(session, username, add=add, remove=remove, actor=CLI_ACTOR)
    console.print(f"User [bold]{username}[/] has roles {', '.join(after) or '(none)'}")
