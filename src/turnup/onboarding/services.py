"""Onboarding use cases.

``start_onboarding`` does everything in ONE transaction (account, sites, contact, screening, portal user,
invitation, welcome mail row, onboarding record with its steps): a request that fails leaves nothing
behind and sends nothing. The welcome mail is sent after commit; a send that fails stays queued with its
error on the ``sendWelcome`` step and is retried by ``deliver_mail`` (``turnup onboarding deliver-mail``).
The invitation secret is never stored in plaintext: the mail row holds ``LINK_PLACEHOLDER`` instead of the
link, and each sending attempt makes a fresh token, stores its SHA-256 alone on the invitation (replacing
the previous hash, so only the link of the last mail sent works) and puts the link only into the message
handed to the mail server. A token from an attempt whose sending failed was never delivered to anyone.
A screening hit puts the onboarding on hold (never rejects it); ``resume_onboarding`` continues it once the
compliance case is cleared.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup import accounts, security
from turnup.accounts import ContactCreate, CustomerCreate, SiteCreate
from turnup.compliance import Party, is_on_hold, register_open_deal_provider, screen_parties
from turnup.kernel import audit, clock, hrefs, mail
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish
from turnup.onboarding.orm import STEP_NAMES, Onboarding, OnboardingStep, PortalInvitation
from turnup.onboarding.render import API, render_onboarding
from turnup.onboarding.schemas import OnboardingCreate

INVITATION_TTL = timedelta(days=7)
PORTAL_ROLE = "customer"
REF_TYPE = "onboarding"
WELCOME_SUBJECT = "Welcome to Turnup, {customer}"
LINK_PLACEHOLDER = "[invitation link: created when the mail is sent, never stored]"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def get_onboarding(session: Session, onboarding_id: str) -> Onboarding:
    onboarding = session.get(Onboarding, onboarding_id)
    if onboarding is None:
        raise NotFound(f"onboarding {onboarding_id!r} not found")
    return onboarding


def _step(onboarding: Onboarding, name: str) -> OnboardingStep:
    return next(s for s in onboarding.steps if s.name == name)


def _set_step(
    onboarding: Onboarding, name: str, state: str, outcome: str, details: dict[str, Any] | None = None
) -> None:
    step = _step(onboarding, name)
    step.state, step.outcome, step.updated_at = state, outcome, clock.now()
    if details is not None:
        step.details = details
    onboarding.updated_at = step.updated_at


def _parties(onboarding_id: str, request: dict[str, Any]) -> list[Party]:
    customer = request["customer"]
    parties = [Party("customer", customer["name"], customer.get("country"), None)]
    for i, site in enumerate(request.get("sites") or []):
        parties.append(Party("site", site["name"], site.get("country"), f"sites[{i}]"))
    contact = request["primaryContact"]
    parties.append(Party("contact", contact["name"], customer.get("country"), "primaryContact"))
    return parties


def _check(session: Session, data: OnboardingCreate) -> None:
    """Everything that can be refused is refused before anything is written."""
    seen: dict[str, int] = {}
    for i, site in enumerate(data.sites):
        key = site.name.casefold()
        if key in seen:
            raise InvalidInput(
                f"sites[{i}].name: duplicate site name {site.name!r} (also sites[{seen[key]}])"
            )
        seen[key] = i
    _check_username(session, data.primaryContact.email)


def _check_username(session: Session, email: str) -> None:
    if len(email) > 100:
        raise InvalidInput("primaryContact.email: at most 100 characters (it becomes the portal username)")
    if security.username_taken(session, email):
        raise Conflict(f"primaryContact.email: a user {email!r} already exists")


def _create_account(session: Session, data: OnboardingCreate, actor: str) -> tuple[str, str]:
    """The customer, its sites and the primary contact, in the caller's transaction (no commit)."""
    c, p = data.customer, data.primaryContact
    customer = accounts.create_customer(
        session,
        CustomerCreate(
            name=c.name,
            customerType=c.customerType,
            status="prospective",
            segment=c.segment,
            country=c.country,
            email=c.email,
            phone=c.phone,
        ),
        actor,
        commit=False,
    )
    for s in data.sites:
        accounts.create_site(
            session, SiteCreate(customerId=customer.id, **s.model_dump()), actor, commit=False
        )
    contact = accounts.create_contact(
        session,
        ContactCreate(
            customerId=customer.id, name=p.name, role=p.role or "primary", email=p.email, phone=p.phone
        ),
        actor,
        commit=False,
    )
    return customer.id, contact.id


def invitation_link(token: str) -> str:
    return f"{hrefs.base_url()}/portal/invitation?token={token}"


