"""New customer onboarding: account, screening, portal invitation and welcome mail as one traceable record."""

from turnup.onboarding.services import (
    accept_invitation,
    deliver_mail,
    portal_customer_id,
    resume_onboarding,
    start_onboarding,
)

__all__ = [
    "accept_invitation",
    "deliver_mail",
    "portal_customer_id",
    "resume_onboarding",
    "start_onboarding",
]
