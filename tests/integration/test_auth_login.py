"""Password logins on both databases: argon2id and the scrypt migration, lockout and throttling per username
and per source address (state in the database, exact under 16 parallel guessing clients), audited failures,
one code path for unknown usernames, the password policy, and the TOTP second factor."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from turnup.kernel import clock
from turnup.kernel.audit import AuditEntry
from turnup.kernel.errors import InvalidInput
from turnup.kernel.settings import Settings, get_settings
from turnup.security import LoginPolicy, LoginRefused, create_user, enable_totp, set_password, totp
from turnup.security import passwords as passwords_module
from turnup.security import services as security_services
from turnup.security.orm import LoginCounter, User, WebSession
from turnup.security.services import authenticate_session, login

PASSWORD = "Quartz-Ember-Falcon-27"
COMMON = "password: is a common password (found in the list of common passwords); choose another"
POLICY = LoginPolicy(max_failures_per_user=5, max_failures_per_source=20, secret_key="k" * 32)


@pytest.fixture
def olga(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as s:
        return create_user(s, username="olga", password=PASSWORD, roles=["operator"]).id


def _failures(session_factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    with session_factory() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.login_failed").order_by(AuditEntry.at)
        ).all()
        return [dict(r.details or {}) for r in rows]


def _refused(session_factory: sessionmaker[Session], username: str, password: str, **kw: Any) -> LoginRefused:
    with session_factory() as s, pytest.raises(LoginRefused) as caught:
        login(s, username, password, policy=kw.pop("policy", POLICY), **kw)
    return caught.value


def _counter(session_factory: sessionmaker[Session], key: str) -> LoginCounter | None:
    with session_factory() as s:
        return s.get(LoginCounter, key)


# --- hashes -----------------------------------------------------------------------------------------------


def test_new_passwords_are_argon2id(session_factory: sessionmaker[Session], olga: str) -> None:
    with session_factory() as s:
        stored = s.get(User, olga).password_hash  # type: ignore[union-attr]
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


def test_scrypt_hash_verifies_once_and_is_rehashed_to_argon2id(
    session_factory: sessionmaker[Session], olga: str
) -> None:
    # Given a hash in the earlier format (scrypt$salt$digest, as main wrote them)
    salt = os.urandom(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1)
    legacy = f"scrypt${salt.hex()}${digest.hex()}"
    with session_factory() as s:
        s.get(User, olga).password_hash = legacy  # type: ignore[union-attr]
        s.commit()
    # a wrong password is still wrong, and leaves the hash alone
    _refused(session_factory, "olga", "Not-The-Password-99")
    with session_factory() as s:
        assert s.get(User, olga).password_hash == legacy  # type: ignore[union-attr]
    # When the user logs in with the right one
    with session_factory() as s:
        login(s, "olga", PASSWORD, policy=POLICY)
    # Then the hash is argon2id now, the login audit says so, and the password keeps working
    with session_factory() as s:
        stored = s.get(User, olga).password_hash  # type: ignore[union-attr]
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.login")).one()
    assert stored is not None and stored.startswith("$argon2id$")
    assert audit.details == {"source": "unknown", "rehashed": True, "secondFactor": False}
    with session_factory() as s:
        login(s, "olga", PASSWORD, policy=POLICY)


# --- lockout --------------------------------------------------------------------------------------------


def test_five_failures_lock_the_user_even_for_the_right_password_until_the_lockout_ends(
    session_factory: sessionmaker[Session], olga: str
) -> None:
    clock.freeze(clock.now())
    for _ in range(4):
        assert _refused(session_factory, "olga", "Wrong-Guess-Number-1", source="10.0.0.1").locked is False
    # the fifth failure locks
    assert _refused(session_factory, "olga", "Wrong-Guess-Number-1", source="10.0.0.1").locked is False
    refused = _refused(session_factory, "olga", PASSWORD, source="10.0.0.2")
    assert refused.locked is True
    counter = _counter(session_factory, "user:olga")
    assert counter is not None and counter.failures == 5
    assert counter.locked_until == clock.now() + timedelta(minutes=15)
    with session_factory() as s:
        assert s.scalars(select(WebSession)).all() == []
    # every failure audited, with its reason and source, never the password
    failures = _failures(session_factory)
    assert [(f["reason"], f["source"]) for f in failures] == [("wrong_password", "10.0.0.1")] * 5 + [
        ("locked", "10.0.0.2")
    ]
    assert all(f["username"] == "olga" for f in failures)
    assert not any(PASSWORD in str(f) or "Wrong-Guess" in str(f) for f in failures)
    # Just before the end of the lockout: still refused; after it: the right password works
    clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    assert _refused(session_factory, "olga", PASSWORD).locked is True
    clock.advance(timedelta(seconds=1))
    with session_factory() as s:
        secret = login(s, "olga", PASSWORD, policy=POLICY)
        assert authenticate_session(s, secret).username == "olga"
    counter = _counter(session_factory, "user:olga")
    assert counter is not None and (counter.failures, counter.locked_until) == (0, None)


def test_failures_outside_the_window_do_not_add_up(session_factory: sessionmaker[Session], olga: str) -> None:
    clock.freeze(clock.now())
    for _ in range(4):
        _refused(session_factory, "olga", "Wrong-Guess-Number-1")
    clock.advance(timedelta(minutes=15))
    _refused(session_factory, "olga", "Wrong-Guess-Number-1")
    counter = _counter(session_factory, "user:olga")
    assert counter is not None and (counter.failures, counter.locked_until) == (1, None)
    with session_factory() as s:
        login(s, "olga", PASSWORD, policy=POLICY)


def test_a_source_address_is_throttled_after_twenty_failures_across_usernames(
    session_factory: sessionmaker[Session], olga: str
) -> None:
    # Given 20 failures from one address spread over 10 usernames (2 each: no username reaches 5)
    for i in range(20):
        _refused(session_factory, f"user{i % 10}", "Wrong-Guess-Number-1", source="203.0.113.9")
    # Then that address is refused even with olga's right password; another address is not
    refused = _refused(session_factory, "olga", PASSWORD, source="203.0.113.9")
    assert refused.locked is True
    assert _failures(session_factory)[-1]["reason"] == "source_throttled"
    counter = _counter(session_factory, "source:203.0.113.9")
    assert counter is not None and counter.failures == 20
    with session_factory() as s:
        login(s, "olga", PASSWORD, source="198.51.100.7", policy=POLICY)


def test_lockout_limits_come_from_settings(
    session_factory: sessionmaker[Session], olga: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNUP_LOGIN_MAX_FAILURES_PER_USER", "2")
    monkeypatch.setenv("TURNUP_LOGIN_LOCKOUT_SECONDS", "60")
    get_settings.cache_clear()
    try:
        assert LoginPolicy.from_settings(Settings()).max_failures_per_user == 2
        clock.freeze(clock.now())
        for _ in range(2):
            with session_factory() as s, pytest.raises(LoginRefused):
                login(s, "olga", "Wrong-Guess-Number-1")  # no policy given: the settings'
        with session_factory() as s, pytest.raises(LoginRefused) as caught:
            login(s, "olga", PASSWORD)
        assert caught.value.locked is True
        counter = _counter(session_factory, "user:olga")
        assert counter is not None and counter.locked_until == clock.now() + timedelta(seconds=60)
    finally:
        get_settings.cache_clear()


def test_sixteen_parallel_guessers_get_exactly_five_guesses(
    session_factory: sessionmaker[Session], olga: str
) -> None:
    # Given 16 clients (real threads, own connections, own source addresses) guessing olga's password at once
    start = threading.Barrier(16)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def guess(i: int) -> None:
        try:
            start.wait()
            with session_factory() as s:
                login(s, "olga", f"Wrong-Guess-Number-{i}", source=f"10.1.0.{i}", policy=POLICY)
            outcomes.append("accepted")
        except LoginRefused as exc:
            outcomes.append("locked" if exc.locked else "refused")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Then exactly five guesses were checked; the other eleven met the lockout
    assert sorted(outcomes) == ["locked"] * 11 + ["refused"] * 5
    counter = _counter(session_factory, "user:olga")
    assert counter is not None and counter.failures == 5 and counter.locked_until is not None
    reasons = [f["reason"] for f in _failures(session_factory)]
    assert sorted(reasons) == ["locked"] * 11 + ["wrong_password"] * 5
    # and the right password is refused while locked
    assert _refused(session_factory, "olga", PASSWORD, source="10.2.0.1").locked is True


# --- unknown usernames ----------------------------------------------------------------------------------


def test_unknown_usernames_take_the_same_path_with_a_dummy_verification(
    session_factory: sessionmaker[Session], olga: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = passwords_module.dummy_verify

    def spy(password: str) -> bool:
        calls.append(password)
        return real(password)

    monkeypatch.setattr(security_services, "dummy_verify", spy)
    # A known username with a wrong password: the real hash is checked, not the dummy
    _refused(session_factory, "olga", "Wrong-Guess-Number-1")
    assert calls == []
    # An unknown username: the dummy argon2id hash is checked, the failure is counted and audited the same way
    refused = _refused(session_factory, "nobody", "Wrong-Guess-Number-2", source="10.0.0.5")
    assert calls == ["Wrong-Guess-Number-2"]
    assert (refused.message, refused.locked) == ("wrong username or password", False)
    assert _failures(session_factory)[-1] == {
        "username": "nobody",
        "reason": "unknown_user",
        "source": "10.0.0.5",
    }
    for _ in range(4):
        _refused(session_factory, "nobody", "Wrong-Guess-Number-2")
    assert _refused(session_factory, "nobody", "Wrong-Guess-Number-2").locked is True
    assert len(calls) == 5  # the locked attempt checks nothing, for known and unknown users alike
    # A user without a password also goes through the dummy
    with session_factory() as s:
        create_user(s, username="tokens-only", roles=["viewer"])
    _refused(session_factory, "tokens-only", "")
    assert len(calls) == 6 and _failures(session_factory)[-1]["reason"] == "no_password"


def test_deactivated_user_cannot_log_in(session_factory: sessionmaker[Session], olga: str) -> None:
    with session_factory() as s:
        s.get(User, olga).active = False  # type: ignore[union-attr]
        s.commit()
    _refused(session_factory, "olga", PASSWORD)
    assert _failures(session_factory)[-1]["reason"] == "inactive"


# --- session rotation ----------------------------------------------------------------------------------


def test_login_ends_the_session_held_before_and_issues_a_new_secret(
    session_factory: sessionmaker[Session], olga: str
) -> None:
    with session_factory() as s:
        first = login(s, "olga", PASSWORD, policy=POLICY)
    with session_factory() as s:
        second = login(s, "olga", PASSWORD, previous_secret=first, policy=POLICY)
    assert second != first
    with session_factory() as s:
        assert authenticate_session(s, second).username == "olga"
        with pytest.raises(Exception, match="not logged in"):
            authenticate_session(s, first)
        assert len(s.scalars(select(WebSession)).all()) == 1


# --- password policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Short-Pw-1", "password: must be at least 12 characters long"),
        ("password1234", COMMON),
        ("QwertyUiop12", COMMON),
        ("Sunshine2024", COMMON),
        ("my-name-is-Olga-ok", "password: must not contain the username"),
    ],
)
def test_password_policy_on_create_leaves_nothing_behind(
    session_factory: sessionmaker[Session], password: str, message: str
) -> None:
    with session_factory() as s, pytest.raises(InvalidInput) as caught:
        create_user(s, username="olga", password=password, roles=["operator"])
    assert caught.value.message == message and caught.value.status == 400
    with session_factory() as s:
        assert s.scalars(select(User)).all() == []
        assert s.scalars(select(AuditEntry)).all() == []


def test_password_policy_on_set_password(session_factory: sessionmaker[Session], olga: str) -> None:
    with session_factory() as s:
        before = s.get(User, olga).password_hash  # type: ignore[union-attr]
        with pytest.raises(InvalidInput, match="password: is a common password"):
            set_password(s, olga, "iloveyou2024")
        s.rollback()
        assert s.get(User, olga).password_hash == before  # type: ignore[union-attr]
        set_password(s, olga, "Cobalt-Prairie-Sonnet-44")
        s.commit()
    with session_factory() as s:
        login(s, "olga", "Cobalt-Prairie-Sonnet-44", policy=POLICY)


def test_the_shipped_list_is_large_and_in_lower_case() -> None:
    listed = passwords_module.common_passwords()
    assert len(listed) > 5000
    assert all(p == p.lower() and len(p) >= 12 for p in listed)


# --- TOTP ----------------------------------------------------------------------------------------------


def test_totp_second_factor(session_factory: sessionmaker[Session], olga: str) -> None:
    clock.freeze(clock.now())
    with session_factory() as s:
        secret = enable_totp(s, "olga", secret_key=POLICY.secret_key)
    with session_factory() as s:
        stored = s.get(User, olga).totp_secret  # type: ignore[union-attr]
    assert stored is not None and secret not in stored  # sealed, not the secret itself
    assert totp.unseal(stored, POLICY.secret_key) == secret
    # The password alone no longer logs in; a wrong code neither; both count as failures
    _refused(session_factory, "olga", PASSWORD)
    wrong = str((int(totp.code_at(secret, clock.now())) + 1) % 10**6).zfill(6)
    _refused(session_factory, "olga", PASSWORD, code=wrong)
    assert [f["reason"] for f in _failures(session_factory)] == ["totp_missing", "totp_wrong"]
    # With the computed code it does
    code = totp.code_at(secret, clock.now())
    with session_factory() as s:
        login(s, "olga", PASSWORD, code=code, policy=POLICY)
    # the same code is not accepted twice
    _refused(session_factory, "olga", PASSWORD, code=code)
    assert _failures(session_factory)[-1]["reason"] == "totp_wrong"
    # the next step's code is
    clock.advance(timedelta(seconds=30))
    with session_factory() as s:
        login(s, "olga", PASSWORD, code=totp.code_at(secret, clock.now()), policy=POLICY)
    # a server with another key cannot use the stored secret
    other = LoginPolicy(secret_key="another-key-entirely")
    clock.advance(timedelta(seconds=30))
    _refused(session_factory, "olga", PASSWORD, code=totp.code_at(secret, clock.now()), policy=other)
    assert _failures(session_factory)[-1]["reason"] == "totp_unreadable"


def test_totp_needs_a_secret_key(session_factory: sessionmaker[Session], olga: str) -> None:
    with session_factory() as s, pytest.raises(InvalidInput, match="TURNUP_SECRET_KEY must be set"):
        enable_totp(s, "olga", secret_key="")
    with session_factory() as s:
        assert s.get(User, olga).totp_secret is None  # type: ignore[union-attr]


def test_totp_codes_match_rfc_6238_test_vectors() -> None:
    # RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits there; the last 6 digits here
    from base64 import b32encode
    from datetime import UTC, datetime

    secret = b32encode(b"12345678901234567890").decode()
    vectors = {59: "94287082", 1111111109: "07081804", 1234567890: "89005924", 2000000000: "69279037"}
    for seconds, expected in vectors.items():
        assert totp.code_at(secret, datetime.fromtimestamp(seconds, UTC)) == expected[-6:]


def test_housekeeping_prunes_counters_past_their_window_but_keeps_lockouts(
    session_factory: sessionmaker[Session], olga: str
) -> None:
    from turnup.security.sweeps import prune_login_counters

    clock.freeze(clock.now())
    for _ in range(5):
        _refused(session_factory, "olga", "Wrong-Guess-Number-1", source="10.0.0.1")
    _refused(session_factory, "nobody", "Wrong-Guess-Number-1", source="10.0.0.2")
    clock.advance(timedelta(minutes=14, seconds=59))
    with session_factory() as s:
        assert prune_login_counters(s) == {"login_counters_pruned": 0}
    clock.advance(timedelta(seconds=1))
    # olga's lock ended at this very moment too; everything is past its window
    with session_factory() as s:
        assert prune_login_counters(s) == {"login_counters_pruned": 4}
        assert s.scalars(select(LoginCounter)).all() == []
    # a username still locked keeps its counter although its window has passed
    for _ in range(5):
        _refused(session_factory, "olga", "Wrong-Guess-Number-1", source="10.0.0.1")
    clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    with session_factory() as s:
        s.get(LoginCounter, "user:olga").window_start = clock.now() - timedelta(hours=1)  # type: ignore[union-attr]
        s.commit()
        assert prune_login_counters(s) == {"login_counters_pruned": 0}


@hyp_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(username="ol\x00ga", password="\x00", code="\x00")
@given(
    username=st.one_of(st.just("olga"), st.text(max_size=40)),
    password=st.text(max_size=60),
    code=st.one_of(st.none(), st.text(max_size=10)),
)
def test_any_wrong_login_is_refused_counted_and_audited_and_opens_nothing(
    session_factory: sessionmaker[Session], olga: str, username: str, password: str, code: str | None
) -> None:
    # Property: whatever is sent (except olga's password), the answer is a LoginRefused, one failure is
    # audited with the username and source as sent, no session exists, and the password is not recorded.
    assume(password != PASSWORD)
    with session_factory() as s:
        before = len(s.scalars(select(AuditEntry).where(AuditEntry.action == "user.login_failed")).all())
    with session_factory() as s, pytest.raises(LoginRefused):
        login(s, username, password, source="198.51.100.1", code=code, policy=LoginPolicy(10**6, 10**6))
    with session_factory() as s:
        failed = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.login_failed").order_by(AuditEntry.at)
        ).all()
        assert s.scalars(select(WebSession)).all() == []
    assert len(failed) == before + 1
    details = failed[-1].details or {}
    assert (details["username"], details["source"]) == (
        username.replace("\x00", "\ufffd")[:150],
        "198.51.100.1",
    )
    assert set(details) == {"username", "source", "reason"}
