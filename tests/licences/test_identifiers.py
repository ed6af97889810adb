"""GB/T 36904 identifiers: the national test vector, MOD 37,36 error detection, parsing and refusals."""

from __future__ import annotations

import itertools

import pytest
from factories import random_uscc
from hypothesis import given, settings
from hypothesis import strategies as st

from licences.identifiers import (
    ALPHABET,
    LicenceIdentifierInvalid,
    check_character,
    make_identifier,
    parse_identifier,
)

VECTOR = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"  # DESIGN.md §3


def test_the_national_test_vector() -> None:
    parsed = parse_identifier(VECTOR)
    assert (parsed.type_code, parsed.issuer_code, parsed.serial, parsed.version) == (
        "11100000000013338W032",
        "11220000013544541J",
        "2430599",
        "001",
    )
    assert parsed.check == "F"
    assert str(parsed) == VECTOR
    assert str(make_identifier("11100000000013338W032", "11220000013544541J", "2430599")) == VECTOR


def test_next_version_links_and_rechecks() -> None:
    amended = parse_identifier(VECTOR).next_version()
    assert amended.version == "002"
    assert str(parse_identifier(str(amended))) == str(amended)
    with pytest.raises(LicenceIdentifierInvalid, match="999"):
        make_identifier("11100000000013338W032", "11220000013544541J", "1", "999").next_version()


_body = st.text(alphabet=ALPHABET, min_size=2, max_size=50)


@given(body=_body, data=st.data())
@settings(max_examples=300)
def test_every_single_substitution_changes_the_check(body: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    other = data.draw(st.sampled_from([c for c in ALPHABET if c != body[at]]))
    assert check_character(body[:at] + other + body[at + 1 :]) != check_character(body)


@pytest.mark.parametrize("prefix", ["", "6", "6K", "11100000000013338W032"])
def test_almost_every_adjacent_transposition_changes_the_check(prefix: str) -> None:
    """MOD 37,36 is a hybrid system: it misses a handful of the 1,260 adjacent swaps, no more."""
    pairs = list(itertools.permutations(ALPHABET, 2))
    missed = [
        (a, b) for a, b in pairs if check_character(prefix + a + b + "1") == check_character(prefix + b + a + "1")
    ]
    assert len(missed) / len(pairs) < 0.005


@pytest.mark.parametrize(
    "bad",
    [
        VECTOR[:-1] + "G",  # wrong check character
        VECTOR.replace("2430599", "2430598"),  # serial changed, check kept
        VECTOR.replace("1.2.156.3005.2.", "1.2.156.3005.3."),  # wrong arc
        VECTOR.replace(".001.", ".000."),  # version 000
        VECTOR.replace(".001.", ".01."),
        VECTOR.replace("11220000013544541J", "11220000013544541K"),  # issuer USCC check fails
        VECTOR.replace("W032", "W03"),  # type code too short
        VECTOR.replace("2430599", "24305-9"),
        VECTOR + ".X",
        "",
        "1.2.156.3005.2",
    ],
)
def test_bad_identifiers_are_refused_clearly(bad: str) -> None:
    with pytest.raises(LicenceIdentifierInvalid) as caught:
        parse_identifier(bad)
    assert caught.value.status == 422
    assert caught.value.code == "licence_identifier_invalid"


def test_lower_case_and_spaces_are_normalised() -> None:
    assert str(parse_identifier(f"  {VECTOR.lower()} ")) == VECTOR


@given(serial=st.text(alphabet=ALPHABET, min_size=1, max_size=20), version=st.integers(min_value=1, max_value=999))
@settings(max_examples=100)
def test_made_identifiers_parse_back(serial: str, version: int) -> None:
    made = make_identifier(random_uscc() + "001", random_uscc(), serial, f"{version:03d}")
    assert parse_identifier(str(made)) == made
