"""Tests for hub.codes: GB 32100 USCC and GB 11643 citizen ID number validation."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub import codes
from hub.errors import InvalidIdNumber, InvalidInput, InvalidUSCC

# Each vector was checked by computing its check character(s) before being kept here.
VALID_USCC = ("91350100M000100Y43", "11100000000013338W", "11220000013544541J")
VALID_ID = "11010519491231002X"  # GB 11643-1999 example
# Synthetic (make_id_number, checked independently): a 29 February and a 31 December.
ID_VECTORS = (VALID_ID, "350102198002291230", "650104200012310013")
ID_BORN_1880 = "440524188001010014"  # GB 11643-1999 example: checksum fine, born < 1900
ID_DIGITS = "0123456789X"
# The UTC date is never after the China (UTC+8) date, and at most one day before it.
UTC_TODAY = dt.datetime.now(dt.UTC).date()


def _substitutions(code: str, alphabet: str) -> list[str]:
    return [code[:i] + char + code[i + 1 :] for i in range(len(code)) for char in alphabet if char != code[i]]


def _transpositions(code: str) -> list[str]:
    return [code[:i] + code[i + 1] + code[i] + code[i + 2 :] for i in range(len(code) - 1) if code[i] != code[i + 1]]


# --- known vectors -------------------------------------------------------------------


@pytest.mark.parametrize("code", VALID_USCC)
def test_known_uscc_vectors_are_valid(code: str) -> None:
    assert codes.uscc_check_char(code[:17]) == code[17]
    assert codes.org_code_check_char(code[8:16]) == code[16]
    assert codes.validate_uscc(code) == code
    assert codes.validate_uscc(f"  {code.lower()}\n") == code
    assert codes.make_uscc(code[0], code[1], code[2:8], code[8:16]) == code


def test_uscc_with_wrong_check_character_names_the_right_one() -> None:
    with pytest.raises(InvalidUSCC, match="should be 'J', not '7'"):
        codes.validate_uscc("911100001000013447")


def test_known_id_vector_is_valid_and_lowercase_x_is_normalised() -> None:
    assert codes.id_number_check_char(VALID_ID[:17]) == "X"
    assert codes.validate_id_number(VALID_ID) == VALID_ID
    assert codes.validate_id_number(f" {VALID_ID.lower()} ") == VALID_ID
    assert codes.make_id_number("110105", dt.date(1949, 12, 31), "002") == VALID_ID


def test_standard_example_born_1880_has_valid_checksum_but_is_rejected() -> None:
    assert codes.id_number_check_char(ID_BORN_1880[:17]) == ID_BORN_1880[17]
    with pytest.raises(InvalidIdNumber, match="birth date") as info:
        codes.validate_id_number(ID_BORN_1880)
    assert "before 1900-01-01" in info.value.detail


def test_error_codes() -> None:
    assert (InvalidUSCC.code, InvalidIdNumber.code) == (
        "invalid_uscc",
        "invalid_id_number",
    )
    assert InvalidInput.code == "invalid_input"
    assert issubclass(InvalidUSCC, InvalidInput)
    assert issubclass(InvalidIdNumber, InvalidInput)


# --- error detection -----------------------------------------------------------------


@pytest.mark.parametrize("code", VALID_USCC)
def test_every_single_substitution_of_a_uscc_is_rejected(code: str) -> None:
    variants = _substitutions(code, codes.USCC_ALPHABET)
    assert len(variants) == 18 * 30
    for variant in variants:
        with pytest.raises(InvalidUSCC):
            codes.validate_uscc(variant)


@pytest.mark.parametrize("code", VALID_USCC)
def test_every_adjacent_transposition_of_a_uscc_is_rejected(code: str) -> None:
    for variant in _transpositions(code):
        with pytest.raises(InvalidUSCC):
            codes.validate_uscc(variant)


@pytest.mark.parametrize("code", ID_VECTORS)
def test_every_single_substitution_of_an_id_number_is_rejected(code: str) -> None:
    assert codes.validate_id_number(code) == code
    variants = _substitutions(code, ID_DIGITS)
    assert len(variants) == 18 * 10
    for variant in variants:
        with pytest.raises(InvalidIdNumber):
            codes.validate_id_number(variant)


@pytest.mark.parametrize("code", ID_VECTORS)
def test_every_adjacent_transposition_of_an_id_number_is_rejected(code: str) -> None:
    variants = _transpositions(code)
    assert variants
    for variant in variants:
        with pytest.raises(InvalidIdNumber):
            codes.validate_id_number(variant)


# --- properties ----------------------------------------------------------------------

uscc_parts = st.tuples(
    st.sampled_from(codes.USCC_REGISTRATION_AUTHORITIES),
    st.sampled_from(codes.USCC_ALPHABET),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(codes.USCC_ALPHABET, min_size=8, max_size=8),
)


@given(uscc_parts)
def test_made_uscc_validates_and_round_trips(parts: tuple[str, str, str, str]) -> None:
    registration, category, area, org_code8 = parts
    code = codes.make_uscc(registration, category, area, org_code8)
    assert code[:16] == registration + category + area + org_code8
    assert codes.org_code_check_char(org_code8) == code[16]
    assert codes.validate_uscc(code) == code
    assert codes.validate_uscc(f"\t{code.lower()} ") == code
    assert codes.validate_holder_code("001", code) == code


@given(
    st.sampled_from(sorted(codes.ID_PROVINCES)),
    st.text("0123456789", min_size=4, max_size=4),
    st.dates(dt.date(1900, 1, 1), UTC_TODAY - dt.timedelta(days=1)),
    st.text("0123456789", min_size=3, max_size=3),
)
def test_made_id_number_validates_and_round_trips(province: str, county: str, birth: dt.date, seq3: str) -> None:
    code = codes.make_id_number(province + county, birth, seq3)
    assert code[6:14] == birth.strftime("%Y%m%d")
    assert code[:6] + code[14:17] == province + county + seq3
    assert codes.validate_id_number(code) == code
    assert codes.validate_id_number(f" {code.lower()}\n") == code
    assert codes.validate_holder_code("111", code) == code


@given(st.text(max_size=24))
def test_arbitrary_text_is_valid_or_raises_the_domain_error(text: str) -> None:
    for validate, error in (
        (codes.validate_uscc, InvalidUSCC),
        (codes.validate_id_number, InvalidIdNumber),
    ):
        try:
            result: str | None = validate(text)
        except error as exc:
            result, detail = None, exc.detail
        else:
            detail = ""
        if result is None:
            assert detail
        else:
            assert len(result) == 18
            assert validate(result) == result


# --- malformed input -----------------------------------------------------------------

GOOD_USCC = VALID_USCC[0]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "has 0 characters"),
        ("   ", "has 0 characters"),
        ("None", "has 4 characters"),
        ("null", "has 4 characters"),
        (GOOD_USCC[:17], "has 17 characters"),
        (GOOD_USCC + "0", "has 19 characters"),
        ("I" + GOOD_USCC[1:], "character 1 of '" + "I"),
        (GOOD_USCC[:8] + "O" + GOOD_USCC[9:], "character 9 of"),
        (GOOD_USCC[:9] + "s" + GOOD_USCC[10:], "character 10 of"),
        (GOOD_USCC[:10] + "V" + GOOD_USCC[11:], "never I, O, S, V or Z"),
        (GOOD_USCC[:17] + "Z", "character 18 of"),
        (GOOD_USCC[:2] + "\uff13" + GOOD_USCC[3:], "character 3 of"),
        (GOOD_USCC[:4] + " " + GOOD_USCC[5:], "character 5 of"),
        ("B" + GOOD_USCC[1:], "registration authority"),
        ("0" + GOOD_USCC[1:], "registration authority"),
        (GOOD_USCC[:17] + "4", "should be '3', not '4'"),
    ],
)
def test_malformed_uscc_is_rejected_with_a_useful_detail(text: str, detail: str) -> None:
    with pytest.raises(InvalidUSCC) as info:
        codes.validate_uscc(text)
    assert detail in info.value.detail
    assert info.value.code == "invalid_uscc"
    assert info.value.problem()["status"] == 422


FUTURE = UTC_TODAY + dt.timedelta(days=2)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "18 characters, not 0"),
        ("None", "18 characters, not 4"),
        (VALID_ID[:17], "18 characters, not 17"),
        (VALID_ID + "1", "18 characters, not 19"),
        ("x" + VALID_ID[1:], "character 1 is 'x'"),
        (VALID_ID[:16] + "XX", "character 17 is 'X'"),
        (VALID_ID[:5] + "\uff19" + VALID_ID[6:], "character 6 is '\uff19'"),
        (VALID_ID[:17] + "Y", "must be a digit 0-9 or X, not 'Y'"),
        ("00" + VALID_ID[2:], "'00' (characters 1-2) is not a province-level"),
        ("72" + VALID_ID[2:], "'72' (characters 1-2) is not a province-level"),
        ("110105" + "19490230" + "0021", "not a real calendar date"),
        ("110105" + "19491301" + "0021", "not a real calendar date"),
        ("110105" + "00000101" + "0021", "not a real calendar date"),
        ("110105" + "18991231" + "0021", "before 1900-01-01 or in the future"),
        ("110105" + FUTURE.strftime("%Y%m%d") + "0021", "in the future"),
        (VALID_ID[:17] + "1", "check character should be 'X', not '1'"),
    ],
)
def test_malformed_id_number_is_rejected_with_a_useful_detail(text: str, detail: str) -> None:
    with pytest.raises(InvalidIdNumber) as info:
        codes.validate_id_number(text)
    assert detail in info.value.detail
    assert info.value.code == "invalid_id_number"


def test_id_number_detail_does_not_echo_the_number() -> None:
    for text in (VALID_ID[:17] + "1", VALID_ID[:17], "110105" + "19490230" + "0021"):
        with pytest.raises(InvalidIdNumber) as info:
            codes.validate_id_number(text)
        assert text[:14] not in info.value.detail
        assert text[6:14] not in info.value.detail


def test_born_yesterday_is_accepted() -> None:
    code = codes.make_id_number("110105", UTC_TODAY - dt.timedelta(days=1), "001")
    assert codes.validate_id_number(code) == code


@pytest.mark.parametrize(
    ("function", "argument"),
    [
        (codes.uscc_check_char, GOOD_USCC[:16]),
        (codes.uscc_check_char, "I" + GOOD_USCC[1:17]),
        (codes.id_number_check_char, VALID_ID[:16]),
        (codes.id_number_check_char, VALID_ID[:16] + "\uff19"),
        (codes.org_code_check_char, "M000100"),
        (codes.org_code_check_char, "M000100O"),
    ],
)
def test_check_char_functions_reject_malformed_bodies(function: object, argument: str) -> None:
    assert callable(function)
    with pytest.raises(ValueError, match="need"):
        function(argument)


@pytest.mark.parametrize(
    ("registration", "category", "area", "org_code8"),
    [
        ("B", "1", "350100", "M000100Y"),
        ("91", "1", "350100", "M000100Y"),
        ("9", "I", "350100", "M000100Y"),
        ("9", "1", "35010", "M000100Y"),
        ("9", "1", "350100", "M000100S"),
    ],
)
def test_make_uscc_rejects_malformed_parts(registration: str, category: str, area: str, org_code8: str) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        codes.make_uscc(registration, category, area, org_code8)


@pytest.mark.parametrize(("area6", "seq3"), [("11010", "002"), ("110105", "02a")])
def test_make_id_number_rejects_malformed_parts(area6: str, seq3: str) -> None:
    with pytest.raises(ValueError, match="need 6 and 3 ASCII digits"):
        codes.make_id_number(area6, dt.date(1949, 12, 31), seq3)


def test_org_code_check_char_maps_10_to_x_and_11_to_0() -> None:
    checks = {codes.org_code_check_char(f"{n:08d}") for n in range(0, 10_000_000, 9973)}
    assert "X" in checks
    assert "0" in checks


# --- dispatch by holder type ---------------------------------------------------------


def test_holder_code_dispatch() -> None:
    assert codes.validate_holder_code("111", VALID_ID.lower()) == VALID_ID
    assert codes.validate_holder_code("001", GOOD_USCC.lower()) == GOOD_USCC
    with pytest.raises(InvalidIdNumber):
        codes.validate_holder_code("111", GOOD_USCC)
    with pytest.raises(InvalidUSCC):
        codes.validate_holder_code("001", VALID_ID)


@pytest.mark.parametrize("holder_type", ["", "11", "1111", "002", " 111", "None", "ID"])
def test_holder_code_rejects_unknown_holder_type(holder_type: str) -> None:
    with pytest.raises(InvalidInput) as info:
        codes.validate_holder_code(holder_type, VALID_ID)
    assert type(info.value) is InvalidInput
    assert info.value.code == "invalid_input"
    assert info.value.detail == ("holder type must be '111' (citizen ID number) or '001' (unified social credit code)")


def test_mask_id_numbers_masks_valid_citizen_ids_only() -> None:
    valid = codes.make_id_number("330102", dt.date(1985, 3, 12), "123")
    wrong = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    uscc = codes.make_uscc("9", "1", "330100", "MA2H7K3A")
    text = f"no licence {valid}; also {wrong} and {uscc}; /v1/licences/{valid}"
    masked = codes.mask_id_numbers(text)
    assert valid not in masked and masked.count(f"{valid[:6]}********{valid[-4:]}") == 2
    assert wrong in masked and uscc in masked  # not a valid ID number: left as written
    assert codes.mask_id_numbers(f"x{valid}") == f"x{valid}"  # part of a longer token: not an ID number on its own
