"""GB/T 36904 e-licence identifiers: build, parse and check ``1.2.156.3005.2.<type>.<issuer>.<serial>.<ver>.<check>``.

DESIGN.md §3: the type code is the defining authority's USCC plus a 3-digit sequence, the issuer code the
issuing authority's USCC, the serial unique per issuer, the version three digits (001 on issue, bumped on
amendment or renewal), and the check character ISO/IEC 7064 MOD 37,36 over type + issuer + serial +
version with the dots removed. Written by hand: no maintained library implements MOD 37,36 or GB/T 36904.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from hub.codes import validate_uscc
from hub.errors import InvalidInput, InvalidUSCC

PREFIX = "1.2.156.3005.2"  # GB/T 36904: the national e-licence arc
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # ISO/IEC 7064 MOD 37,36 character set
_MODULUS = 36
_SERIAL = re.compile(r"[0-9A-Z]{1,20}")
_VERSION = re.compile(r"[0-9]{3}")
FIRST_VERSION = "001"


class LicenceIdentifierInvalid(InvalidInput):
    code = "licence_identifier_invalid"
    title = "Not a valid GB/T 36904 licence identifier"


def check_character(body: str) -> str:
    """ISO/IEC 7064 MOD 37,36 (hybrid system, §5.2): the character that makes the whole string check out.

    For each character: P = ((P + value) mod 36, with 0 read as 36) × 2 mod 37, starting from P = 36; the
    check character c then satisfies (P + c) mod 36 = 1. It detects every single substitution and all but
    a few adjacent transpositions (the tests measure more than 99.8 %).
    """
    product = _MODULUS
    for char in body:
        value = ALPHABET.find(char)
        if value < 0:
            raise LicenceIdentifierInvalid(f"{char!r} is not one of 0-9 A-Z")
        product = ((product + value) % _MODULUS or _MODULUS) * 2 % (_MODULUS + 1)
    return ALPHABET[(1 - product) % _MODULUS]


def validate_type_code(code: str) -> str:
    """A licence type code: the defining authority's USCC (GB 32100) followed by three digits."""
    code = code.strip().upper()
    if len(code) != 21 or not code[18:].isdigit():
        raise LicenceIdentifierInvalid(
            "a licence type code is the defining authority's USCC and 3 digits (21 characters)"
        )
    try:
        validate_uscc(code[:18])
    except InvalidUSCC as exc:
        raise LicenceIdentifierInvalid(f"the type code's defining authority is not a valid USCC: {exc.detail}") from exc
    return code


@dataclass(frozen=True)
class LicenceIdentifier:
    type_code: str
    issuer_code: str
    serial: str
    version: str

    @cached_property  # a frozen dataclass without slots: computed once, kept in the instance's __dict__
    def check(self) -> str:
        return check_character(self.type_code + self.issuer_code + self.serial + self.version)

    def __str__(self) -> str:
        return f"{PREFIX}.{self.type_code}.{self.issuer_code}.{self.serial}.{self.version}.{self.check}"

    def next_version(self) -> LicenceIdentifier:
        """The identifier of the amended or renewed licence (version + 1; the old one stays linked)."""
        number = int(self.version) + 1
        if number > 999:
            raise LicenceIdentifierInvalid("a licence has at most 999 versions")
        return LicenceIdentifier(self.type_code, self.issuer_code, self.serial, f"{number:03d}")


def make_identifier(type_code: str, issuer_code: str, serial: str, version: str = FIRST_VERSION) -> LicenceIdentifier:
    """Validate the parts and build an identifier (its check character is computed, never taken)."""
    type_code = validate_type_code(type_code)
    try:
        issuer_code = validate_uscc(issuer_code)
    except InvalidUSCC as exc:
        raise LicenceIdentifierInvalid(f"the issuer code is not a valid USCC: {exc.detail}") from exc
    if not _SERIAL.fullmatch(serial):
        raise LicenceIdentifierInvalid("a serial is 1-20 characters of 0-9 A-Z")
    if not _VERSION.fullmatch(version) or version == "000":
        raise LicenceIdentifierInvalid("a version is three digits from 001")
    return LicenceIdentifier(type_code, issuer_code, serial, version)


def parse_identifier(text: str) -> LicenceIdentifier:
    """Parse and fully check an identifier: prefix, parts, USCC check characters and the MOD 37,36 check."""
    text = text.strip()
    if not text.isascii():  # before upper(): Unicode case mapping turns "ſ" into "S" and "ﬁ" into "FI"
        raise LicenceIdentifierInvalid("a licence identifier has only 0-9, A-Z and dots")
    text = text.upper()
    if not text.startswith(PREFIX + "."):
        raise LicenceIdentifierInvalid(f"a licence identifier starts with {PREFIX}.")
    parts = text[len(PREFIX) + 1 :].split(".")
    if len(parts) != 5:
        raise LicenceIdentifierInvalid(
            "a licence identifier has five parts after the prefix: type.issuer.serial.version.check"
        )
    type_code, issuer_code, serial, version, check = parts
    identifier = make_identifier(type_code, issuer_code, serial, version)
    if check != identifier.check:
        raise LicenceIdentifierInvalid("the check character does not match (ISO/IEC 7064 MOD 37,36)")
    return identifier
