"""W3C Bitstring Status List v1.0: bit order, spec size, refusals of hostile lists, signed credentials."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.keys.service import SigningKey
from licences import statuslist
from licences.errors import StatusListInvalid

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
ISSUER = "https://hub.example"
LIST_URL = f"{ISSUER}/v1/status-lists/0"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(kid: str = "status-1") -> tuple[SigningKey, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "ES256", private), {"keys": [{**jwk, "kid": kid, "alg": "ES256", "use": "sig"}]}


def credential(entries: dict[int, int] | None = None) -> dict[str, Any]:
    return statuslist.status_list_credential(
        list_url=LIST_URL,
        issuer=ISSUER,
        entries={7: 2} if entries is None else entries,
        valid_from=NOW,
        valid_until=NOW + timedelta(hours=24),
    )


# --- encodedList ----------------------------------------------------------------------------------


def test_index_zero_is_the_most_significant_bits_of_the_first_byte() -> None:
    """§2.2 / §7.1 by hand: value 2 (binary 10) at index 0 sets the left-most bit only."""
    bits = statuslist.decode_list(statuslist.encode_list({0: 2}))
    assert bits[0] == 0b1000_0000
    assert not any(bits[1:])
    # index 3 is the last two bits of byte 0, index 4 the first two of byte 1
    bits = statuslist.decode_list(statuslist.encode_list({3: 1, 4: 3}))
    assert bits[:2] == bytes([0b0000_0001, 0b1100_0000])


def test_one_bit_entries_follow_the_same_order() -> None:
    encoded = statuslist.encode_list({0: 1, 9: 1}, size=16, status_size=1)
    bits = statuslist.decode_list(encoded, 1, min_entries=16)
    assert bits == bytes([0b1000_0000, 0b0100_0000])


def test_the_decoded_list_has_the_specification_size() -> None:
    bits = statuslist.decode_list(statuslist.encode_list({}))
    assert len(bits) == statuslist.LIST_SIZE * statuslist.STATUS_SIZE // 8 == 32_768
    assert len(bits) * 8 // statuslist.STATUS_SIZE >= 131_072  # §6.1 herd privacy minimum


def test_the_encoding_is_multibase_base64url_gzip_and_deterministic() -> None:
    encoded = statuslist.encode_list({5: 3})
    assert encoded.startswith("u")
    assert "=" not in encoded
    assert set(encoded[1:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = gzip.decompress(unb64url(encoded[1:]))  # a plain standard library reads it too
    assert raw[1] == 0b0011_0000  # index 5 = bits 10 and 11 = the 3rd and 4th bits of byte 1
    assert statuslist.encode_list({5: 3}) == encoded  # mtime 0: same list, same bytes


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.integers(min_value=0, max_value=statuslist.LIST_SIZE - 1),
        st.integers(min_value=0, max_value=3),
        max_size=64,
    ),
    st.lists(st.integers(min_value=0, max_value=statuslist.LIST_SIZE - 1), max_size=16),
)
def test_round_trip(entries: dict[int, int], probes: list[int]) -> None:
    bits = statuslist.decode_list(statuslist.encode_list(entries))
    for index in [*entries, *probes, 0, statuslist.LIST_SIZE - 1]:
        assert statuslist.status_at(bits, index) == entries.get(index, 0)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.integers(min_value=1, max_value=8))
def test_round_trip_for_every_status_size(data: st.DataObject, status_size: int) -> None:
    size = 64
    entries = data.draw(
        st.dictionaries(st.integers(0, size - 1), st.integers(0, (1 << status_size) - 1), max_size=size)
    )
    bits = statuslist.decode_list(statuslist.encode_list(entries, size, status_size), status_size, min_entries=size)
    assert [statuslist.status_at(bits, i, status_size) for i in range(size)] == [entries.get(i, 0) for i in range(size)]


def test_encode_refuses_entries_outside_the_list() -> None:
    for bad in ({statuslist.LIST_SIZE: 1}, {-1: 1}, {0: 4}, {0: -1}, {0: True}):
        with pytest.raises(ValueError, match="outside the list"):
            statuslist.encode_list(bad)
    with pytest.raises(ValueError, match="whole number of bytes"):
        statuslist.encode_list({}, size=3)
    with pytest.raises(ValueError, match="statusSize"):
        statuslist.encode_list({}, status_size=9)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "zQmNotBase64url",  # multibase base58btc, not base64url
        "Uabc",  # multibase base64url with padding: the spec asks for no padding
        "u!!!!",
        "uAAA=",
        "uA",  # one character is never whole base64
        "u" + b64url(b"not gzip at all"),
        "u" + b64url(gzip.compress(bytes(32_768))[:-8]),  # no trailer: truncated
        "u" + b64url(gzip.compress(bytes(32_768)) + b"tail"),  # bytes after the member
        "u" + b64url(gzip.compress(bytes(32_768))[:-8] + b"\0\0\0\0\0\x80\0\0"),  # CRC-32 mismatch
        "u" + b64url(gzip.compress(bytes(1024))),  # 4,096 entries: below the herd-privacy minimum
    ],
)
def test_decode_refuses_what_is_not_a_usable_list(encoded: str) -> None:
    with pytest.raises(StatusListInvalid):
        statuslist.decode_list(encoded)


def test_decode_refuses_a_zip_bomb_without_inflating_it() -> None:
    bomb = "u" + b64url(gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9))
    assert len(bomb) < 100_000  # 64 MiB of zeros in ~87 kB
    with pytest.raises(StatusListInvalid, match="more than"):
        statuslist.decode_list(bomb)
    with pytest.raises(StatusListInvalid, match="more than 1000 bytes"):
        statuslist.decode_list(statuslist.encode_list({}), max_bytes=1000)


def test_status_at_refuses_indexes_outside_the_list() -> None:
    bits = statuslist.decode_list(statuslist.encode_list({}))
    for index in (-1, statuslist.LIST_SIZE):
        with pytest.raises(StatusListInvalid, match="RANGE_ERROR"):
            statuslist.status_at(bits, index)


def test_position_and_status_values() -> None:
    assert statuslist.position(0) == (0, 0)
    assert statuslist.position(131_071) == (0, 131_071)
    assert statuslist.position(131_072) == (1, 0)
    assert statuslist.position(300_000) == (2, 300_000 - 2 * 131_072)
    with pytest.raises(ValueError, match="non-negative"):
        statuslist.position(-1)
    assert {name: statuslist.status_value(name) for name in statuslist.STATUS_VALUES} == statuslist.STATUS_VALUES
    assert statuslist.status_value("expired") == 0  # read from the licence's validity end, not the list
    with pytest.raises(ValueError, match="no status list value"):
        statuslist.status_value("lost")
    assert statuslist.STATUS_NAMES[2] == "revoked"


# --- the credential --------------------------------------------------------------------------------


def test_credential_shape_follows_vc_2_0_and_the_recommendation() -> None:
    payload = credential()
    assert payload["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert payload["id"] == LIST_URL
    assert payload["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert (payload["validFrom"], payload["validUntil"]) == ("2026-12-02T08:00:00Z", "2026-12-03T08:00:00Z")
    assert (payload["iss"], payload["iat"], payload["exp"]) == (
        ISSUER,
        int(NOW.timestamp()),
        int((NOW + timedelta(hours=24)).timestamp()),
    )
    subject = payload["credentialSubject"]
    assert subject["id"] == f"{LIST_URL}#list"
    assert (subject["type"], subject["statusPurpose"], subject["statusSize"]) == ("BitstringStatusList", "message", 2)
    assert subject["statusMessage"] == [
        {"status": "0x0", "message": "valid"},
        {"status": "0x1", "message": "suspended"},
        {"status": "0x2", "message": "revoked"},
        {"status": "0x3", "message": "superseded"},
    ]
    with pytest.raises(ValueError, match="after validFrom"):
        statuslist.status_list_credential(list_url=LIST_URL, issuer=ISSUER, entries={}, valid_from=NOW, valid_until=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        statuslist.status_list_credential(
            list_url=LIST_URL,
            issuer=ISSUER,
            entries={},
            valid_from=NOW.replace(tzinfo=None),
            valid_until=(NOW + timedelta(hours=1)).replace(tzinfo=None),
        )


def test_credential_status_entry() -> None:
    assert statuslist.credential_status(LIST_URL, 42) == {
        "type": "BitstringStatusListEntry",
        "statusPurpose": "message",
        "statusListIndex": "42",
        "statusListCredential": LIST_URL,
        "statusSize": 2,
    }
    with pytest.raises(ValueError, match="outside"):
        statuslist.credential_status(LIST_URL, statuslist.LIST_SIZE)


def test_signed_list_verifies_with_pyjwt_alone() -> None:
    key, jwks = signing_key()
    token = statuslist.sign_status_list(credential({7: 2, 8: 1}), key)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": "status-1", "typ": "vc+jwt"}
    # what an offline verifier does: the published JWK, ES256 fixed, PyJWT's own exp/iat checks
    public = jwt.PyJWK(jwks["keys"][0]).key
    payload = jwt.decode(
        token,
        public,
        algorithms=["ES256"],
        options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "iss"]},
    )
    encoded = payload["credentialSubject"]["encodedList"]
    raw = gzip.decompress(unb64url(encoded[1:]))
    assert (raw[7 * 2 // 8] >> (6 - (7 * 2) % 8)) & 0b11 == 2


def test_verify_status_list_and_read_an_entry() -> None:
    key, jwks = signing_key()
    token = statuslist.sign_status_list(credential({7: 2, 8: 1}), key)
    checked = statuslist.verify_status_list(token, jwks, now=NOW + timedelta(hours=1))
    assert statuslist.read_entry(checked, statuslist.credential_status(LIST_URL, 7)) == 2
    assert statuslist.read_entry(checked, statuslist.credential_status(LIST_URL, 8)) == 1
    assert statuslist.read_entry(checked, statuslist.credential_status(LIST_URL, 9)) == 0
    elsewhere = statuslist.credential_status(f"{ISSUER}/v1/status-lists/1", 7)
    with pytest.raises(StatusListInvalid, match="another status list"):
        statuslist.read_entry(checked, elsewhere)
    with pytest.raises(StatusListInvalid, match="statusPurpose"):
        statuslist.read_entry(checked, {**statuslist.credential_status(LIST_URL, 7), "statusPurpose": "revocation"})
    with pytest.raises(StatusListInvalid, match="base-10"):
        statuslist.read_entry(checked, {**statuslist.credential_status(LIST_URL, 7), "statusListIndex": "0x7"})


def test_a_list_signed_by_another_key_with_the_same_kid_is_refused() -> None:
    _, jwks = signing_key()
    impostor, _ = signing_key()  # same kid, different key
    with pytest.raises(StatusListInvalid, match="InvalidSignatureError"):
        statuslist.verify_status_list(statuslist.sign_status_list(credential(), impostor), jwks, now=NOW)


def test_a_list_signed_by_an_unknown_kid_is_refused() -> None:
    _, jwks = signing_key()
    stranger, _ = signing_key("stranger")
    with pytest.raises(StatusListInvalid, match="unknown key"):
        statuslist.verify_status_list(statuslist.sign_status_list(credential(), stranger), jwks, now=NOW)


def test_a_tampered_list_is_refused() -> None:
    key, jwks = signing_key()
    head, body, sig = statuslist.sign_status_list(credential({7: 2}), key).split(".")
    changed = json.loads(unb64url(body))
    changed["credentialSubject"]["encodedList"] = statuslist.encode_list({})  # "un-revoke" index 7
    forged = f"{head}.{b64url(json.dumps(changed).encode())}.{sig}"
    with pytest.raises(StatusListInvalid, match="InvalidSignatureError"):
        statuslist.verify_status_list(forged, jwks, now=NOW)
    flipped = f"{head}.{body}.{sig[:10]}{'A' if sig[10] != 'A' else 'B'}{sig[11:]}"
    with pytest.raises(StatusListInvalid):
        statuslist.verify_status_list(flipped, jwks, now=NOW)


def test_alg_none_is_refused() -> None:
    _, jwks = signing_key()
    header = b64url(json.dumps({"alg": "none", "kid": "status-1", "typ": "vc+jwt"}).encode())
    unsigned = f"{header}.{b64url(json.dumps(credential()).encode())}."
    with pytest.raises(StatusListInvalid, match="ES256"):
        statuslist.verify_status_list(unsigned, jwks, now=NOW)


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    """RFC 8725 §2.1 algorithm confusion: an HMAC "signed" with the published key's own bytes."""
    key, jwks = signing_key()
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        b64url(json.dumps({"alg": "HS256", "kid": "status-1", "typ": "vc+jwt"}).encode())
        + "."
        + b64url(json.dumps(credential({})).encode())
    )
    forged = f"{signing_input}.{b64url(hmac.digest(pem, signing_input.encode(), hashlib.sha256))}"
    with pytest.raises(StatusListInvalid, match="ES256"):
        statuslist.verify_status_list(forged, jwks, now=NOW)
    with pytest.raises(jwt.InvalidAlgorithmError):  # and PyJWT alone, ES256 fixed, refuses it too
        jwt.decode(forged, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["ES256"])


