"""Quotes (TMF648): catalog-priced lines at customer sites, inventory holds, approval rules and chains,
acceptance into an agreement (``turnup.agreements``) and a product order (``turnup.ordering``).

Quoting sits early in the flow: it calls catalog, accounts, inventory, compliance, agreements and ordering
through their faces; none of them imports quoting. Its own face offers the quote commands below.
"""

from turnup.quoting.approvals import create_rule, import_rules
from turnup.quoting.schemas import (
    ApprovalDecisionIn,
    ApprovalRuleCreate,
    ApprovalRuleImport,
    QuoteAccept,
    QuoteCreate,
    QuoteUpdate,
)
from turnup.quoting.services import (
    SweepResult,
    accept_quote,
    cancel_quote,
    create_quote,
    decide,
    price_quote,
    reject_quote,
    sweep_expired,
    update_quote,
)
from turnup.quoting.terms import AgreedLine, AgreedPrice, AgreedTerms, agreed_terms

__all__ = [
    "AgreedLine",
    "AgreedPrice",
    "AgreedTerms",
    "ApprovalDecisionIn",
    "ApprovalRuleCreate",
    "ApprovalRuleImport",
    "QuoteAccept",
    "QuoteCreate",
    "QuoteUpdate",
    "SweepResult",
    "accept_quote",
    "agreed_terms",
    "cancel_quote",
    "create_quote",
    "create_rule",
    "decide",
    "import_rules",
    "price_quote",
    "reject_quote",
    "sweep_expired",
    "update_quote",
]
