"""Name normalisation for screening: accents, case, punctuation and legal-form words.

``normalize_name`` is idempotent (a property test checks it) and drops legal-form words wherever they
appear, so ``"Zorblax Dynamics LLC"``, ``"ZORBLAX DYNAMICS, L.L.C."`` and ``"Zorblax Dynamics"`` are the
same string. A name made only of legal-form words keeps them (otherwise it would vanish).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Legal-form words (after dots are removed: "S.A." -> "sa", "L.L.C." -> "llc").
LEGAL_FORMS = frozenset(
    {
        "llc",
        "ltd",
        "limited",
        "gmbh",
        "mbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "plc",
        "llp",
        "lp",
        "bv",
        "nv",
        "oy",
        "oyj",
        "ab",
        "kg",
        "kgaa",
        "ohg",
        "pte",
        "pty",
        "jsc",
        "ojsc",
        "pjsc",
        "cjsc",
        "ooo",
        "zao",
        "oao",
        "fze",
        "fzco",
        "fzc",
        "sl",
        "sro",
        "kft",
        "zrt",
        "asa",
        "aps",
        "bhd",
        "sdn",
        "lda",
        "ltda",
        "sae",
        "wll",
    }
)

# Words too common in company names to identify anybody on their own.
GENERIC_WORDS = frozenset(
    {
        "the",
        "and",
        "of",
        "for",
        "de",
        "del",
        "la",
        "le",
        "et",
        "und",
        "trading",
        "trade",
        "international",
        "intl",
        "global",
        "group",
        "holding",
        "holdings",
        "services",
        "service",
        "industries",
        "industry",
        "industrial",
        "company",
        "companies",
        "technologies",
        "technology",
        "tech",
        "systems",
        "system",
        "solutions",
        "general",
        "enterprise",
        "enterprises",
        "import",
        "export",
        "logistics",
        "partners",
        "associates",
        "management",
        "consulting",
        "network",
        "networks",
        "communications",
        "telecom",
        "engineering",
        "electronics",
        "supply",
        "supplies",
        "products",
        "manufacturing",
        "development",
        "investment",
        "investments",
        "capital",
        "resources",
        "energy",
        "shipping",
        "marine",
        "science",
        "sciences",
        "research",
        "center",
        "centre",
        "institute",
        "national",
        "state",
        "united",
        "new",
        "first",
        "office",
        "department",
        "bureau",
        "agency",
        "branch",
    }
)

_DROP = re.compile(r"[.'\u2019`]")  # removed without a gap: "S.A." -> "SA", "O'Brien" -> "OBrien"
_SEPARATORS = re.compile(r"[\W_]+")  # any other non-word character separates words


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_name(name: str) -> str:
    """Lower-case ASCII-folded words separated by single spaces, legal-form words removed."""
    text = _strip_marks(_strip_marks(name).casefold())
    text = text.replace("&", " and ")
    text = _DROP.sub("", text)
    words = _SEPARATORS.sub(" ", text).split()
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept or words)


@dataclass(frozen=True)
class NormalizedName:
    """A normalised name with what the scorers and guards need, computed once."""

    text: str
    tokens: tuple[str, ...]
    sorted_text: str
    compact_len: int  # letters and digits only
    numbers: frozenset[str]
    distinctive: frozenset[str]  # tokens that are neither generic words nor numbers

    @classmethod
    def of(cls, name: str) -> NormalizedName:
        text = normalize_name(name)
        tokens = tuple(text.split())
        numbers = frozenset(t for t in tokens if any(ch.isdigit() for ch in t))
        distinctive = frozenset(t for t in tokens if t not in GENERIC_WORDS and t not in numbers)
        return cls(
            text=text,
            tokens=tokens,
            sorted_text=" ".join(sorted(tokens)),
            compact_len=sum(len(t) for t in tokens),
            numbers=numbers,
            distinctive=distinctive,
        )
