"""Agreements (TMF651): documents generated from accepted quotes, versions with redlines, electronic
signatures over the exact document bytes, and term / renewal / notice dates."""

from turnup.agreements.schemas import SignatureCreate, Signer, nest_flat_signer
from turnup.agreements.services import QuoteTerms, generate_for_quote, record_order, sign, verify

__all__ = [
    "QuoteTerms",
    "SignatureCreate",
    "Signer",
    "generate_for_quote",
    "nest_flat_signer",
    "record_order",
    "sign",
    "verify",
]
