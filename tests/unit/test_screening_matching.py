"""Screening: name normalisation, fuzzy matching, false-positive guards, CSL parsing, dated export rules."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnup.compliance.config import SAMPLE_LIST, SAMPLE_RULES
from turnup.compliance.matching import CSL_COLUMNS, ScreeningIndex, csv_text, parse_csl
from turnup.compliance.normalize import GENERIC_WORDS, LEGAL_FORMS, normalize_name
from turnup.compliance.rules import evaluate, load_rules
from turnup.kernel.errors import InvalidInput


@pytest.fixture(scope="module")
def index() -> ScreeningIndex:
    return ScreeningIndex.from_csv(SAMPLE_LIST.read_text(encoding="utf-8"))


def hits(index: ScreeningIndex, name: str, country: str | None = None) -> list[str]:
    return [m.entry_id for m in index.screen(name, country)]


# --- normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Zorblax Dynamics LLC", "zorblax dynamics"),
        ("ZORBLAX DYNAMICS, L.L.C.", "zorblax dynamics"),
        ("  zorblax   dynamics  ", "zorblax dynamics"),
        ("Nebulon Wirecraft S.A.", "nebulon wirecraft"),
        ("Brindlewood Photonics AG", "brindlewood photonics"),
        ("Vantrobe Optical Systems GmbH", "vantrobe optical systems"),
        ("Société Imaginaire d'Électronique Fictive", "societe imaginaire delectronique fictive"),
        ("Smith & Jones Inc.", "smith and jones"),
        ("Quenterra-Trading/21 Ltd", "quenterra trading 21"),
        ("Straße Ltd", "strasse"),
        ("LLC", "llc"),  # a name made only of legal-form words keeps them
        ("", ""),
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@given(st.text(max_size=60))
@settings(max_examples=400)
def test_normalisation_is_idempotent(raw: str) -> None:
    once = normalize_name(raw)
    assert normalize_name(once) == once


WORDS = st.text(alphabet=st.characters(categories=("Lu", "Ll", "Nd")), min_size=1, max_size=12).filter(
    lambda w: normalize_name(w) not in LEGAL_FORMS and normalize_name(w) != ""
)


@given(
    st.lists(WORDS, min_size=1, max_size=4),
    st.sampled_from(
        ["LLC", "Ltd", "Ltd.", "GmbH", "AG", "S.A.", "Inc", "Inc.", "Corp", "PLC", "B.V.", "L.L.C."]
    ),
    st.sampled_from([None, "AE", "DE", "CN"]),
)
@settings(max_examples=150, deadline=None)
def test_adding_a_legal_form_suffix_never_changes_the_decision(
    words: list[str], suffix: str, country: str | None
) -> None:
    index = ScreeningIndex.from_csv(SAMPLE_LIST.read_text(encoding="utf-8"))
    name = " ".join(words)
    assert normalize_name(f"{name} {suffix}") == normalize_name(name)
    assert hits(index, f"{name} {suffix}", country) == hits(index, name, country)
    assert hits(index, f"{name}, {suffix}", country) == hits(index, name, country)


def test_adding_a_legal_form_suffix_keeps_a_real_hit(index: ScreeningIndex) -> None:
    for name in (
        "Zorblax Dynamics",
        "Zorblax Dynamics GmbH",
        "Zorblax Dynamics, S.A.",
        "ZORBLAX DYNAMICS INC",
    ):
        assert hits(index, name) == ["SYN-0001"], name


# --- fuzzy matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Zorblax Dynamics", "SYN-0001"),  # legal form dropped
        ("Zorblaxx Dynamics", "SYN-0001"),  # typo
        ("Dynamics Zorblax", "SYN-0001"),  # word order
        ("ZBX Dynamics Co", "SYN-0001"),  # alternative name
        ("Vantrobe Optical Sistems", "SYN-0003"),  # typo
        ("Kessarine Microwave Lab", "SYN-0011"),
        ("Societe Imaginaire d'Electronique Fictive", "SYN-0013"),  # accents
        ("Marigold Quimbleworth", "SYN-0004"),
    ],
)
def test_fuzzy_hits(index: ScreeningIndex, name: str, expected: str) -> None:
    assert hits(index, name) == [expected]


def test_unrelated_names_do_not_hit(index: ScreeningIndex) -> None:
    for name in ("Acme Widgets", "Harbour View Dental Practice", "Zorro Dynamite", "Northwind Fibre"):
        assert hits(index, name) == [], name


def test_score_reports_exact_and_fuzzy(index: ScreeningIndex) -> None:
    exact = index.screen("zorblax dynamics llc")[0]
    assert (exact.entry_id, exact.score, exact.matched_name) == ("SYN-0001", 100.0, "Zorblax Dynamics LLC")
    fuzzy = index.screen("Zorblaxx Dynamics")[0]
    assert 85 <= fuzzy.score < 100


def test_threshold_is_configurable(index: ScreeningIndex) -> None:
    assert [m.entry_id for m in index.screen("Zorblaxx Dynamics", threshold=99.0)] == []
    assert [m.entry_id for m in index.screen("Zorblaxx Dynamics", threshold=80.0)] == ["SYN-0001"]


# --- false-positive guards --------------------------------------------------------------------------


def test_guard_numbers_must_agree(index: ScreeningIndex) -> None:
    assert hits(index, "Quenterra Trading 21") == ["SYN-0002"]
    assert hits(index, "Quenterra Trading 12") == []
    assert hits(index, "Quenterra Trading 211") == []
    assert (
        index.explain("Quenterra Trading 12", "Quenterra Trading 21 Ltd").veto
        == "numbers in the names differ"
    )


def test_guard_very_short_names_need_an_exact_match(index: ScreeningIndex) -> None:
    assert hits(index, "ZX") == ["SYN-0005"]
    assert hits(index, "Z.X.") == ["SYN-0005"]
    for near in ("ZY", "ZXA", "XZ", "AZX"):
        assert hits(index, near) == [], near
    assert index.explain("ZY", "ZX").veto == "short name: only an exact match counts"


def test_guard_generic_words_alone_never_fuzzy_match(index: ScreeningIndex) -> None:
    # the listed entry "Global Trading Group" is only generic words: it needs an exact match
    assert hits(index, "Global Trading Group Ltd") == ["SYN-0006"]
    for name in ("Global Trading Groups", "Global Trading Group Services", "Trading Group Global Ltd."):
        if normalize_name(name) != "global trading group":
            assert "SYN-0006" not in hits(index, name), name
    # a customer sharing only generic words with an entry is not a hit
    assert hits(index, "Kessarine Holdings International") == []  # distinctive word, but too different
    assert index.explain("Nova Optical Systems", "Vantrobe Optical Systems").veto is None  # 'optical'
    assert (
        index.explain("Nova Systems International", "Vantrobe Optical Systems").veto
        == "no distinctive word in common"
    )
    assert (
        index.explain("Zorblax Trading Group", "Global Trading Group").veto
        == "only generic words: only an exact match counts"
    )
    assert "SYN-0006" not in hits(index, "Zorblax Trading Group")
    assert {"trading", "global", "group"} <= GENERIC_WORDS


def test_guard_country_mismatch_lowers_the_score(index: ScreeningIndex) -> None:
    # a near match in the entry's own country hits; the same near match elsewhere does not
    same = index.screen("Vantrobe Optical Sistem", "RU")
    other = index.screen("Vantrobe Optical Sistem", "DE")
    unknown = index.screen("Vantrobe Optical Sistem", None)
    assert [m.entry_id for m in same] == ["SYN-0003"] == [m.entry_id for m in unknown]
    assert other == []
    penalised = index.screen("Vantrobe Optical Sistem", "DE", threshold=0)[0]
    assert penalised.score == round(same[0].score - 10, 2) < 85
    assert penalised.notes == ("country mismatch (DE not in RU): -10",)
    # an identical name still hits in any country
    exact = index.screen("Vantrobe Optical Systems GmbH", "DE")
    assert [(m.entry_id, m.score) for m in exact] == [("SYN-0003", 90.0)]


def test_ten_thousand_names_screen_without_error(index: ScreeningIndex) -> None:
    names = [f"Customer {i} Fibre Networks" for i in range(10_000)]
    assert sum(1 for n in names if index.screen(n)) == 0


# --- CSL parsing ------------------------------------------------------------------------------------


def test_sample_list_is_in_csl_layout_and_synthetic() -> None:
    text = SAMPLE_LIST.read_text(encoding="utf-8")
    assert text.splitlines()[0].split(",") == list(CSL_COLUMNS)
    entries = parse_csl(text)
    assert len(entries) == 15
    assert all(e.entry_id.startswith("SYN-") for e in entries)
    zorblax = entries[0]
    assert zorblax.alt_names == ("Zorblax Dyn", "ZBX Dynamics Company")
    assert zorblax.countries == frozenset({"AE"})


def test_bad_list_names_the_line() -> None:
    with pytest.raises(InvalidInput, match=r"line 1: missing column\(s\) name"):
        parse_csl("source,title\nX,Y\n")
    with pytest.raises(InvalidInput, match="line 3: name is empty"):
        parse_csl(csv_text([{"_id": "A", "source": "S", "name": "Fine Name"}, {"_id": "B", "source": "S"}]))
    with pytest.raises(InvalidInput, match="line 3: duplicate id 'A'"):
        parse_csl(
            csv_text([{"_id": "A", "source": "S", "name": "One"}, {"_id": "A", "source": "S", "name": "Two"}])
        )


# --- dated export rules -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules():  # type: ignore[no-untyped-def]
    return load_rules(SAMPLE_RULES)


def test_embargo_applies_from_its_start_date(rules) -> None:  # type: ignore[no-untyped-def]
    before = evaluate(rules, eccn=None, destination_country="KP", on_date=date(2008, 6, 25))
    after = evaluate(rules, eccn=None, destination_country="KP", on_date=date(2008, 6, 26))
    assert before == []
    assert [(f.kind, f.rule_id) for f in after] == [("embargo", "EMB-KP")]


def test_embargo_that_ended_no_longer_applies(rules) -> None:  # type: ignore[no-untyped-def]
    assert [
        f.rule_id for f in evaluate(rules, eccn=None, destination_country="SY", on_date=date(2025, 6, 30))
    ] == ["EMB-SY"]
    assert evaluate(rules, eccn=None, destination_country="SY", on_date=date(2025, 7, 1)) == []


def test_licence_rules_per_eccn_destination_and_date(rules) -> None:  # type: ignore[no-untyped-def]
    def ids(eccn: str | None, country: str, on: date) -> list[str]:
        return [f.rule_id for f in evaluate(rules, eccn=eccn, destination_country=country, on_date=on)]

    assert ids("5A002.a", "CN", date(2024, 1, 1)) == ["LIC-5A002-RESTRICTED"]
    assert ids("5A002", "cn", date(2022, 4, 7)) == []  # before the rule
    assert ids("5A002", "GB", date(2024, 1, 1)) == []  # not a listed destination
    assert ids("EAR99", "CN", date(2024, 1, 1)) == []
    assert ids(None, "CN", date(2024, 1, 1)) == []
    assert ids("5A991", "CN", date(2024, 12, 31)) == ["LIC-5A991-CN"]
    assert ids("5A991", "CN", date(2025, 1, 1)) == []  # the rule ended
    assert ids("5A002", "IR", date(2024, 1, 1)) == ["EMB-IR"]  # embargo first, whatever the ECCN


def test_unreadable_list_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        parse_csl("source,name\nS,A\x00B\n")