def _invite_and_welcome(session: Session, onboarding: Onboarding, actor: str) -> None:
    customer = accounts.find_customer(session, onboarding.customer_id or "")
    assert customer is not None
    contact_req = onboarding.request["primaryContact"]
    email = contact_req["email"]
    now = clock.now()
    user = security.create_user(
        session,
        username=email,
        display_name=contact_req["name"],
        roles=[PORTAL_ROLE],
        actor=actor,
        commit=False,
        audit_details={"customerId": customer.id},
    )
    invitation = PortalInvitation(
        id=new_id(),
        user_id=user.id,
        customer_id=customer.id,
        onboarding_id=onboarding.id,
        email=email,
        token_hash=_sha256(secrets.token_urlsafe(32)),  # unusable until the mail is sent (fresh token)
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    session.add(invitation)
    onboarding.portal_user_id = user.id
    _set_step(
        onboarding,
        "invitePortalUser",
        "done",
        f"portal user {email!r} invited; invitation expires {invitation.expires_at.isoformat()}",
        {"userId": user.id, "invitationId": invitation.id, "expiresAt": invitation.expires_at.isoformat()},
    )
    expires = invitation.expires_at.date().isoformat()
    body = _welcome_body(contact_req["name"], customer.name, LINK_PLACEHOLDER, expires)
    queued = mail.enqueue(
        session,
        to=email,
        subject=WELCOME_SUBJECT.format(customer=customer.name),
        body=body,
        ref_type=REF_TYPE,
        ref_id=onboarding.id,
    )
    _set_step(onboarding, "sendWelcome", "queued", f"welcome mail to {email} queued", {"mailId": queued.id})


def _welcome_body(name: str, customer: str, link: str, expires: str) -> str:
    return (
        f"Hello {name},\n\n"
        f"welcome to Turnup. {customer} now has an account with us.\n\n"
        f"Set your password and open the customer portal here (the link is valid until {expires}):\n"
        f"{link}\n\n"
        f"If you did not expect this message, ignore it.\n"
    )


def start_onboarding(
    session: Session, data: OnboardingCreate, actor: str, transport: mail.MailTransport | None = None
) -> Onboarding:
    """Onboard a new customer as one record; commits once, then tries to send the welcome mail."""
    _check(session, data)
    now = clock.now()
    request = data.model_dump(mode="json")
    onboarding = Onboarding(
        id=new_id(),
        state="inProgress",
        contact_email=data.primaryContact.email,
        request=request,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    onboarding.steps = [
        OnboardingStep(id=new_id(), seq=i + 1, name=name, state="pending", updated_at=now)
        for i, name in enumerate(STEP_NAMES)
    ]
    session.add(onboarding)
    session.flush()
    customer_id, contact_id = _create_account(session, data, actor)
    onboarding.customer_id = customer_id
    _set_step(
        onboarding,
        "createAccount",
        "done",
        f"customer {customer_id} with {len(data.sites)} site(s) and primary contact {contact_id}",
        {"customerId": customer_id, "contactId": contact_id},
    )
    _screen(session, onboarding, actor)
    audit.record(
        session,
        actor=actor,
        action="onboarding.start",
        resource_type="onboarding",
        resource_id=onboarding.id,
        details={"customerId": customer_id, "state": onboarding.state},
    )
    publish(
        session,
        api=API,
        event_type="OnboardingCreateEvent",
        resource_type="onboarding",
        resource=render_onboarding(onboarding),
    )
    session.commit()
    return _after_commit(session, onboarding, transport)


def _screen(session: Session, onboarding: Onboarding, actor: str) -> None:
    outcome = screen_parties(
        session,
        ref_type=REF_TYPE,
        ref_id=onboarding.id,
        parties=_parties(onboarding.id, onboarding.request),
        actor=actor,
        commit=False,
    )
    onboarding.screening_case_id = outcome.case_id
    if outcome.held:
        onboarding.state = "onHold"
        _set_step(
            onboarding,
            "screenParties",
            "held",
            f"compliance hold, case {outcome.case_id}: " + "; ".join(outcome.reasons),
            {"caseId": outcome.case_id, "reasons": outcome.reasons},
        )
        for name in ("invitePortalUser", "sendWelcome"):
            _set_step(onboarding, name, "pending", "waiting for the compliance review")
    else:
        note = f" (case {outcome.case_id} cleared)" if outcome.case_id else ""
        _set_step(onboarding, "screenParties", "done", f"no screening hit{note}", {"caseId": outcome.case_id})
        _invite_and_welcome(session, onboarding, actor)


def _after_commit(
    session: Session, onboarding: Onboarding, transport: mail.MailTransport | None
) -> Onboarding:
    if onboarding.state == "inProgress":
        deliver_mail(session, transport, onboarding_id=onboarding.id)
    session.refresh(onboarding)
    return onboarding


def resume_onboarding(
    session: Session, onboarding_id: str, actor: str, transport: mail.MailTransport | None = None
) -> Onboarding:
    """Continue an onboarding whose compliance case was cleared (re-screens first)."""
    onboarding = get_onboarding(session, onboarding_id)
    if onboarding.state != "onHold":
        raise Conflict(
            f"state: onboarding {onboarding_id!r} is {onboarding.state}, not onHold",
            reason="Illegal state transition",
        )
    if is_on_hold(session, REF_TYPE, onboarding.id):
        raise Conflict(
            f"onboarding {onboarding_id!r} is on compliance hold: screening case "
            f"{onboarding.screening_case_id} must be cleared first",
            reason="Compliance hold",
        )
    _check_username(session, onboarding.contact_email)
    onboarding.state = "inProgress"
    _screen(session, onboarding, actor)
    audit.record(
        session,
        actor=actor,
        action="onboarding.resume",
        resource_type="onboarding",
        resource_id=onboarding.id,
        details={"state": onboarding.state},
    )
    publish(
        session,
        api=API,
        event_type="OnboardingStateChangeEvent",
        resource_type="onboarding",
        resource=render_onboarding(onboarding),
    )
    session.commit()
    return _after_commit(session, onboarding, transport)


def deliver_mail(
    session: Session, transport: mail.MailTransport | None = None, onboarding_id: str | None = None
) -> list[mail.OutboundMail]:
    """Send due mails and record each outcome on its onboarding's ``sendWelcome`` step."""
    results = mail.deliver_pending(
        session, transport, ref_id=onboarding_id, personalise=_with_invitation_link
    )
    for sent in results:
        if sent.ref_type != REF_TYPE or sent.ref_id is None:
            continue
        onboarding = session.get(Onboarding, sent.ref_id)
        if onboarding is None:
            continue
        details = {"mailId": sent.id, "attempts": sent.attempts}
        if sent.status == "sent":
            _set_step(
                onboarding,
                "sendWelcome",
                "done",
                f"welcome mail sent to {sent.to_address} (attempt {sent.attempts})",
                details,
            )
            onboarding.state = "completed"
            publish(
                session,
                api=API,
                event_type="OnboardingStateChangeEvent",
                resource_type="onboarding",
                resource=render_onboarding(onboarding),
            )
        else:
            state = "failed" if sent.status == "failed" else "retrying"
            when = "" if state == "failed" else f"; next attempt at {sent.next_attempt_at.isoformat()}"
            _set_step(
                onboarding,
                "sendWelcome",
                state,
                f"sending to {sent.to_address} failed (attempt {sent.attempts}): {sent.last_error}{when}",
                details,
            )
        session.commit()
    return results


def _with_invitation_link(session: Session, message: mail.OutboundMail) -> str:
    """The welcome mail's body to send: a fresh invitation token, its hash stored, its link in the body."""
    if message.ref_type != REF_TYPE or LINK_PLACEHOLDER not in message.body:
        return message.body
    invitation = session.scalar(
        select(PortalInvitation)
        .where(PortalInvitation.onboarding_id == message.ref_id, PortalInvitation.accepted_at.is_(None))
        .order_by(PortalInvitation.created_at.desc())
        .limit(1)
    )
    if invitation is None:  # accepted meanwhile (or gone): send no usable link
        return message.body
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _sha256(token)
    return message.body.replace(LINK_PLACEHOLDER, invitation_link(token))


def accept_invitation(session: Session, token: str, password: str) -> security.Principal:
    """The invited person sets a password; the invitation can be used once, before it expires."""
    invitation = session.scalar(select(PortalInvitation).where(PortalInvitation.token_hash == _sha256(token)))
    if invitation is None:
        raise InvalidInput("token: unknown invitation")
    if invitation.accepted_at is not None:
        raise Conflict("token: invitation already used")
    if invitation.expires_at <= clock.now():
        raise InvalidInput("token: invitation expired")
    user = security.set_password(session, invitation.user_id, password)
    invitation.accepted_at = clock.now()
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="invitation.accept",
        resource_type="portalInvitation",
        resource_id=invitation.id,
    )
    session.commit()
    return user


def portal_customer_id(session: Session, user_id: str) -> str:
    """The id of the one customer account a portal user may see."""
    customer_id = session.scalar(
        select(PortalInvitation.customer_id).where(PortalInvitation.user_id == user_id).limit(1)
    )
    customer = accounts.find_customer(session, customer_id) if customer_id else None
    if customer is None:
        raise NotFound("no customer account is linked to this user")
    return customer.id


@register_open_deal_provider
def open_onboardings(session: Session) -> Iterator[tuple[str, str, list[Party]]]:
    """Onboardings not yet completed are re-screened when the screening list changes."""
    pending = session.scalars(
        select(Onboarding)
        .where(Onboarding.state.in_(("inProgress", "onHold")))
        .order_by(Onboarding.created_at, Onboarding.id)
    ).all()
    for onboarding in pending:
        yield REF_TYPE, onboarding.id, _parties(onboarding.id, onboarding.request)
