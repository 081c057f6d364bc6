"""Agreements (TMF651): documents generated from accepted quotes, versions with redlines, electronic
signatures over the exact document bytes, and term / renewal / notice dates."""
