"""Property test of API tokens (issue 15): whatever sequence of issue, revoke, rotate and passing time, a
token authenticates exactly when the model says it should (not revoked, not expired, user active), with
exactly its scopes (or the user's roles when unscoped); and no other string ever authenticates."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import clock
from turnup.kernel.errors import Unauthorized
from turnup.security import authenticate_token, create_user, revoke_api_token, rotate_api_token
from turnup.security.services import issue_api_token

ROLES = ["sales", "finance", "legal"]
_users = itertools.count()


@dataclass
class Issued:
    token_id: str
    secret: str
    roles: tuple[str, ...]
    expires_at: datetime
    revoked: bool = False


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("issue"),
            st.lists(st.sampled_from(ROLES), unique=True, max_size=3),
            st.integers(min_value=1, max_value=60),
        ),
        st.tuples(st.just("revoke"), st.integers(min_value=0, max_value=7)),
        st.tuples(st.just("rotate"), st.integers(min_value=0, max_value=7)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=40)),
    ),
    min_size=1,
    max_size=10,
)


def _check(factory: sessionmaker[Session], issued: list[Issued]) -> None:
    now = clock.now()
    for token in issued:
        with factory() as s:
            if token.revoked or token.expires_at <= now:
                with pytest.raises(Unauthorized):
                    authenticate_token(s, token.secret)
            else:
                principal = authenticate_token(s, token.secret)
                assert sorted(principal.roles) == sorted(token.roles)


@hyp_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, noise=st.lists(st.text(max_size=60), max_size=5))
def test_tokens_authenticate_exactly_as_the_model_says(
    session_factory: sessionmaker[Session], ops: list[tuple[object, ...]], noise: list[str]
) -> None:
    username = f"tokprop{next(_users)}"
    with session_factory() as s:
        create_user(s, username=username, roles=list(ROLES))
    issued: list[Issued] = []
    try:
        for op in ops:
            kind = op[0]
            if kind == "issue":
                scopes, days = op[1], op[2]
                assert isinstance(scopes, list) and isinstance(days, int)
                with session_factory() as s:
                    row, secret = issue_api_token(
                        s, username=username, roles=scopes or None, expires_in=timedelta(days=days)
                    )
                    s.commit()
                    issued.append(Issued(row.id, secret, tuple(scopes or ROLES), row.expires_at))
            elif kind in ("revoke", "rotate") and issued:
                index = op[1]
                assert isinstance(index, int)
                target = issued[index % len(issued)]
                with session_factory() as s:
                    if target.revoked:  # revoking or rotating a revoked token is refused, and changes nothing
                        with pytest.raises(Exception, match="revoked"):
                            (revoke_api_token if kind == "revoke" else rotate_api_token)(s, target.token_id)
                    elif kind == "revoke":
                        revoke_api_token(s, target.token_id)
                        target.revoked = True
                    else:
                        row, secret = rotate_api_token(s, target.token_id)
                        target.revoked = True
                        issued.append(Issued(row.id, secret, target.roles, row.expires_at))
            elif kind == "wait":
                days = op[1]
                assert isinstance(days, int)
                clock.advance(timedelta(days=days))
            _check(session_factory, issued)
        # and nothing that was not issued authenticates (nor a valid secret with a character changed)
        secrets_issued = {t.secret for t in issued}
        tampered = [t.secret[:-1] + ("A" if t.secret[-1] != "A" else "B") for t in issued]
        for guess in [*noise, *tampered, "tu_", ""]:
            if guess in secrets_issued:
                continue
            with session_factory() as s, pytest.raises(Unauthorized):
                authenticate_token(s, guess)
    finally:
        clock.reset()
