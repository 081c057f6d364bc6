"""Pure helpers of logical inventory: buddy arithmetic, keys, keypad words, number features, patterns."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnup.inventory.logical.codec import (
    check_template,
    decompose,
    hexkey,
    next_prefix,
    number_features,
    parse_network,
    split_plan,
    unhex,
    vanity_to_digits,
)
from turnup.inventory.logical.numbers import parse_pattern
from turnup.kernel.errors import InvalidInput


@given(st.integers(0, 1 << 40), st.integers(1, 1 << 20))
def test_decompose_partitions_the_range_into_aligned_blocks(lo: int, size: int) -> None:
    blocks = decompose(lo, lo + size)
    cursor = lo
    for start, k in blocks:
        assert start == cursor and start % (1 << k) == 0
        cursor += 1 << k
    assert cursor == lo + size
    assert len(blocks) <= 2 * (lo + size).bit_length()


@given(st.integers(0, 20), st.data())
def test_split_plan_leaves_buddies_that_partition_the_block(k: int, data: st.DataObject) -> None:
    r = data.draw(st.integers(0, k))
    base = 1 << 30
    target = base + data.draw(st.integers(0, (1 << (k - r)) - 1)) * (1 << r)
    pieces, taken = split_plan(base, k, target, r)
    assert taken == (target, r)
    spans = sorted([(s, s + (1 << kk)) for s, kk in pieces] + [(target, target + (1 << r))])
    assert spans[0][0] == base and spans[-1][1] == base + (1 << k)
    assert all(a[1] == b[0] for a, b in pairwise(spans))
    assert len(pieces) == k - r


def test_keys_sort_like_numbers_up_to_the_end_of_ipv6() -> None:
    values = [0, 1, 255, 1 << 32, (1 << 128) - 1, 1 << 128]
    assert sorted(hexkey(v) for v in values) == [hexkey(v) for v in values]
    assert unhex(hexkey(1 << 128)) == 1 << 128


def test_parse_network_names_the_field_and_suggests_the_network() -> None:
    with pytest.raises(InvalidInput, match=r"prefix: '10.0.0.1/8' has host bits set .*10.0.0.0/8"):
        parse_network("10.0.0.1/8", "prefix")
    with pytest.raises(InvalidInput, match=r"prefix: '10\.0\.0/33' is not a valid CIDR"):
        parse_network("10.0.0/33", "prefix")


def test_vanity_words_map_to_the_keypad_and_patterns_split_into_indexable_parts() -> None:
    assert vanity_to_digits("FLOWERS") == "3569377"
    assert vanity_to_digits("1-800-CAKE") == "18002253"
    assert parse_pattern("*FLOWERS") == ("", "3569377", "%3569377")
    assert parse_pattern("20?7*") == ("20", "", "20_7%")
    with pytest.raises(InvalidInput, match="pattern: '!'"):
        parse_pattern("12!")


def test_golden_numbers_and_runs() -> None:
    assert number_features("442079460000") == (4, True)
    assert number_features("442079461234") == (1, True)
    assert number_features("442079464545") == (1, True)
    assert number_features("442079461122") == (2, True)
    assert number_features("442079461937") == (1, False)
    assert next_prefix("4429") == "442:"


def test_identifier_templates_accept_only_n() -> None:
    check_template("CKT-{n:06d}")
    for bad in ("CKT", "{x}", "{n.__class__}", "{n:zz}"):
        with pytest.raises(InvalidInput, match="template"):
            check_template(bad)
