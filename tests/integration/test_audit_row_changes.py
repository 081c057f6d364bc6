"""Every change's audit entry carries before and after (issue 15 item 4), also where the use case recorded
only ``details``: the rows the transaction changed are captured (``turnup.kernel.audit``) and the entry
naming a changed row gets its changed columns' old and new values, a created row's columns as ``after``,
a deleted row's as ``before``; and the chain still verifies."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import audit
from turnup.kernel.audit import AuditEntry
from turnup.security import create_user, deactivate_user


def _entry(factory: sessionmaker[Session], action: str, resource_id: str) -> AuditEntry:
    with factory() as s:
        [entry] = s.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.resource_id == resource_id)
        ).all()
        return entry


def test_entries_without_their_own_before_and_after_get_the_rows_changes(
    session_factory: sessionmaker[Session],
) -> None:
    # Given a user created by a use case that records only details
    with session_factory() as s:
        user = create_user(s, username="rita", roles=["viewer"])
        user_id = user.id
    created = _entry(session_factory, "user.create", user_id)
    # Then the creation's entry has no before, and after = the new row's columns
    assert created.before is None and created.after is not None
    assert (created.after["username"], created.after["roles"], created.after["active"]) == (
        "rita",
        ["viewer"],
        True,
    )
    assert "id" in created.after and created.after["id"] == user_id

    # When the user is deactivated
    with session_factory() as s:
        deactivate_user(s, "rita")
    changed = _entry(session_factory, "user.deactivate", user_id)
    # Then the entry has exactly the changed column, old and new
    assert changed.before == {"active": True}
    assert changed.after == {"active": False}

    # And the chain, with these values in it, verifies
    with session_factory() as s:
        assert audit.verify(s).ok


def test_a_changed_row_named_by_no_entry_adds_nothing_and_own_values_win(
    session_factory: sessionmaker[Session],
) -> None:
    # An entry naming no changed row gets nothing; one with its own before/after keeps them
    with session_factory() as s:
        create_user(s, username="sam", roles=["viewer"], commit=False)
        audit.record(s, actor="t", action="x.other", resource_type="x", resource_id="not-a-row")
        audit.record(
            s,
            actor="t",
            action="x.own",
            resource_type="x",
            resource_id="own",
            before={"a": 1},
            after={"a": 2},
        )
        s.commit()
    other = _entry(session_factory, "x.other", "not-a-row")
    own = _entry(session_factory, "x.own", "own")
    assert (other.before, other.after) == (None, None)
    assert (own.before, own.after) == ({"a": 1}, {"a": 2})
