"""Audit entry values: the canonical-JSON fast path agrees with the RFC 8785 reference, field rules hold."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.append import AuditSigner
from audit.entries import AuditEvent, Receipt, canonical

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["\x00", "\x1f", "\x7f", '"', "\\", "/", "\u2028", "é", "中文", "😀", "\b\f\n\r\t"]
)
_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60) | _text
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text | st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=800)
@given(st.dictionaries(_text | st.text(max_size=8), _json, max_size=8))
def test_fast_path_is_byte_identical_to_rfc8785(value: dict[str, Any]) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            canonical(value)
        return
    assert canonical(value) == expected


@pytest.mark.parametrize("number", [2**53 - 1, 2**53, -(2**53), 2**60, 1.5, 1e21, -0.0])
def test_numbers_at_and_past_the_double_limit(number: float) -> None:
    try:
        expected = rfc8785.dumps({"n": number})
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical({"n": number})
        return
    assert canonical({"n": number}) == expected


# Keys whose UTF-16 order differs from their code point order: U+E000..U+FFFF sort after astral characters,
# which UTF-16 writes as surrogates D800..DFFF (RFC 8785 §3.2.3 sorts by UTF-16 code units).
_keys = _text | st.text(st.sampled_from(["a", "é", "中", "\ue000", "\uffff", "😀", "\U0010ffff", "\x7f"]), max_size=3)
# Floats as well, but not integral ones from 2**53 on: RFC 8785 writes 1e20 as 100000000000000000000, which
# reads back as an integer outside the range the same function takes (test_numbers_at_and_past_the_double_limit).
_floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer() or abs(f) < 2**53)
_safe = st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | _text | _floats
_values = st.recursive(
    _safe,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20,
)


def _reordered(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's members inserted in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _reordered(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_reordered(item, rng) for item in value]
    return value


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8), st.randoms(use_true_random=False))
def test_member_order_never_changes_the_bytes(value: dict[str, Any], rng: random.Random) -> None:
    assert canonical(_reordered(value, rng)) == canonical(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, st.integers(0, 9), min_size=2, max_size=10))
def test_members_are_sorted_by_utf16_code_units(value: dict[str, int]) -> None:
    written = json.loads(canonical(value), object_pairs_hook=lambda pairs: [key for key, _ in pairs])
    assert written == sorted(value, key=lambda key: key.encode("utf-16-be"))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8))
def test_canonical_bytes_read_back_as_the_value_and_are_their_own_canonical_form(value: dict[str, Any]) -> None:
    """What the offline verifier relies on (audit.verify): it re-reads each entry and writes it again."""
    written = canonical(value)
    assert json.loads(written) == value
    assert canonical(json.loads(written)) == written
    assert b"\n" not in written  # no whitespace between tokens (§3.2.1): one entry, one line


def test_extra_fields_cannot_overwrite_entry_fields() -> None:
    base: dict[str, Any] = {
        "action": "exchange.licence.fetched",
        "outcome": "ok",
        "actor_type": "department",
        "actor": "11330100002010066Q",
        "request_id": "r",
        "time": datetime(2026, 11, 23, tzinfo=UTC),
    }
    assert AuditEvent(**base, extra={"scope": "licence:read"}).to_entry()["scope"] == "licence:read"
    with pytest.raises(ValueError, match="outcome"):
        AuditEvent(**base, extra={"outcome": "denied"})


_SIGNING_KEY = Ed25519PrivateKey.generate()


@given(
    origin=_text,
    leaf_index=st.integers(min_value=0, max_value=2**53 - 1),
    leaf_hash=st.binary(min_size=32, max_size=32),
)
@settings(max_examples=200, deadline=None)
def test_hot_path_receipt_signs_exactly_the_canonical_bytes(origin: str, leaf_index: int, leaf_hash: bytes) -> None:
    signer = AuditSigner(origin=origin, key_id="k", private_key=_SIGNING_KEY, holder_secret=b"s")
    receipt = signer.receipt(leaf_index, leaf_hash, 1_790_000_000)
    expected = Receipt.signed_bytes(origin, leaf_index, leaf_hash, 1_790_000_000)
    _SIGNING_KEY.public_key().verify(receipt.signature, expected)  # raises if the bytes differ
    receipt.verify(_SIGNING_KEY.public_key(), origin)


def test_naive_times_are_refused() -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditEvent(action="a.b.c", outcome="ok", actor_type="system", actor="x", request_id="r", time=naive)
