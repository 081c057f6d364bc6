"""Agreements (TMF651): documents generated from accepted quotes, versions with redlines, electronic
signatures over the exact document bytes, and term / renewal / notice dates."""

from turnup.agreements.schemas import SignatureCreate
from turnup.agreements.services import QuoteTerms, generate_for_quote, record_order, sign, verify

__all__ = ["QuoteTerms", "SignatureCreate", "generate_for_quote", "record_order", "sign", "verify"]