def test_wrong_type_or_credential_is_refused() -> None:
    key, jwks = signing_key()
    as_plain_jwt = jwt.encode(credential(), key.private_key, algorithm="ES256", headers={"kid": key.kid})
    with pytest.raises(StatusListInvalid, match="vc\\+jwt"):
        statuslist.verify_status_list(as_plain_jwt, jwks, now=NOW)
    other_vc = {**credential(), "type": ["VerifiableCredential"]}
    with pytest.raises(StatusListInvalid, match="BitstringStatusListCredential"):
        statuslist.verify_status_list(statuslist.sign_status_list(other_vc, key), jwks, now=NOW)
    mismatched = {**credential(), "iss": "https://elsewhere.example"}
    with pytest.raises(StatusListInvalid, match="disagree"):
        statuslist.verify_status_list(statuslist.sign_status_list(mismatched, key), jwks, now=NOW)
    with pytest.raises(StatusListInvalid, match="compact JWS"):
        statuslist.verify_status_list("not-a-jwt", jwks, now=NOW)


def test_an_expired_or_future_list_is_refused() -> None:
    key, jwks = signing_key()
    token = statuslist.sign_status_list(credential(), key)
    statuslist.verify_status_list(token, jwks, now=NOW + timedelta(hours=24))
    with pytest.raises(StatusListInvalid, match="expired"):
        statuslist.verify_status_list(token, jwks, now=NOW + timedelta(hours=24, seconds=6))
    with pytest.raises(StatusListInvalid, match="not valid yet"):
        statuslist.verify_status_list(token, jwks, now=NOW - timedelta(minutes=1))


def test_only_es256_keys_sign() -> None:
    key, _ = signing_key()
    with pytest.raises(ValueError, match="ES256"):
        statuslist.sign_status_list(credential(), SigningKey("k", "ES384", key.private_key))
