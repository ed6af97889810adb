"""Check and build licence-holder codes: USCC (GB 32100) and citizen ID (GB 11643)."""

from __future__ import annotations

import datetime as dt
import re

from hub.errors import InvalidIdNumber, InvalidInput, InvalidUSCC

# GB 32100-2015 §4: the 31 code characters (no I, O, S, V, Z); weights of C1-C17.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_REGISTRATION_AUTHORITIES = "123456789ANY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997, organisation code body
_DIGITS = frozenset("0123456789")
# Province-level area codes (first two digits of GB/T 2260) accepted in an ID number.
_PROVINCE_RANGES = ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65))
ID_PROVINCES = frozenset(f"{n:02d}" for low, high in _PROVINCE_RANGES for n in range(low, high + 1)) | {
    "71",
    "81",
    "82",
    "83",
    "91",
}
_EARLIEST_BIRTH = dt.date(1900, 1, 1)
_CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


def _is_digits(text: str, length: int) -> bool:
    """Tell whether ``text`` is ``length`` ASCII digits (isdigit() accepts too much)."""
    return len(text) == length and set(text) <= _DIGITS


def uscc_check_char(first17: str) -> str:
    """Check character of a USCC; ValueError unless 17 characters of the alphabet."""
    if len(first17) != 17 or not set(first17) <= set(USCC_ALPHABET):
        msg = f"need 17 characters from {USCC_ALPHABET!r}, got {first17!r}"
        raise ValueError(msg)
    # GB 32100-2015 §4: C18 = 31 - (sum(Ci * Wi) mod 31), and 31 is written as 0.
    values = (USCC_ALPHABET.index(char) for char in first17)
    total = sum(v * w for v, w in zip(values, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _uscc_problem(code: str) -> str | None:
    """Say in plain English what is wrong with a normalised USCC; None if valid."""
    if len(code) != 18:
        return f"{code!r} has {len(code)} characters; a USCC has 18"
    for position, char in enumerate(code, start=1):
        if char not in USCC_ALPHABET:
            return (
                f"character {position} of {code!r} is {char!r}; only digits 0-9 and "
                "letters ABCDEFGHJKLMNPQRTUWXY are used (never I, O, S, V or Z)"
            )
    if code[0] not in USCC_REGISTRATION_AUTHORITIES:
        return f"character 1 (registration authority) of {code!r} must be 1-9, A, N or Y, not {code[0]!r}"
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"check character of {code!r} should be {expected!r}, not {code[17]!r}"
    return None


def validate_uscc(code: str) -> str:
    """Return the USCC stripped and upper-cased, or raise InvalidUSCC saying why."""
    normalised = code.strip().upper()
    problem = _uscc_problem(normalised)
    if problem is not None:
        raise InvalidUSCC(problem)
    return normalised


def id_number_check_char(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2); ValueError unless 17 digits."""
    if not _is_digits(first17, 17):
        msg = f"need 17 ASCII digits, got {first17!r}"
        raise ValueError(msg)
    # Weight of 0-based index i is 2^(17-i) mod 11; check (12 - sum) mod 11, 10 -> X.
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _id_format_problem(code: str) -> str | None:
    """Say what is wrong with the shape of an ID number (length, characters)."""
    if len(code) != 18:
        return f"a citizen ID number has 18 characters, not {len(code)}"
    for position, char in enumerate(code[:17], start=1):
        if char not in _DIGITS:
            return f"character {position} is {char!r}; characters 1-17 must be digits 0-9"
    if code[17] not in _DIGITS | {"X"}:
        return f"the last character must be a digit 0-9 or X, not {code[17]!r}"
    return None


def _id_number_problem(code: str) -> str | None:
    """Say what is wrong with a normalised ID number, never echoing it; or None."""
    problem = _id_format_problem(code)
    if problem is not None:
        return problem
    if code[:2] not in ID_PROVINCES:
        return f"{code[:2]!r} (characters 1-2) is not a province-level area code"
    try:
        birth = dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return "birth date (characters 7-14, YYYYMMDD) is not a real calendar date"
    if not _EARLIEST_BIRTH <= birth <= dt.datetime.now(_CHINA_TIME).date():
        return "birth date (characters 7-14) is before 1900-01-01 or in the future"
    expected = id_number_check_char(code[:17])
    if code[17] != expected:
        return f"check character should be {expected!r}, not {code[17]!r}"
    return None


def validate_id_number(code: str) -> str:
    """Return the ID number stripped, with a final x as X, or raise InvalidIdNumber."""
    stripped = code.strip()
    normalised = stripped[:-1] + stripped[-1:].replace("x", "X")
    problem = _id_number_problem(normalised)
    if problem is not None:
        raise InvalidIdNumber(problem)
    return normalised


def validate_holder_code(holder_type: str, code: str) -> str:
    """Validate ``code`` by holder type: '111' citizen ID number, '001' USCC."""
    if holder_type == "111":
        return validate_id_number(code)
    if holder_type == "001":
        return validate_uscc(code)
    msg = "holder type must be '111' (citizen ID number) or '001' (unified social credit code)"
    raise InvalidInput(msg)


def org_code_check_char(org_code8: str) -> str:
    """GB 11714 check character: 11 - (weighted sum mod 11), then 10 -> X, 11 -> 0."""
    if len(org_code8) != 8 or not set(org_code8) <= set(USCC_ALPHABET):
        msg = f"need 8 characters from {USCC_ALPHABET!r}, got {org_code8!r}"
        raise ValueError(msg)
    # Digits are worth 0-9 and letters A=10 ... Z=35: their base-36 value.
    total = sum(int(c, 36) * w for c, w in zip(org_code8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(registration: str, category: str, area: str, org_code8: str) -> str:
    """Build a valid USCC from its parts; ValueError if a part is malformed.

    ``registration`` is one of 1-9, A, N, Y; ``category`` one alphabet character;
    ``area`` six digits; ``org_code8`` the first 8 characters of the organisation
    code, whose 9th (GB 11714 check) character is computed here before the
    GB 32100 check character is appended. No part may use I, O, S, V or Z.
    """
    if len(registration) != 1 or registration not in USCC_REGISTRATION_AUTHORITIES:
        msg = f"registration authority must be 1-9, A, N or Y, not {registration!r}"
        raise ValueError(msg)
    if len(category) != 1 or category not in USCC_ALPHABET or not _is_digits(area, 6):
        msg = f"need 1 alphabet character and 6 digits, got {category!r} and {area!r}"
        raise ValueError(msg)
    org_code9 = org_code8 + org_code_check_char(org_code8)
    first17 = registration + category + area + org_code9
    return first17 + uscc_check_char(first17)


def make_id_number(area6: str, birth: dt.date, seq3: str) -> str:
    """Build an ID number from area code, birth date and 3-digit sequence number.

    Only the shape is checked (ValueError); ``validate_id_number`` judges the area
    code and the birth-date range.
    """
    if not (_is_digits(area6, 6) and _is_digits(seq3, 3)):
        msg = f"need 6 and 3 ASCII digits, got {area6!r} and {seq3!r}"
        raise ValueError(msg)
    first17 = f"{area6}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq3}"
    return first17 + id_number_check_char(first17)


_ID_NUMBER_LIKE = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")


def mask_id_numbers(text: str) -> str:
    """``text`` with every valid citizen ID number masked to its first 6 and last 4 characters.

    For what the hub itself writes out (error bodies): a caller who puts an ID number where it does not belong
    (a URL path, a free-text field) must not see it echoed back, nor must anything that stores the answer.
    """

    def mask(match: re.Match[str]) -> str:
        code = match.group(0)
        return f"{code[:6]}{'*' * 8}{code[-4:]}" if id_number_check_char(code[:17]) == code[17].upper() else code

    return _ID_NUMBER_LIKE.sub(mask, text)
