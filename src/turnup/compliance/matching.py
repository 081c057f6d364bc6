"""Screening list in the US Consolidated Screening List (CSL) CSV layout, indexed for fuzzy matching.

How one name is screened (see docs/adr/0004-export-screening.md):

1. Every list name and alternative name is normalised once (``normalize.NormalizedName``).
2. Candidates are found in C by ``rapidfuzz.process.extract`` with ``token_set_ratio`` (recall-oriented,
   word order and extra words tolerated), keeping at most ``CANDIDATES`` above ``PREFILTER``.
3. Each candidate gets a score = 0.5 * token_sort_ratio + 0.25 * token_set_ratio + 0.25 * Jaro-Winkler
   (on the word-sorted strings), 100 for identical normalised names.
4. False-positive guards veto a candidate (score 0, with the reason kept):
   - very short names (fewer than ``MIN_FUZZY_LEN`` letters/digits on either side) must match exactly;
   - numbers must agree ("Trading 21" is not "Trading 12");
   - at least one distinctive (non-generic) word must agree (Jaro-Winkler >= 0.9), and a name made only
     of generic words ("Global Trading Group") must match exactly;
5. Country: when the party's country is known and the entry names countries (addresses, citizenships,
   nationalities) that do not include it, ``COUNTRY_PENALTY`` points are taken off. An identical name
   still hits; a merely similar one in another country does not.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from turnup.compliance.normalize import NormalizedName
from turnup.kernel.errors import InvalidInput

CSL_COLUMNS = (
    "_id",
    "source",
    "entity_number",
    "type",
    "programs",
    "name",
    "title",
    "addresses",
    "federal_register_notice",
    "start_date",
    "end_date",
    "standard_order",
    "license_requirement",
    "license_policy",
    "call_sign",
    "vessel_type",
    "gross_tonnage",
    "gross_registered_tonnage",
    "vessel_flag",
    "vessel_owner",
    "remarks",
    "source_list_url",
    "alt_names",
    "citizenships",
    "dates_of_birth",
    "nationalities",
    "places_of_birth",
    "source_information_url",
    "ids",
)
REQUIRED_COLUMNS = ("source", "name")

PREFILTER = 60.0
CANDIDATES = 50
MIN_FUZZY_LEN = 5
WORD_SIMILARITY = 0.9
COUNTRY_PENALTY = 10.0

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class ListEntry:
    entry_id: str
    source: str
    entity_type: str
    name: str
    alt_names: tuple[str, ...]
    programs: str
    countries: frozenset[str]
    remarks: str = ""


@dataclass(frozen=True)
class NameMatch:
    """One list entry matched by one screened name."""

    entry_id: str
    entry_name: str
    matched_name: str  # the list name or alternative name that matched
    source: str
    programs: str
    score: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scored:
    score: float
    veto: str | None = None


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _countries(row: dict[str, str]) -> frozenset[str]:
    found: set[str] = set()
    for address in _split_list(row.get("addresses") or ""):
        last = address.rsplit(",", 1)[-1].strip().upper()
        if _COUNTRY.match(last):
            found.add(last)
    for column in ("citizenships", "nationalities", "vessel_flag"):
        for value in re.split(r"[;,]", row.get(column) or ""):
            value = value.strip().upper()
            if _COUNTRY.match(value):
                found.add(value)
    return frozenset(found)


def parse_csl(content: str) -> list[ListEntry]:
    """Parse CSL CSV text; raise InvalidInput naming the line for anything unusable."""
    if "\x00" in content:
        raise InvalidInput(
            "the list contains NUL characters: not a CSV text file", reason="Invalid screening list"
        )
    try:
        return _parse_csl(content)
    except csv.Error as exc:
        raise InvalidInput(f"not readable as CSV: {exc}", reason="Invalid screening list") from None


def _parse_csl(content: str) -> list[ListEntry]:
    reader = csv.DictReader(io.StringIO(content))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InvalidInput(
            f"line 1: missing column(s) {', '.join(missing)}; expected the CSL layout "
            f"({', '.join(CSL_COLUMNS[:8])}, …)",
            reason="Invalid screening list",
        )
    entries: list[ListEntry] = []
    seen: set[str] = set()
    for index, row in enumerate(reader):
        line = index + 2
        if None in row:
            raise InvalidInput(f"line {line}: more fields than columns", reason="Invalid screening list")
        name = (row.get("name") or "").strip()
        if not name:
            raise InvalidInput(f"line {line}: name is empty", reason="Invalid screening list")
        entry_id = (row.get("_id") or row.get("entity_number") or "").strip() or f"row-{line}"
        if entry_id in seen:
            raise InvalidInput(f"line {line}: duplicate id {entry_id!r}", reason="Invalid screening list")
        seen.add(entry_id)
        entries.append(
            ListEntry(
                entry_id=entry_id,
                source=(row.get("source") or "").strip(),
                entity_type=(row.get("type") or "").strip(),
                name=name,
                alt_names=tuple(_split_list(row.get("alt_names") or "")),
                programs=(row.get("programs") or "").strip(),
                countries=_countries(row),
                remarks=(row.get("remarks") or "").strip(),
            )
        )
    return entries


def score_names(query: NormalizedName, candidate: NormalizedName) -> Scored:
    """Similarity 0-100 of two normalised names, or a veto naming the false-positive guard."""
    if not query.text or not candidate.text:
        return Scored(0.0, "empty name")
    exact = query.text == candidate.text
    if not exact and min(query.compact_len, candidate.compact_len) < MIN_FUZZY_LEN:
        return Scored(0.0, "short name: only an exact match counts")
    if query.numbers != candidate.numbers:
        return Scored(0.0, "numbers in the names differ")
    if not exact:
        if not query.distinctive or not candidate.distinctive:
            return Scored(0.0, "only generic words: only an exact match counts")
        if not any(
            JaroWinkler.normalized_similarity(a, b) >= WORD_SIMILARITY
            for a in query.distinctive
            for b in candidate.distinctive
        ):
            return Scored(0.0, "no distinctive word in common")
    if exact:
        return Scored(100.0)
    sort = fuzz.token_sort_ratio(query.text, candidate.text)
    token_set = fuzz.token_set_ratio(query.text, candidate.text)
    jaro = JaroWinkler.normalized_similarity(query.sorted_text, candidate.sorted_text) * 100
    return Scored(round(0.5 * sort + 0.25 * token_set + 0.25 * jaro, 2))


@dataclass
class ScreeningIndex:
    """The list prepared for matching: one normalised variant per name and alternative name."""

    entries: list[ListEntry]
    sha256: str = ""
    variants: list[NormalizedName] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # variant -> entry index
    originals: list[str] = field(default_factory=list)  # variant -> name as listed
    texts: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, entries: list[ListEntry], sha256: str = "") -> ScreeningIndex:
        index = cls(entries=entries, sha256=sha256)
        for i, entry in enumerate(entries):
            for raw in (entry.name, *entry.alt_names):
                variant = NormalizedName.of(raw)
                if not variant.text:
                    continue
                index.variants.append(variant)
                index.owners.append(i)
                index.originals.append(raw)
                index.texts.append(variant.text)
        return index

    @classmethod
    def from_csv(cls, content: str) -> ScreeningIndex:
        return cls.build(parse_csl(content), hashlib.sha256(content.encode()).hexdigest())

    def screen(self, name: str, country: str | None = None, threshold: float = 85.0) -> list[NameMatch]:
        """Entries matching ``name`` at or above ``threshold``, best first (one match per entry)."""
        query = NormalizedName.of(name)
        if not query.text:
            return []
        found = process.extract(
            query.text,
            self.texts,
            scorer=fuzz.token_set_ratio,
            processor=None,
            score_cutoff=PREFILTER,
            limit=CANDIDATES,
        )
        best: dict[int, NameMatch] = {}
        for _text, _pre, position in found:
            scored = score_names(query, self.variants[position])
            if scored.veto is not None:
                continue
            entry_index = self.owners[position]
            entry = self.entries[entry_index]
            score, notes = scored.score, []
            if country and entry.countries and country.upper() not in entry.countries:
                score -= COUNTRY_PENALTY
                notes.append(
                    f"country mismatch ({country.upper()} not in "
                    f"{', '.join(sorted(entry.countries))}): -{COUNTRY_PENALTY:g}"
                )
            if score < threshold:
                continue
            current = best.get(entry_index)
            if current is None or score > current.score:
                best[entry_index] = NameMatch(
                    entry_id=entry.entry_id,
                    entry_name=entry.name,
                    matched_name=self.originals[position],
                    source=entry.source,
                    programs=entry.programs,
                    score=round(score, 2),
                    notes=tuple(notes),
                )
        return sorted(best.values(), key=lambda m: (-m.score, m.entry_id))

    def explain(self, name: str, listed: str) -> Scored:
        """The score or veto of one name against one listed name (for tests and the CLI)."""
        return score_names(NormalizedName.of(name), NormalizedName.of(listed))


def csv_text(rows: Iterable[dict[str, str]]) -> str:
    """Write rows (dicts keyed by CSL column) as CSL CSV text; missing columns are empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSL_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in CSL_COLUMNS})
    return out.getvalue()
